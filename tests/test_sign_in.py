"""The email-first sign-in flow (docs/authentication.md)."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from terminus_hub.core.signin import INCORRECT
from terminus_hub.core.signin import UNCONFIRMED
from terminus_hub.extensions import db
from terminus_hub.models import User
from tests import factories

# The token (hidden field and meta tag) is the only part allowed to differ.
CSRF_FIELD = re.compile(
    rb'(<meta name="csrf-token" content=|name="csrf_token" type="hidden" value=)"[^"]*"'
)


def test_sign_in_page_has_email_step_and_links(client):
    response = client.get("/sign_in")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'action="/sign_in/email"' in page
    assert 'name="email"' in page and 'autocomplete="username webauthn"' in page
    assert 'href="/sign_in/password"' in page
    assert 'href="/sign_up"' in page
    assert '<meta name="csrf-token"' in page


def test_email_step_answers_htmx_with_the_password_partial(client, hx, user):
    response = client.post("/sign_in/email", data={"email": user.email}, headers=hx)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in page
    assert 'action="/sign_in/password"' in page
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    assert "HX-Request" in response.headers["Vary"]


def test_email_step_without_javascript_answers_the_full_page(client, user):
    response = client.post("/sign_in/email", data={"email": user.email})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in page and 'action="/sign_in/password"' in page


def test_password_step_is_identical_for_known_and_unknown_emails(client, hx, user):
    known = client.post("/sign_in/email", data={"email": user.email}, headers=hx)
    unknown = client.post("/sign_in/email", data={"email": "nobody@example.com"}, headers=hx)
    assert known.status_code == unknown.status_code == 200
    assert known.data.replace(user.email.encode(), b"EMAIL") == unknown.data.replace(
        b"nobody@example.com", b"EMAIL"
    )
    assert known.headers.get("Set-Cookie") is None and unknown.headers.get("Set-Cookie") is None


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter your email address."),
        ("   ", "Enter your email address."),
        ("not-an-email", "Enter an email address like name@example.com."),
        ("a@b", "Enter an email address like name@example.com."),
        ("x" * 250 + "@example.com", "Enter an email address like name@example.com."),
        ("аdmin@example.com", "Enter an email address like name@example.com."),  # Cyrillic а
        ("a@example.com\r\nBcc: x@evil.example", "Enter an email address like name@example.com."),
    ],
)
def test_email_step_rejects_bad_input_next_to_the_field(client, email, message):
    response = client.post("/sign_in/email", data={"email": email})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'aria-invalid="true"' in page


def test_email_step_keeps_what_was_typed(client):
    response = client.post("/sign_in/email", data={"email": "typo@@example.com"})
    assert 'value="typo@@example.com"' in response.get_data(as_text=True)


def test_password_page_shows_email_and_password_on_one_form(client):
    response = client.get("/sign_in/password")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="email"' in page and 'name="password"' in page
    assert 'action="/sign_in/password"' in page


def test_correct_password_with_one_account_goes_to_that_account(auth, user):
    response = auth.sign_in(user.email, user.password)
    assert response.status_code == 303
    assert response.location == f"/a/{user.account_slug}/"


def test_sign_in_for_htmx_navigates_with_hx_redirect(client, hx, user):
    response = client.post(
        "/sign_in/password", data={"email": user.email, "password": user.password}, headers=hx
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/a/{user.account_slug}/"


def test_email_is_matched_whatever_its_case_and_spacing(auth, user):
    response = auth.sign_in(f"  {user.email.upper()} ", user.password)
    assert response.status_code == 303


def test_person_in_two_accounts_goes_to_the_picker(app, auth, client, user):
    other = factories.make_account(app, user.email, name="Beta Corp")
    response = auth.sign_in(user.email, user.password)
    assert response.location == "/accounts"
    page = client.get("/accounts").get_data(as_text=True)
    assert f'href="/a/{user.account_slug}/"' in page
    assert f'href="/a/{other}/"' in page


def test_person_in_no_account_goes_to_the_picker_with_an_explanation(app, auth, client):
    lone = factories.make_user(app)
    response = auth.sign_in(lone.email)
    assert response.location == "/accounts"
    assert "not a member of any account" in client.get("/accounts").get_data(as_text=True)


def _normalized(response):
    return CSRF_FIELD.sub(b"CSRF", response.data)


def test_wrong_password_and_unknown_email_answer_identically(auth, user):
    wrong = auth.sign_in(user.email, "wrong password entirely")
    unknown = auth.sign_in("nobody@example.com", "wrong password entirely")
    assert wrong.status_code == unknown.status_code == 422
    assert INCORRECT in wrong.get_data(as_text=True)
    assert _normalized(wrong).replace(user.email.encode(), b"EMAIL") == _normalized(
        unknown
    ).replace(b"nobody@example.com", b"EMAIL")


def test_unconfirmed_user_with_wrong_password_sees_the_generic_message(app, auth):
    person = factories.make_person(app, confirmed=False)
    response = auth.sign_in(person.email, "wrong password entirely")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert INCORRECT in page and UNCONFIRMED not in page


def test_unconfirmed_user_with_right_password_is_asked_to_confirm(app, auth, client):
    person = factories.make_person(app, confirmed=False)
    response = auth.sign_in(person.email, person.password)
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert UNCONFIRMED in page
    assert 'action="/confirm/resend"' in page
    assert client.get("/accounts").status_code == 302  # not signed in


def test_failed_sign_in_keeps_the_email_but_never_echoes_the_password(auth, user):
    response = auth.sign_in(user.email, "a secret that is wrong")
    page = response.get_data(as_text=True)
    assert f'value="{user.email}"' in page
    assert "a secret that is wrong" not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "password": "x"}, "Enter your email address."),
        ({"email": "a@example.com", "password": ""}, "Enter your password."),
        ({}, "Enter your email address."),
    ],
)
def test_password_step_rejects_missing_fields(client, data, message):
    response = client.post("/sign_in/password", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "' OR 1=1--", "a@b"],
)
def test_malformed_emails_get_the_generic_failure(auth, email):
    response = auth.sign_in(email, "some password here")
    assert response.status_code == 422
    assert INCORRECT in response.get_data(as_text=True)


@pytest.mark.parametrize("email", ["ü" * 300, "x" * 5000 + "@example.com"])
def test_overlong_emails_are_refused_next_to_the_field(auth, email):
    response = auth.sign_in(email, "some password here")
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/sign_in/password", "/sign_in/email", "/sign_up"])
def test_nul_characters_are_refused_before_any_view(client, path):
    response = client.post(path, data={"email": "a@example.com\x00", "password": "x\x00y"})
    assert response.status_code == 400


def test_overlong_password_is_refused_with_the_generic_message(auth, user):
    response = auth.sign_in(user.email, "x" * 5000)
    assert response.status_code == 422
    assert INCORRECT in response.get_data(as_text=True)


def test_request_bodies_over_the_limit_get_413(client):
    response = client.post(
        "/sign_in/password", data={"email": "a@b.c", "password": "x" * 2_000_000}
    )
    assert response.status_code == 413


def test_duplicate_email_fields_use_the_first_consistently(auth, client, user):
    response = client.post(
        "/sign_in/password",
        data=MultiDict(
            [("email", "nobody@example.com"), ("email", user.email), ("password", user.password)]
        ),
    )
    assert response.status_code == 422
    assert client.get("/accounts").status_code == 302


def test_credentials_in_the_query_string_are_not_accepted(client, user):
    response = client.get(f"/sign_in/password?email={user.email}&password={user.password}")
    assert response.status_code == 200
    assert client.get("/accounts").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\\\evil.example",
        " //evil.example",
        "\t//evil.example",
        "https://evil.example",
        "https://evil.example\\.thub.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
    ],
)
def test_next_never_leaves_the_site(auth, user, target):
    response = auth.sign_in(user.email, user.password, next=target)
    assert response.status_code == 303
    assert response.location.startswith("/")
    assert not response.location.startswith("//")
    assert "evil.example" not in response.location or response.location.startswith("/%2F")


def test_next_to_a_local_path_is_followed(auth, user):
    response = auth.sign_in(user.email, user.password, next="/accounts")
    assert response.location == "/accounts"


def test_protected_page_sends_you_to_sign_in_and_back(client, auth, user):
    response = client.get(f"/a/{user.account_slug}/")
    assert response.status_code == 302
    assert response.location.startswith("/sign_in?next=")
    page = client.get(response.location).get_data(as_text=True)
    assert f'value="/a/{user.account_slug}/"' in page


def test_signed_in_person_visiting_sign_in_goes_to_accounts(auth, client, user):
    auth.sign_in(user.email, user.password)
    response = client.get("/sign_in")
    assert response.status_code == 303
    assert response.location == "/accounts"


def test_home_path_sends_visitors_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 303 and response.location == "/sign_in"


def test_a_correct_password_upgrades_a_hash_made_at_another_cost(app, auth):
    person = factories.make_person(app)  # hashed at cost 4
    app.config["TERMINUS_BCRYPT_ROUNDS"] = 5
    with auth.sign_in(person.email, person.password) as response:
        assert response.status_code == 303
    with app.app_context():
        stored = db.session.get(User, person.id).password_hash
    assert "$2b$05$" in stored
    with (
        app.test_client() as again,
        again.post(
            "/sign_in/password", data={"email": person.email, "password": person.password}
        ) as response,
    ):
        assert response.status_code == 303


def test_a_wrong_password_leaves_the_hash_alone(app, auth):
    person = factories.make_person(app)
    with app.app_context():
        before = db.session.get(User, person.id).password_hash
    app.config["TERMINUS_BCRYPT_ROUNDS"] = 5
    with auth.sign_in(person.email, "not the password at all") as response:
        assert response.status_code == 422
    with app.app_context():
        assert db.session.get(User, person.id).password_hash == before
