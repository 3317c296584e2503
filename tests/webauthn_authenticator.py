"""A small software authenticator for the tests: real WebAuthn attestations (format "none")
and assertions, signed with ES256 or RS256 keys from `cryptography`, written as a browser
hands them to a page (RegistrationResponseJSON, AuthenticationResponseJSON).

Every field a test may want to get wrong (origin, RP id, challenge, counter, user handle, user
verification) can be given explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa

ES256 = -7
RS256 = -257
UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One discoverable credential the authenticator holds."""

    id: bytes
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    algorithm: int
    user_handle: bytes
    rp_id: str
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        public = self.key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
            return cbor2.dumps({1: 2, 3: ES256, -1: 1, -2: x, -3: y})
        assert isinstance(public, rsa.RSAPublicKey)
        rsa_numbers = public.public_numbers()
        n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
        e = rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")
        return cbor2.dumps({1: 3, 3: RS256, -1: n, -2: e})

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class Authenticator:
    """A platform authenticator: user verification built in, a counter unless told not to."""

    def __init__(self, origin: str, algorithm: int = ES256, aaguid: bytes = bytes(16)) -> None:
        self.origin = origin
        self.algorithm = algorithm
        self.aaguid = aaguid
        self.credentials: list[Credential] = []

    def _new_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        if self.algorithm == ES256:
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        reuse: Credential | None = None,
        cose_key: bytes | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential (or ``reuse`` one) for the options;
        ``cose_key`` replaces the public key it reports (a broken authenticator)."""
        assert self.algorithm in [p["alg"] for p in options["pubKeyCredParams"]]
        rp = rp_id or options["rp"]["id"]
        credential = reuse or Credential(
            id=os.urandom(32),
            key=self._new_key(),
            algorithm=self.algorithm,
            user_handle=from_b64url(options["user"]["id"]),
            rp_id=rp,
        )
        if reuse is None:
            self.credentials.append(credential)
        attested = (
            self.aaguid
            + struct.pack(">H", len(credential.id))
            + credential.id
            + (credential.cose_public_key() if cose_key is None else cose_key)
        )
        auth_data = hashlib.sha256(rp.encode()).digest() + bytes([UP | UV | AT])
        auth_data += struct.pack(">I", credential.sign_count) + attested
        client_data = self._client_data(
            "webauthn.create", challenge or options["challenge"], origin
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return _as_browser_json(
            credential,
            {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        )

    def get(
        self,
        options: dict[str, Any],
        credential: Credential | None = None,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion by ``credential`` (the first one held)."""
        credential = credential or self.credentials[0]
        if sign_count is None:
            credential.sign_count += 1
            sign_count = credential.sign_count
        flags = UP | (UV if user_verified else 0)
        rp = rp_id or options.get("rpId") or credential.rp_id
        auth_data = hashlib.sha256(rp.encode()).digest() + bytes([flags])
        auth_data += struct.pack(">I", sign_count)
        client_data = self._client_data("webauthn.get", challenge or options["challenge"], origin)
        signature = credential.sign(auth_data + hashlib.sha256(client_data).digest())
        handle = credential.user_handle if user_handle is None else user_handle
        return _as_browser_json(
            credential,
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle),
            },
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        return json.dumps({**data, "crossOrigin": False}).encode()


def _as_browser_json(credential: Credential, response: dict[str, Any]) -> dict[str, Any]:
    """What a browser hands the page for a credential and its authenticator's response."""
    return {
        "id": b64url(credential.id),
        "rawId": b64url(credential.id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": response,
    }
