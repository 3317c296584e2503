"""Keep redirects on this site."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote
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
    # Never back into single sign-on: a redirect there leaves the site for an IdP. Judge the
    # path the router will see (percent-decoded, dot segments resolved).
    path = posixpath.normpath(unquote(parts.path))
    if path == "/sso" or path.startswith(("/sso/", "//")):
        return None
    return target
