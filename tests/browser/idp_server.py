"""A tiny identity provider web site for the browser suite, around ``tests.saml_idp.TestIdp``.

It listens on its own port of 127.0.0.1 (another origin than the app) and plays the IdP's part
of an SP-initiated sign-in the way a person sees it:

1. ``GET /sso/redirect?SAMLRequest=…`` takes the app's signed AuthnRequest (HTTP-Redirect
   binding), verifies it, and shows a sign-in page: an email field and a button;
2. ``POST /sso/sign_in`` answers with a page holding a form that POSTs ``SAMLResponse`` and
   ``RelayState`` to the app's ACS (HTTP-POST binding). A one-line script submits it at once;
   without JavaScript the person presses its visible Continue button.
"""

from __future__ import annotations

import html
import pathlib
import secrets
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from tests.saml_idp import ParsedRequest
from tests.saml_idp import TestIdp

HOST = "127.0.0.1"
TITLE = "Example IdP"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;font-size:1rem;margin:.4rem 0}}input{{width:100%;padding:.5rem}}
button{{padding:.5rem 1.2rem}}</style></head>
<body><main>{body}</main></body></html>"""


class IdpServer:
    """``TestIdp`` behind a werkzeug server on a free port; ``start()`` and ``stop()``."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self._server: BaseWSGIServer = make_server(HOST, 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        # "localhost" like the hub: the IdP posts back to the same site, as a real IdP posts
        # to an HTTPS app with SameSite=None cookies.
        self.url = f"http://localhost:{self.port}"
        self.idp = TestIdp(
            workdir, entity_id=f"{self.url}/metadata", sso_url=f"{self.url}/sso/redirect"
        )
        self._pending: dict[str, ParsedRequest] = {}
        self._lock = threading.Lock()  # TestIdp changes its pysaml2 config while it parses
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # what the IdP refused, for a failing test's report

    @property
    def metadata_xml(self) -> str:
        return self.idp.metadata_xml

    def trust_sp(self, sp_metadata_xml: str) -> None:
        """Load an account's SP metadata (its ACS and request-signing certificate)."""
        with self._lock:
            self.idp.trust_sp(sp_metadata_xml)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the web site ---------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/sso/redirect" and request.method == "GET":
            response = self._sign_in_page(request)
        elif request.path == "/sso/sign_in" and request.method == "POST":
            response = self._answer(request)
        else:
            response = _page("Not found", "<h1>Not found</h1>", 404)
        return response(environ, start_response)

    def _sign_in_page(self, request: Request) -> Response:
        try:
            with self._lock:
                parsed = self.idp.parse_request(request.url)
        except Exception as exc:  # anything the IdP refuses is a failed test, said on the page
            self.errors.append(f"AuthnRequest refused: {exc!r}")
            return _page(
                "Request refused", f"<h1>Request refused</h1><p>{html.escape(str(exc))}</p>", 400
            )
        handle = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[handle] = parsed
        body = (
            f"<h1>Sign in to {TITLE}</h1>"
            f"<p>Signing in to <span id='sp'>{html.escape(parsed.sp_entity_id)}</span></p>"
            '<form method="post" action="/sso/sign_in">'
            f'<input type="hidden" name="handle" value="{handle}">'
            '<label for="idp-email">Work email</label>'
            '<input id="idp-email" name="email" type="email" autocomplete="username" autofocus>'
            '<button type="submit">Sign in</button></form>'
        )
        return _page(f"Sign in · {TITLE}", body)

    def _answer(self, request: Request) -> Response:
        with self._lock:
            parsed = self._pending.pop(request.form.get("handle", ""), None)
        if parsed is None:
            self.errors.append("sign-in form posted without a pending request")
            return _page("Expired", "<h1>No pending request</h1>", 400)
        with self._lock:
            saml_response = self.idp.respond(parsed, request.form.get("email", ""))
        relay = parsed.relay_state or ""
        body = (
            "<h1>Signed in</h1><p>Taking you back to the application…</p>"
            f'<form id="to-sp" method="post" action="{html.escape(parsed.acs_url)}">'
            f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay)}">'
            '<button type="submit">Continue</button></form>'
            "<script>document.getElementById('to-sp').submit();</script>"
        )
        return _page(f"Signed in · {TITLE}", body)


def _page(title: str, body: str, status: int = 200) -> Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    return Response(text, status=status, content_type="text/html; charset=utf-8")
