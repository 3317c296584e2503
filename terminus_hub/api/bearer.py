"""Reading an API key from the Authorization header, without the database."""

from __future__ import annotations

from flask import g

from terminus_hub import api_tokens

_MAX_HEADER = 200


def bearer_token(header: str) -> str | None:
    """Return the well-formed key in an Authorization header, or None (no database needed)."""
    if len(header) > _MAX_HEADER or not header.isascii():
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not api_tokens.is_well_formed(token):
        return None
    return token


def key_hash(header: str) -> str | None:
    """The stored hash of the header's key, or None; worked out once per request."""
    known: tuple[str, str | None] | None = g.get("api_key_hash")
    if known is not None and known[0] == header:
        return known[1]
    token = bearer_token(header)
    token_hash = api_tokens.token_hash(token) if token is not None else None
    g.api_key_hash = (header, token_hash)
    return token_hash
