"""One canonical form per email address, so it is one identity everywhere."""

from __future__ import annotations

from email_validator import EmailNotValidError
from email_validator import validate_email

MAX_LENGTH = 254
INVALID_EMAIL = "Enter an email address like name@example.com."


class InvalidEmail(ValueError):
    """The text is not an email address we accept."""


def canonical_email(raw: str) -> str:
    """Return the lower-case ASCII form of an email, or raise InvalidEmail.

    Internationalised domains become their punycode form; local parts must be ASCII, which
    also refuses look-alike letters from other scripts.
    """
    text = (raw or "").strip()
    if not text or len(text) > MAX_LENGTH:
        raise InvalidEmail(INVALID_EMAIL)
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(INVALID_EMAIL) from exc
    if not result.ascii_email:  # allow_smtputf8=False: only ASCII addresses pass
        raise InvalidEmail(INVALID_EMAIL)
    return result.ascii_email.lower()


def try_canonical_email(raw: str) -> str | None:
    """Return the canonical email, or None when the text is not one."""
    try:
        return canonical_email(raw)
    except InvalidEmail:
        return None
