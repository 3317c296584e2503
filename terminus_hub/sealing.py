"""Values kept encrypted at rest (Fernet), each purpose under its own key derived with HKDF.

The keys come from TERMINUS_MFA_KEY, or from SECRET_KEY when that is unset, so a database dump
alone opens nothing.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from flask import current_app

# cryptography (about 9 MiB) is imported where it is used: a worker that serves only key calls
# and sign-ins never loads it.
if TYPE_CHECKING:
    from cryptography.fernet import Fernet


def derived_key(purpose: bytes) -> bytes:
    """32 bytes for one purpose, derived from the configured secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    configured = current_app.config.get("TERMINUS_MFA_KEY") or current_app.config["SECRET_KEY"]
    material = configured.encode("utf-8") if isinstance(configured, str) else bytes(configured)
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"terminus-hub " + purpose
    ).derive(material)


def _fernet(purpose: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(derived_key(purpose)))


def seal(purpose: bytes, value: bytes) -> str:
    """Encrypt and authenticate a value for one purpose."""
    return _fernet(purpose).encrypt(value).decode("ascii")


def unseal(purpose: bytes, sealed: str) -> bytes | None:
    """Open a sealed value; None when it was sealed under another secret (or tampered with)."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(purpose).decrypt(sealed.encode("ascii"))
    except InvalidToken:
        return None
