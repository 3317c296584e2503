"""SAML's xs:dateTime values (IssueInstant, NotOnOrAfter, validUntil) as aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

# Entra ID writes seven fractional digits, more than datetime.fromisoformat takes.
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def parse_time(value: str | None) -> datetime:
    """Return the UTC moment an xs:dateTime names (no zone means UTC), or raise ValueError."""
    match = _TIME.fullmatch((value or "").strip())
    if match is None:
        raise ValueError(f"not a time: {str(value)[:40]!r}")
    moment, fraction, zone = match.groups()
    fraction = f".{fraction[:6]:0<6}" if fraction else ""
    offset = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(moment + fraction + offset).astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar by its offset
        raise ValueError(f"time out of range: {str(value)[:40]!r}") from None
