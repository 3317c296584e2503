"""Values kept encrypted at rest (Fernet), each purpose under its own key derived with HKDF.

The keys come from TERMINUS_MFA_KEY, or from SECRET_KEY when that is unset, so a database dump
alone opens nothing.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def derived_key(purpose: bytes) -> bytes:
    """32 bytes for one purpose, derived from the configured secret."""
    configured = current_app.config.get("TERMINUS_MFA_KEY") or current_app.config["SECRET_KEY"]
    material = configured.encode("utf-8") if isinstance(configured, str) else bytes(configured)
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"terminus-hub " + purpose
    ).derive(material)


def _fernet(purpose: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(purpose)))


def seal(purpose: bytes, value: bytes) -> str:
    """Encrypt and authenticate a value for one purpose."""
    return _fernet(purpose).encrypt(value).decode("ascii")


def unseal(purpose: bytes, sealed: str) -> bytes | None:
    """Open a sealed value; None when it was sealed under another secret (or tampered with)."""
    try:
        return _fernet(purpose).decrypt(sealed.encode("ascii"))
    except InvalidToken:
        return None
