"""Password hashing (bcrypt over SHA-256, so every character counts) and the strength rule."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

import bcrypt
from flask import current_app

SCHEME = "bcrypt_sha256$"
# zxcvbn's cost grows quickly with length; a longer prefix says nothing new about strength.
_STRENGTH_CHECKED_CHARS = 100
_CONTEXT_WORDS = ("terminus", "hub", "thub", "terminushub")

TOO_SHORT = "Use at least {min} characters."
TOO_LONG = "Use at most {max} characters."
TOO_WEAK = "This password is too easy to guess."
AVOID_CONTEXT = "Avoid your name, your email and the name of this service."


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes; a hex SHA-256 (64 bytes) carries every character (Django's
    # BCryptSHA256). NFKC makes "é" and "e" + U+0301 the same password.
    normalized = unicodedata.normalize("NFKC", password)
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest().encode("ascii")


def hash_password(password: str) -> str:
    """Hash a password with bcrypt at TERMINUS_BCRYPT_ROUNDS."""
    rounds = current_app.config["TERMINUS_BCRYPT_ROUNDS"]
    digest = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds))
    return SCHEME + digest.decode("ascii")


def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against a stored hash; with no hash, pay for one check all the same."""
    if not stored or not stored.startswith(SCHEME):
        dummy_verify()
        return False
    return bcrypt.checkpw(_prehash(password), stored[len(SCHEME) :].encode("ascii"))


def needs_rehash(stored: str | None) -> bool:
    """Say whether a hash was made at another cost than TERMINUS_BCRYPT_ROUNDS (or another way)."""
    if not stored or not stored.startswith(SCHEME):
        return True
    digest = stored[len(SCHEME) :]  # $2b$12$…: the cost is the second field
    parts = digest.split("$")
    return len(parts) < 3 or parts[2] != f"{current_app.config['TERMINUS_BCRYPT_ROUNDS']:02d}"


def dummy_verify() -> None:
    """Spend the time of one password check, so unknown emails answer as fast as known ones."""
    bcrypt.checkpw(b"not the password", _dummy_hash(current_app.config["TERMINUS_BCRYPT_ROUNDS"]))


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds))


def password_problem(password: str, context: tuple[str, ...] = ()) -> str | None:
    """Say what is wrong with a new password, or None when it is fine.

    :param context: words a guesser would try first (the email, the name).
    """
    config = current_app.config
    minimum = config["TERMINUS_PASSWORD_MIN_LENGTH"]
    maximum = config["TERMINUS_PASSWORD_MAX_LENGTH"]
    if len(password) < minimum:
        return TOO_SHORT.format(min=minimum)
    if len(password) > maximum:
        return TOO_LONG.format(max=maximum)
    words = [w for w in (*context, *_CONTEXT_WORDS) if len(w) >= 3]
    # Judge what is left once the words a guesser tries first are taken out.
    remainder = password[:_STRENGTH_CHECKED_CHARS]
    for word in sorted(words, key=len, reverse=True):
        remainder = re.sub(re.escape(word), "", remainder, flags=re.IGNORECASE)
    if not remainder.strip():
        return f"{TOO_WEAK} {AVOID_CONTEXT}"
    from zxcvbn import zxcvbn  # 13 MiB of word lists: loaded by the first strength check

    result = zxcvbn(remainder, user_inputs=words, max_length=_STRENGTH_CHECKED_CHARS)
    if result["score"] >= 3:
        return None
    if remainder != password[:_STRENGTH_CHECKED_CHARS]:
        return f"{TOO_WEAK} {AVOID_CONTEXT}"
    hint = result["feedback"].get("warning") or ""
    suggestions = " ".join(result["feedback"].get("suggestions") or [])
    return " ".join(part for part in (TOO_WEAK, hint, suggestions) if part)


def context_words(email: str, name: str = "") -> tuple[str, ...]:
    """Return the words from an email and name that a guesser would try first."""
    local, _, domain = email.partition("@")
    return (email, local, domain.split(".")[0], *name.split())
