"""A real SAML Identity Provider for tests, built on pysaml2's ``saml2.server.Server``.

Each ``TestIdp`` makes a fresh RSA key and self-signed certificate at test time (PEM files in
the ``workdir`` it is given, never in the repository) and builds its pysaml2 configuration in
memory. It signs with RSA-SHA256 and SHA-256 digests, and lets a test bend one thing at a time
in the response it produces (unsigned, unsolicited, wrong audience or destination, expired, not
yet valid, signed by another key, tampered after signing)::

    idp = TestIdp(tmp_path)
    # ... give idp.metadata_xml to the account's SSO connection ...
    idp.trust_sp(client.get("/sso/acme/metadata").get_data(as_text=True))
    location = client.get("/sso/acme/login").headers["Location"]
    request = idp.parse_request(location)
    saml_response = idp.respond(request, "ada@acme.example")
    client.post("/sso/acme/acs", data={"SAMLResponse": saml_response,
                                       "RelayState": request.relay_state})
"""

from __future__ import annotations

import base64
import datetime
import enum
import pathlib
import secrets
import warnings
from dataclasses import dataclass
from typing import Any
from typing import Final
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2.assertion import Policy
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.metadata import metadata_tostring_fix
from saml2.request import AuthnRequest
from saml2.saml import AUTHN_PASSWORD_PROTECTED
from saml2.saml import NAME_FORMAT_URI
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.saml import NameID
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256
from saml2.xmldsig import SIG_RSA_SHA256

with warnings.catch_warnings():
    # saml2.server imports saml2.cryptography.symmetric, which touches cryptography's
    # deprecated modes.CFB at import time; pytest turns warnings into errors.
    warnings.filterwarnings(
        "ignore", message="CFB has been moved", category=CryptographyDeprecationWarning
    )
    from saml2.server import Server

__all__ = ["FROM_REQUEST", "ParsedRequest", "TestIdp", "make_key_and_cert"]

DEFAULT_ENTITY_ID: Final = "https://idp.example.test/metadata"
DEFAULT_SSO_URL: Final = "https://idp.example.test/sso/redirect"
# How long an assertion is valid for when a test does not say otherwise.
DEFAULT_LIFETIME: Final = datetime.timedelta(minutes=5)
SAML_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


class _FromRequest(enum.Enum):
    FROM_REQUEST = "<from request>"


#: ``respond(..., in_response_to=FROM_REQUEST)``: answer the parsed request's id (the default).
FROM_REQUEST: Final = _FromRequest.FROM_REQUEST


