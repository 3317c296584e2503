"""Gunicorn's access log, safe to keep: no link tokens, no query strings, no forged lines.

gunicorn.conf.py names ``AccessLog`` as its ``logger_class``; the line's format stays in
gunicorn.conf.py, with ``%(U)s`` now meaning :func:`logged_path`.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger
from gunicorn.util import split_request_uri

REDACTED = "[redacted]"
# Paths whose last segment is an emailed link's secret (see the routes of auth and accounts).
_TOKEN_PATH = re.compile(r"/(confirm|password/reset|unlock|invitations)/")
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')


def escape(text: str) -> str:
    """Show control characters, quotes, backslashes and non-ASCII as \\xNN escapes."""
    return _UNSAFE.sub(lambda m: "".join(f"\\x{b:02x}" for b in m.group().encode()), text)


def logged_path(raw_uri: str, routed_path: str | None = None) -> str:
    """The request's path as the client sent it (still percent-encoded), without its query.

    If the path the app routed (``PATH_INFO``: decoded, as gunicorn parsed it) or the raw one
    reaches a link's path, everything after it is ``[redacted]``: the route is looked for
    with repeated slashes merged, so no spelling of a link carries its token into the log.
    """
    path = (split_request_uri(raw_uri).path or "") if raw_uri else ""
    for candidate in (routed_path, unquote(path, errors="replace")):
        if candidate:
            match = _TOKEN_PATH.search(re.sub("/+", "/", candidate))
            if match:
                return f"/{match.group(1)}/{REDACTED}"
    return escape(path)


# Atoms this logger can make without gunicorn's full set (which formats the time and every
# header and environ variable of each request): enough for the project's own format.
_PLAIN_ATOMS = frozenset("hmUsbLarqf")
_ATOM_NAME = re.compile(r"%\((.*?)\)s")


@functools.lru_cache(maxsize=8)
def _plain(log_format: str) -> bool:
    return set(_ATOM_NAME.findall(log_format)) <= _PLAIN_ATOMS


class AccessLog(Logger):
    """Gunicorn's logger with the path atom (``%(U)s``) and user agent (``%(a)s``) made safe."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        if _plain(self.cfg.access_log_format):  # type: ignore[attr-defined]
            status = resp.status
            sent = getattr(resp, "sent", None)
            return {
                "h": environ.get("REMOTE_ADDR", "-"),
                "m": environ.get("REQUEST_METHOD"),
                "U": logged_path(environ.get("RAW_URI") or "", environ.get("PATH_INFO")),
                "s": status.split(None, 1)[0] if isinstance(status, str) else status,
                "b": str(sent) if sent is not None else "-",
                "L": f"{request_time.seconds}.{request_time.microseconds:06d}",
                "a": escape(environ.get("HTTP_USER_AGENT", "-")),
                "r": "-",
                "q": "-",
                "f": "-",
            }
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["U"] = logged_path(environ.get("RAW_URI") or "", environ.get("PATH_INFO"))
        atoms["a"] = escape(environ.get("HTTP_USER_AGENT", "-"))
        # The request line, query string, referrer and every header and environ atom can
        # carry a token: none of them is logged.
        for name in ("r", "q", "f"):
            atoms[name] = "-"
        return {k: v for k, v in atoms.items() if not k.startswith("{")}
