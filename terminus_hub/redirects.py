"""Keep redirects on this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None) -> str | None:
    """Return target when it is a path on this site, otherwise None."""
    if not target or len(target) > 2000:
        return None
    # Browsers treat backslashes as slashes and drop tabs and newlines: judge what they would see.
    if any(ch in target for ch in "\\\t\r\n\x00") or target != target.strip():
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
