"""Headers every page sends, error pages without tracebacks, CSRF on forms."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import InternalServerError

from terminus_hub.errors import CSRF_MESSAGE


@pytest.mark.parametrize("path", ["/sign_in", "/sign_up", "/sign_in/password", "/nope"])
def test_pages_send_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert headers["Cache-Control"] == "no-store"


def test_https_requests_get_hsts(client):
    response = client.get("/sign_in", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_static_files_are_served_without_no_store(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_missing_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_htmx_errors_get_a_fragment(client, hx):
    response = client.get("/no/such/page", headers=hx)
    assert response.status_code == 404
    assert "<html" not in response.get_data(as_text=True)


def test_unexpected_errors_show_no_traceback(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.testing = False  # let the error handler answer, as in production
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in page and "Traceback" not in page
    assert InternalServerError.code == 500


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/sign_in/email", {"email": "a@example.com"}),
        ("/sign_in/password", {"email": "a@example.com", "password": "x"}),
        ("/sign_up", {"name": "A", "email": "a@example.com", "password": "p" * 20}),
        ("/confirm/resend", {"email": "a@example.com"}),
        ("/sign_out", {}),
    ],
)
def test_forms_without_a_csrf_token_are_refused(client, path, data):
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_csrf_token_changes_at_sign_in(client, user):
    page = client.get("/sign_in/password").get_data(as_text=True)
    before = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/sign_in/password",
        data={"email": user.email, "password": user.password, "csrf_token": before},
    )
    assert response.status_code == 303
    # The pre-sign-in token belonged to the discarded session.
    refused = client.post("/sign_out", data={"csrf_token": before})
    assert refused.status_code == 400
    assert client.get("/accounts").status_code == 200


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_htmx_requests_carry_csrf_in_a_header(client, hx):
    page = client.get("/sign_in").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/sign_in/email",
        data={"email": "a@example.com"},
        headers={**hx, "X-CSRFToken": token},
    )
    assert response.status_code == 200
