"""API key format: ``thub_`` + 32 base62 characters whose last 6 are a CRC32 checksum.

The checksum lets the server (and secret scanners) refuse a mistyped or made-up token without
touching the database. Only the SHA-256 of a token is stored, with a short display prefix.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "thub_"
BODY_LENGTH = 26
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 6
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALLOWED = frozenset(ALPHABET)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """Return the 6-character base62 CRC32 of a token body."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """Make a new token: 26 random base62 characters (about 155 bits) and their checksum."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return PREFIX + body + checksum(body)


def is_well_formed(token: str) -> bool:
    """Say whether a token has our shape and a matching checksum (no database needed)."""
    if len(token) != TOKEN_LENGTH or not token.startswith(PREFIX):
        return False
    rest = token[len(PREFIX) :]
    if not _ALLOWED.issuperset(rest):
        return False
    body, check = rest[:BODY_LENGTH], rest[BODY_LENGTH:]
    return secrets.compare_digest(checksum(body), check)


def token_hash(token: str) -> str:
    """Return the SHA-256 hex digest stored in place of the token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def display_prefix(token: str) -> str:
    """Return the part of a token safe to show again (``thub_`` and 6 characters)."""
    return token[:DISPLAY_LENGTH]
