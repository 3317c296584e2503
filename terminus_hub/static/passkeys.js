// Passkeys: register one on /settings; sign in with one from the email step (a button, and the
// browser's autofill), at /sign_in/mfa, and at /reauth. Everything else on those pages works
// without JavaScript; passkeys cannot, so their buttons stay hidden until this script runs.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var error = new Error((json.error && json.error.message) || "Something went wrong. Try again.");
          error.reauthUrl = json.error && json.error.reauth_url;
          throw error;
        }
        return json;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBytes(item.id), transports: item.transports };
    });
  }

  function creationOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return options;
  }

  // The browser's RegistrationResponseJSON / AuthenticationResponseJSON, written by hand
  // (PublicKeyCredential.toJSON() is not in every browser yet).
  function credentialJSON(credential, response) {
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response
    };
  }

  function registrationJSON(credential) {
    var response = credential.response;
    return credentialJSON(credential, {
      clientDataJSON: toText(response.clientDataJSON),
      attestationObject: toText(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : []
    });
  }

  function assertionJSON(credential) {
    var response = credential.response;
    return credentialJSON(credential, {
      clientDataJSON: toText(response.clientDataJSON),
      authenticatorData: toText(response.authenticatorData),
      signature: toText(response.signature),
      userHandle: response.userHandle ? toText(response.userHandle) : null
    });
  }

  function say(box, message) {
    var status = box.querySelector("[data-passkey-status]");
    if (!status) { return; }
    status.textContent = message;
    status.hidden = !message;
  }

  function cancelled(error) {
    return error && (error.name === "NotAllowedError" || error.name === "AbortError");
  }

  function failed(box, error) {
    if (error.reauthUrl) { window.location.assign(error.reauthUrl); return; }
    say(box, cancelled(error)
      ? "The passkey request was cancelled or timed out. Try again, or use another way in."
      : error.message);
  }

  // Only one request may be open at a time: the autofill one is stopped before a button's.
  var autofill = null;

  function signIn(box, mediation) {
    var optionsUrl = box.dataset.optionsUrl;
    var answerUrl = box.dataset.answerUrl;
    var controller = new AbortController();
    if (autofill) { autofill.abort(); }
    if (mediation === "conditional") { autofill = controller; }
    return post(optionsUrl).then(function (options) {
      var request = { publicKey: requestOptions(options), signal: controller.signal };
      if (mediation) { request.mediation = mediation; }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      return post(answerUrl, assertionJSON(credential));
    }).then(function (answer) {
      window.location.assign(answer.redirect);
    }).catch(function (error) {
      if (mediation === "conditional" && cancelled(error)) { return; }
      failed(box, error);
    });
  }

  function register(box) {
    var name = box.querySelector("[data-passkey-name]");
    say(box, "");
    return post(box.dataset.optionsUrl).then(function (options) {
      return navigator.credentials.create({ publicKey: creationOptions(options) });
    }).then(function (credential) {
      var body = registrationJSON(credential);
      body.name = name ? name.value : "";
      return post(box.dataset.answerUrl, body);
    }).then(function () {
      // Back to the list, which now shows the new passkey (the same page: load it again).
      var done = new URL(box.dataset.doneUrl, window.location.href);
      if (done.pathname === window.location.pathname && done.search === window.location.search) {
        window.location.hash = done.hash;
        window.location.reload();
      } else {
        window.location.assign(done.href);
      }
    }).catch(function (error) { failed(box, error); });
  }

  function wire(root) {
    root.querySelectorAll("[data-passkey]").forEach(function (box) {
      if (box.dataset.wired) { return; }
      box.dataset.wired = "1";
      box.hidden = false;
      var kind = box.dataset.passkey;
      box.querySelector("button").addEventListener("click", function () {
        if (kind === "register") { register(box); } else { signIn(box, null); }
      });
      if (kind === "sign-in" && box.dataset.autofill && PublicKeyCredential.isConditionalMediationAvailable) {
        PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
          if (available) { signIn(box, "conditional"); }
        });
      }
    });
    root.querySelectorAll("[data-passkey-without-js]").forEach(function (note) { note.hidden = true; });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function () {
    if (autofill) { autofill.abort(); autofill = null; }
    wire(document);
  });
})();