def make_key_and_cert(
    workdir: pathlib.Path, name: str, common_name: str
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write a fresh RSA-2048 key and a self-signed certificate for it as ``name``.key/.crt."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    key_path = workdir / f"{name}.key"
    cert_path = workdir / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _saml_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime(SAML_TIME_FORMAT)


@dataclass(frozen=True)
class ParsedRequest:
    """An AuthnRequest the IdP received through the HTTP-Redirect binding, already verified."""

    id: str
    sp_entity_id: str
    acs_url: str  # where the response goes: the request's ACS URL, checked against SP metadata
    relay_state: str | None
    signed: bool  # the redirect carried a Signature (and it verified against the SP's metadata)
    sig_alg: str | None  # the SigAlg query parameter, e.g. saml2.xmldsig.SIG_RSA_SHA256
    xml: str  # the decoded AuthnRequest
    message: Any  # the saml2.samlp.AuthnRequest instance

    @property
    def name_id_policy(self) -> Any:
        return self.message.name_id_policy


class _Policy(Policy):
    """pysaml2's release policy, with the assertion's Conditions bent as a test asks.

    ``Policy.conditions`` makes NotBefore, NotOnOrAfter and the AudienceRestriction, and
    ``Policy.not_on_or_after`` also dates the SubjectConfirmationData; both are overridden.
    """

    def __init__(
        self,
        restrictions: dict[str, Any],
        mds: Any,
        *,
        audience: str | None,
        not_before: datetime.datetime,
        not_on_or_after: datetime.datetime,
    ) -> None:
        super().__init__(restrictions, mds)
        self._audience = audience
        self._not_before = not_before
        self._not_on_or_after = not_on_or_after

    def not_on_or_after(self, sp_entity_id: str) -> str:
        return _saml_time(self._not_on_or_after)

    def conditions(self, sp_entity_id: str) -> Any:
        conditions = super().conditions(sp_entity_id)
        conditions.not_before = _saml_time(self._not_before)
        if self._audience is not None:
            conditions.audience_restriction[0].audience[0].text = self._audience
        return conditions


class TestIdp:
    """A SAML 2.0 IdP (pysaml2 ``Server``) with its own key.

    Making one costs about 0.4 s (RSA key generation, and pysaml2 loads and checks the key
    twice); a module-scoped fixture can share one between tests, since ``respond`` keeps no
    state between responses.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        entity_id: str = DEFAULT_ENTITY_ID,
        sso_url: str = DEFAULT_SSO_URL,
        lifetime: datetime.timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.lifetime = lifetime
        self.workdir = pathlib.Path(workdir)
        name = f"idp-{secrets.token_hex(4)}"
        self.key_path, self.cert_path = make_key_and_cert(self.workdir, name, entity_id)
        self.cert_pem = self.cert_path.read_text()
        self._trusted_sp_metadata: list[str] = []

        config = IdPConfig()
        config.load(
            {
                "entityid": entity_id,
                "xmlsec_binary": get_xmlsec_binary(),
                "key_file": str(self.key_path),
                "cert_file": str(self.cert_path),
                "metadata": {},
                "accepted_time_diff": 60,
                "service": {
                    "idp": {
                        "name": "Terminus Hub test IdP",
                        "endpoints": {
                            "single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)],
                        },
                        "want_authn_requests_signed": True,
                        "signing_algorithm": SIG_RSA_SHA256,
                        "digest_algorithm": DIGEST_SHA256,
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "policy": self._policy_restrictions(),
                    },
                },
            }
        )
        self.config = config
        self.server = Server(config=config)
        self.metadata_xml = self._metadata(config)

    @staticmethod
    def _metadata(config: IdPConfig) -> str:
        descriptor = entity_descriptor(config)
        # pysaml2 lists every algorithm xmlsec1 knows (MD5 and SHA-1 too) in an algsupport
        # extension; a real IdP's metadata does not, and nothing here needs it.
        descriptor.extensions = None
        # No namespace prefixes: pysaml2 would register them process-wide with ElementTree.
        xml = metadata_tostring_fix(descriptor, None)
        return xml.decode() if isinstance(xml, bytes) else xml

    @staticmethod
    def _policy_restrictions() -> dict[str, Any]:
        return {"default": {"attribute_restrictions": None, "name_form": NAME_FORMAT_URI}}

    # -- the SP's side of the trust ---------------------------------------------------------

    def trust_sp(self, sp_metadata_xml: str) -> None:
        """Load an SP's metadata: its ACS URLs and the certificate its requests are signed with."""
        self.server.metadata.load("inline", sp_metadata_xml)
        self._trusted_sp_metadata.append(sp_metadata_xml)

    # -- receiving the AuthnRequest ---------------------------------------------------------

    def parse_request(self, redirect_url: str, *, require_signed: bool = True) -> ParsedRequest:
        """Parse and verify the HTTP-Redirect AuthnRequest in the SP's ``Location`` URL.

        With ``require_signed`` (the default) the request must carry a valid RSA-SHA256
        signature made with the key of the SP's metadata; otherwise this raises.
        """
        query = parse_qs(urlsplit(redirect_url).query, keep_blank_values=True)

        def one(name: str) -> str | None:
            values = query.get(name)
            if values is None:
                return None
            if len(values) != 1:
                raise ValueError(f"{name} appears {len(values)} times in the redirect")
            return values[0]

        saml_request = one("SAMLRequest")
        if saml_request is None:
            raise ValueError("no SAMLRequest in the redirect URL")
        relay_state = one("RelayState")
        sig_alg = one("SigAlg")
        signature = one("Signature")
        signed = signature is not None
        if require_signed and not signed:
            raise ValueError("the AuthnRequest is not signed")
        if require_signed and sig_alg != SIG_RSA_SHA256:
            raise ValueError(f"the AuthnRequest is signed with {sig_alg}, not RSA-SHA256")

        # pysaml2 checks the redirect signature only when the IdP wants signed requests.
        self.config.setattr("idp", "want_authn_requests_signed", signed)
        try:
            parsed = self.server.parse_authn_request(
                saml_request,
                BINDING_HTTP_REDIRECT,
                relay_state=relay_state,
                sigalg=sig_alg,
                signature=signature,
            )
        finally:
            self.config.setattr("idp", "want_authn_requests_signed", True)
        if not isinstance(parsed, AuthnRequest):
            raise ValueError("the SAMLRequest could not be parsed")
        message = parsed.message
        # The ACS URL must be one of the SP's metadata for the HTTP-POST binding.
        args = self.server.response_args(message, [BINDING_HTTP_POST])
        return ParsedRequest(
            id=message.id,
            sp_entity_id=args["sp_entity_id"],
            acs_url=args["destination"],
            relay_state=relay_state,
            signed=signed,
            sig_alg=sig_alg if signed else None,
            xml=parsed.xmlstr if isinstance(parsed.xmlstr, str) else parsed.xmlstr.decode(),
            message=message,
        )

    # -- answering it ------------------------------------------------------------------------

    def respond(
        self,
        request: ParsedRequest,
        email: str,
        *,
        sign_response: bool = True,
        sign_assertion: bool = True,
        in_response_to: str | _FromRequest | None = FROM_REQUEST,
        audience: str | None = None,
        destination: str | None = None,
        recipient: str | None = None,
        not_on_or_after_delta: datetime.timedelta | None = None,
        not_before_delta: datetime.timedelta | None = None,
        signer: TestIdp | None = None,
        name_id_format: str = NAMEID_FORMAT_EMAILADDRESS,
        name_id: str | None = None,
        attributes: dict[str, list[str]] | None = None,
        sign_alg: str = SIG_RSA_SHA256,
        digest_alg: str = DIGEST_SHA256,
    ) -> str:
        """Build a SAML Response for ``email`` and return it base64-encoded, as POSTed to the ACS.

        Overrides (each off by default):

        - ``sign_response`` / ``sign_assertion``: which signatures to make (both False: unsigned);
        - ``in_response_to``: the request id answered (default: the request's; None: unsolicited);
        - ``audience``: the Audience in the AudienceRestriction (default: the SP's entity id);
        - ``destination``: the Response's Destination, and the SubjectConfirmationData's
          Recipient unless ``recipient`` is given (default: the request's ACS URL);
        - ``not_on_or_after_delta``: NotOnOrAfter of the Conditions and of the
          SubjectConfirmationData, from now (default: ``lifetime``; negative: expired);
        - ``not_before_delta``: the Conditions' NotBefore, from now (default 0; positive: not
          yet valid);
        - ``signer``: another ``TestIdp`` builds and signs the response with its own key and
          puts its own certificate into ``ds:KeyInfo``; with this IdP's entity id it is an
          attacker's key (the SP must trust only the certificate in this IdP's metadata), with
          another entity id it is another account's IdP (the Issuer is the signer's);
        - ``name_id_format`` / ``name_id``: the NameID's Format and value (default: the email);
        - ``attributes``: the attribute statement (default: email and mail);
        - ``sign_alg`` / ``digest_alg``: e.g. ``SIG_RSA_SHA1`` / ``DIGEST_SHA1`` (SHA-1 signing).
        """
        idp = signer or self
        for sp_metadata in self._trusted_sp_metadata:
            if sp_metadata not in idp._trusted_sp_metadata:
                idp.trust_sp(sp_metadata)

        not_before, not_on_or_after = self._window(not_before_delta, not_on_or_after_delta)
        policy = _Policy(
            self._policy_restrictions(),
            idp.server.metadata,
            audience=audience,
            not_before=not_before,
            not_on_or_after=not_on_or_after,
        )
        if in_response_to is FROM_REQUEST:
            in_response_to = request.id
        consumer_url = destination if destination is not None else request.acs_url
        farg = None
        if recipient is not None:
            farg = {
                "assertion": {
                    "subject": {
                        "subject_confirmation": {
                            "method": "urn:oasis:names:tc:SAML:2.0:cm:bearer",
                            "subject_confirmation_data": {
                                "in_response_to": in_response_to,
                                "recipient": recipient,
                            },
                        }
                    }
                }
            }
        identity = attributes if attributes is not None else {"email": [email], "mail": [email]}
        response = idp.server.create_authn_response(
            identity,
            in_response_to,
            consumer_url,
            request.sp_entity_id,
            name_id=NameID(
                format=name_id_format,
                sp_name_qualifier=request.sp_entity_id,
                text=name_id if name_id is not None else email,
            ),
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": idp.entity_id},
            release_policy=policy,
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
            farg=farg,
        )
        xml = str(response)
        return base64.b64encode(xml.encode()).decode("ascii")

    def _window(
        self,
        not_before_delta: datetime.timedelta | None,
        not_on_or_after_delta: datetime.timedelta | None,
    ) -> tuple[datetime.datetime, datetime.datetime]:
        """The assertion's [NotBefore, NotOnOrAfter), each bound from now.

        When a test moves only one bound, the other keeps ``lifetime`` between them, so an
        expired assertion was valid before (NotBefore < NotOnOrAfter, both in the past) and a
        not-yet-valid one is valid later: the SP must refuse it for its time, not for an
        inverted window.
        """
        now = datetime.datetime.now(datetime.UTC)
        if not_before_delta is None and not_on_or_after_delta is None:
            return now, now + self.lifetime
        if not_on_or_after_delta is None:
            assert not_before_delta is not None
            return now + not_before_delta, now + not_before_delta + self.lifetime
        not_on_or_after = now + not_on_or_after_delta
        if not_before_delta is None:
            return min(now, not_on_or_after - self.lifetime), not_on_or_after
        return now + not_before_delta, not_on_or_after

    # -- after signing ------------------------------------------------------------------------

    @staticmethod
    def decode(saml_response_b64: str) -> str:
        """The XML of a base64 SAMLResponse."""
        return base64.b64decode(saml_response_b64).decode()

    @staticmethod
    def encode(xml: str) -> str:
        """A SAMLResponse value for this XML (e.g. one rearranged for signature wrapping)."""
        return base64.b64encode(xml.encode()).decode("ascii")

    def tamper(self, saml_response_b64: str, find: str, replace: str) -> str:
        """Replace every ``find`` (at least one must occur) by ``replace`` after signing.

        The email occurs in the NameID and in the attributes; both change, as an attacker
        would change them.
        """
        xml = self.decode(saml_response_b64)
        if find not in xml:
            raise ValueError(f"{find!r} does not occur in the response")
        return self.encode(xml.replace(find, replace))
