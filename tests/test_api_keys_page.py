"""The keys page /a/<slug>/api_keys and the `keys` commands (docs/api-keys.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub import api_tokens
from terminus_hub.extensions import db
from terminus_hub.models import ApiKey
from tests import factories
from tests.factories import key_form
from tests.factories import make_api_key
from tests.factories import sign_in

TOKEN_PATTERN = re.compile(r"thub_[0-9A-Za-z]{32}")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


# helpers


def key_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ApiKey))


def api_status(app: Flask, token: str) -> int:
    """What the API says to this token, from a client without cookies."""
    return (
        app.test_client()
        .get("/api/v1/account", headers={"Authorization": f"Bearer {token}"})
        .status_code
    )


def member_of(app: Flask, slug: str, role: str) -> str:
    user = factories.make_user(app)
    factories.make_membership(app, slug, user.email, role)
    return user.email


def keys_page(client: FlaskClient, slug: str) -> str:
    response = client.get(f"/a/{slug}/api_keys")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def key_row(page: str, key_id: str) -> str:
    match = re.search(rf'<tr id="key-{re.escape(key_id)}">(.*?)</tr>', page, re.DOTALL)
    assert match, f"no row for {key_id}"
    return match.group(1)


@pytest.fixture
def owner(app: Flask, client: FlaskClient, user: factories.Person) -> factories.Person:
    """The user, signed in on `client`, owning their account."""
    sign_in(client, user.email)
    return user


# the page


def test_an_owner_sees_the_create_form(client: FlaskClient, owner) -> None:
    page = keys_page(client, owner.account_slug)
    assert 'id="create-key"' in page
    assert f'action="/a/{owner.account_slug}/api_keys"' in page
    assert 'name="name"' in page
    assert "No keys yet." in page


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_creating_a_key_shows_the_token_once(app: Flask, client: FlaskClient, role) -> None:
    person = factories.make_person(app)
    email = person.email if role == "owner" else member_of(app, person.account_slug, role)
    sign_in(client, email)

    response = client.post(f"/a/{person.account_slug}/api_keys", data=key_form("CI pipeline"))
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    assert "<html" in page
    tokens = set(TOKEN_PATTERN.findall(page))
    assert len(tokens) == 1
    (token,) = tokens
    assert api_tokens.is_well_formed(token)
    assert "only time it is shown" in page
    assert api_status(app, token) == 200

    again = keys_page(client, person.account_slug)
    assert token not in again and token[5:] not in again
    assert not TOKEN_PATTERN.search(again)
    assert "CI pipeline" in again and api_tokens.display_prefix(token) in again


def test_an_htmx_create_answers_with_the_fragment(app: Flask, client, owner, hx) -> None:
    response = client.post(
        f"/a/{owner.account_slug}/api_keys", data=key_form("Deploys"), headers=hx
    )
    assert response.status_code == 201
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and "<head" not in fragment
    assert fragment.lstrip().startswith('<div id="api-keys">')
    (token,) = set(TOKEN_PATTERN.findall(fragment))
    assert api_status(app, token) == 200
    assert "HX-Request" in response.headers.get("Vary", "")
    assert not TOKEN_PATTERN.search(keys_page(client, owner.account_slug))


def test_the_list_shows_name_prefix_and_never_used(app: Flask, client, owner) -> None:
    key_id, token = make_api_key(app, owner.account_slug, "Nightly export")
    row = key_row(keys_page(client, owner.account_slug), key_id)
    assert "Nightly export" in row
    assert api_tokens.display_prefix(token) in row
    assert row.count("Never") == 2  # never used, never expires
    assert token not in row and token[11:] not in row

    assert api_status(app, token) == 200
    row = key_row(keys_page(client, owner.account_slug), key_id)
    assert row.count("Never") == 1  # used now; still never expires
    assert "UTC" in row


def test_key_names_are_escaped(app: Flask, client, owner) -> None:
    name = '<script>alert("x")</script>'
    response = client.post(f"/a/{owner.account_slug}/api_keys", data=key_form(name))
    assert response.status_code == 201
    page = keys_page(client, owner.account_slug)
    assert name not in page
    assert "&lt;script&gt;alert(" in page


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "two\nlines"])
def test_a_bad_name_creates_nothing(app: Flask, client, owner, name: str) -> None:
    response = client.post(f"/a/{owner.account_slug}/api_keys", data=key_form(name))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert not TOKEN_PATTERN.search(page)
    assert key_count(app) == 0


def test_members_see_the_list_but_cannot_create_or_delete(app: Flask, client) -> None:
    person = factories.make_person(app)
    key_id, token = make_api_key(app, person.account_slug, "Shared")
    sign_in(client, member_of(app, person.account_slug, "member"))

    page = keys_page(client, person.account_slug)
    assert "Shared" in page and api_tokens.display_prefix(token) in page
    assert 'id="create-key"' not in page
    assert "/delete" not in page and "Delete key" not in page

    created = client.post(f"/a/{person.account_slug}/api_keys", data=key_form("Mine"))
    assert created.status_code == 403
    assert not TOKEN_PATTERN.search(created.get_data(as_text=True))
    deleted = client.post(f"/a/{person.account_slug}/api_keys/{key_id}/delete")
    assert deleted.status_code == 403
    assert key_count(app) == 1
    assert api_status(app, token) == 200


def test_deleting_a_key_from_the_page_makes_it_fail(app: Flask, client, owner) -> None:
    key_id, token = make_api_key(app, owner.account_slug, "Old")
    assert api_status(app, token) == 200
    assert "Delete key" in key_row(keys_page(client, owner.account_slug), key_id)

    response = client.post(f"/a/{owner.account_slug}/api_keys/{key_id}/delete")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/a/{owner.account_slug}/api_keys")
    assert api_status(app, token) == 401
    page = keys_page(client, owner.account_slug)
    assert f'id="key-{key_id}"' not in page
    assert "revoked" in page


def test_deleting_a_key_through_htmx_redirects_the_page(app: Flask, client, owner, hx) -> None:
    key_id, token = make_api_key(app, owner.account_slug)
    response = client.post(f"/a/{owner.account_slug}/api_keys/{key_id}/delete", headers=hx)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/a/{owner.account_slug}/api_keys")
    assert api_status(app, token) == 401


def test_deleting_needs_a_post(app: Flask, client, owner) -> None:
    key_id, token = make_api_key(app, owner.account_slug)
    assert client.get(f"/a/{owner.account_slug}/api_keys/{key_id}/delete").status_code == 405
    assert api_status(app, token) == 200


def test_deleting_an_unknown_key_is_not_found(client: FlaskClient, owner) -> None:
    for key_id in ("key_nope", "' OR 1=1--", "k" * 300):
        response = client.post(f"/a/{owner.account_slug}/api_keys/{key_id}/delete")
        assert response.status_code == 404


def test_a_non_member_gets_404_everywhere(app: Flask, client: FlaskClient, owner) -> None:
    other = factories.make_person(app)
    key_id, token = make_api_key(app, other.account_slug)
    slug = other.account_slug
    assert client.get(f"/a/{slug}/api_keys").status_code == 404
    assert client.post(f"/a/{slug}/api_keys", data=key_form("Sneaky")).status_code == 404
    assert client.post(f"/a/{slug}/api_keys/{key_id}/delete").status_code == 404
    # Nor through one's own account's address.
    assert client.post(f"/a/{owner.account_slug}/api_keys/{key_id}/delete").status_code == 404
    assert key_count(app) == 1
    assert api_status(app, token) == 200


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask, client, user) -> None:
    response = client.get(f"/a/{user.account_slug}/api_keys")
    assert response.status_code == 302
    assert "/sign_in" in response.headers["Location"]
    assert client.post(f"/a/{user.account_slug}/api_keys", data=key_form("x")).status_code == 302
    assert key_count(app) == 0


def test_the_keys_page_is_not_cached(client: FlaskClient, owner) -> None:
    response = client.post(f"/a/{owner.account_slug}/api_keys", data=key_form("Fresh"))
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_the_forms_need_their_csrf_token(app: Flask, client: FlaskClient, user) -> None:
    sign_in(client, user.email)
    slug = user.account_slug
    assert client.post(f"/a/{slug}/api_keys", data=key_form("No token")).status_code == 400
    assert key_count(app) == 0

    token = CSRF_META.search(keys_page(client, slug))[1]
    created = client.post(f"/a/{slug}/api_keys", data=key_form("CI", csrf_token=token))
    assert created.status_code == 201
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id))
    assert client.post(f"/a/{slug}/api_keys/{key_id}/delete").status_code == 400
    assert key_count(app) == 1
    response = client.post(f"/a/{slug}/api_keys/{key_id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert key_count(app) == 0


# the keys commands


def assert_clear_error(result: Result) -> None:
    """A failed command: non-zero exit, one Error: line on stderr, nothing on stdout."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_keys_create_prints_the_token_once_on_stdout(app: Flask, runner: FlaskCliRunner, user):
    result = runner.invoke(args=["keys", "create", user.account_slug, "CI pipeline"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert TOKEN_PATTERN.fullmatch(token) and api_tokens.is_well_formed(token)
    assert token not in result.stderr
    assert api_status(app, token) == 200
    with app.app_context():
        (row,) = db.session.scalars(select(ApiKey)).all()
        assert (row.name, row.prefix) == ("CI pipeline", api_tokens.display_prefix(token))
        assert row.token_hash == api_tokens.token_hash(token)


def test_keys_list_shows_prefix_and_name_but_not_the_token(app, runner, user) -> None:
    key_id, token = make_api_key(app, user.account_slug, "Nightly export")
    other = factories.make_person(app)
    make_api_key(app, other.account_slug, "Not theirs")

    result = runner.invoke(args=["keys", "list", user.account_slug])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.strip().splitlines()
    assert key_id in line
    assert api_tokens.display_prefix(token) in line
    assert "Nightly export" in line
    assert token not in result.output and token[11:] not in result.output
    assert not TOKEN_PATTERN.search(result.output)


def test_keys_revoke_makes_the_token_fail(app: Flask, runner: FlaskCliRunner, user) -> None:
    created = runner.invoke(args=["keys", "create", user.account_slug, "Temporary"])
    token = created.stdout.strip()
    (key_id,) = [
        line.split("\t")[0]
        for line in runner.invoke(args=["keys", "list", user.account_slug]).stdout.splitlines()
    ]
    assert api_status(app, token) == 200

    result = runner.invoke(args=["keys", "revoke", key_id])
    assert result.exit_code == 0, result.output
    assert token not in result.output
    assert api_status(app, token) == 401
    assert key_count(app) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "no-such-account", "CI"],
        ["keys", "create", "' OR 1=1--", "CI"],
        ["keys", "create", "{slug}", ""],
        ["keys", "create", "{slug}", "   "],
        ["keys", "create", "{slug}", "x" * 101],
        ["keys", "list", "no-such-account"],
        ["keys", "revoke", "key_nope"],
        ["keys", "revoke", "' OR 1=1--"],
        ["keys", "revoke", "k" * 500],
        ["keys", "revoke", ""],
    ],
    ids=[
        "create unknown slug",
        "create injected slug",
        "create empty name",
        "create blank name",
        "create long name",
        "list unknown slug",
        "revoke unknown id",
        "revoke injected id",
        "revoke huge id",
        "revoke empty id",
    ],
)
def test_bad_input_to_keys_commands_is_one_clear_error(
    app: Flask, runner: FlaskCliRunner, user, args: list[str]
) -> None:
    _, token = make_api_key(app, user.account_slug)
    result = runner.invoke(args=[arg.format(slug=user.account_slug) for arg in args])
    assert_clear_error(result)
    assert key_count(app) == 1
    assert api_status(app, token) == 200


def test_missing_arguments_are_usage_errors(runner: FlaskCliRunner) -> None:
    result: Any = runner.invoke(args=["keys", "create"])
    assert result.exit_code != 0
    assert "Error:" in result.stderr and "Traceback" not in result.output
