// Terminus Hub: CSRF header for htmx, focus after swaps, and the show-password toggle.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  function wireReveal(root) {
    root.querySelectorAll("button[data-reveal]").forEach(function (button) {
      var input = document.getElementById(button.dataset.reveal);
      if (!input || button.dataset.wired) { return; }
      button.dataset.wired = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var show = input.type === "password";
        input.type = show ? "text" : "password";
        button.textContent = show ? "Hide" : "Show";
        button.setAttribute("aria-pressed", show ? "true" : "false");
        input.focus();
      });
    });
  }

  // After htmx swaps a step in, move focus to its first error or autofocus field.
  document.addEventListener("htmx:afterSwap", function (event) {
    var root = event.detail.target && event.detail.target.isConnected ? event.detail.target : document;
    var step = document.getElementById(root.id) || document;
    wireReveal(document);
    var target = step.querySelector("[aria-invalid=true]") || step.querySelector("[autofocus]");
    if (target) { target.focus(); }
  });

  function wireCopy(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      var source = document.getElementById(button.dataset.copy);
      if (!source || button.dataset.wired || !navigator.clipboard) { return; }
      button.dataset.wired = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = source.value !== undefined ? source.value : source.textContent.trim();
        navigator.clipboard.writeText(text).then(function () {
          button.textContent = "Copied";
        }, function () {
          window.getSelection().selectAllChildren(source);
          button.textContent = "Press Ctrl+C to copy";
        });
      });
    });
  }

  function wirePrint(root) {
    root.querySelectorAll("button[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  // Menus (details.menu) close on Escape, giving focus back to their toggle, and on a click elsewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.open = false;
      var toggle = menu.querySelector("summary");
      if (toggle && menu.contains(document.activeElement)) { toggle.focus(); }
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });

  // A role select's Change button shows only once another role is picked. Nothing is sent
  // until it is pressed: arrow keys on a closed select fire "change" too, so saving on change
  // would let a keyboard user promote someone by moving through the table.
  function wireChangeButtons(root) {
    root.querySelectorAll("select[data-change-button]").forEach(function (select) {
      if (select.dataset.wired || !select.form) { return; }
      select.dataset.wired = "1";
      var button = select.form.querySelector("#" + select.dataset.changeButton);
      if (!button) { return; }
      var saved = select.value;
      button.hidden = true;
      select.addEventListener("change", function () { button.hidden = select.value === saved; });
    });
  }

  document.addEventListener("htmx:afterSwap", function () { wireCopy(document); });
  document.addEventListener("DOMContentLoaded", function () {
    wireReveal(document); wireCopy(document); wirePrint(document); wireChangeButtons(document);
  });
})();
