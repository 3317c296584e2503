"""Who may call the API (docs/api-authentication.md): keys, sessions, CSRF, limits."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub import api_tokens
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import Workspace
from tests import factories
from tests.factories import make_api_key
from tests.factories import sign_in

REALM = 'Bearer realm="terminus"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="terminus", error="invalid_token"'
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
TOKEN_PATTERN = re.compile(r"thub_[0-9A-Za-z]{32}")
LISTING_FIELDS = {
    "id",
    "name",
    "prefix",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "replaced_by",
}


# helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def open_account(client: FlaskClient, slug: str) -> str:
    """Visit /a/<slug>/ (the session's current account from now on); return its CSRF token."""
    response = client.get(f"/a/{slug}/")
    assert response.status_code == 200
    return CSRF_META.search(response.get_data(as_text=True)).group(1)


def member_of(app: Flask, slug: str, role: str) -> factories.Person:
    """Add a confirmed person with a role in an existing account."""
    user = factories.make_user(app)
    factories.make_membership(app, slug, user.email, role)
    return factories.Person(
        id=user.id, email=user.email, password=factories.PASSWORD, account_slug=slug
    )


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The contract's one error shape, as JSON."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@contextmanager
def recorded_queries(app: Flask) -> Iterator[list[str]]:
    """Collect every SQL statement the app's engine runs inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def last_used_at(app: Flask, key_id: str) -> datetime | None:
    with app.app_context():
        return db.session.get(ApiKey, key_id).last_used_at


@pytest.fixture
def key(app: Flask, user: factories.Person) -> tuple[str, str]:
    """A key of the user's account: (id, token)."""
    return make_api_key(app, user.account_slug)


# no credentials


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/account"),
        ("GET", "/api/v1/workspaces"),
        ("POST", "/api/v1/workspaces"),
        ("GET", "/api/v1/records"),
        ("PATCH", "/api/v1/records/rec_x"),
        ("DELETE", "/api/v1/workspaces/ws_x"),
        ("GET", "/api/v1/api_keys"),
        ("POST", "/api/v1/api_keys"),
        ("DELETE", "/api/v1/api_keys/key_x"),
    ],
)
def test_no_credentials_is_unauthorized_with_a_bearer_challenge(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, json={"name": "x"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == REALM


def test_a_key_in_the_query_string_is_not_accepted(client: FlaskClient, key) -> None:
    _, token = key
    for name in ("api_key", "access_token", "token"):
        response = client.get(f"/api/v1/account?{name}={token}")
        assert_error(response, 401, "unauthorized")


# bad Authorization headers


def _change_last_character(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


BAD_HEADERS: dict[str, Callable[[str], str]] = {
    "not a token": lambda token: "Bearer nope",
    "empty bearer": lambda token: "Bearer ",
    "bearer alone": lambda token: "Bearer",
    "bad checksum": lambda token: f"Bearer {_change_last_character(token)}",
    "one body character changed": lambda token: (
        f"Bearer {token[:10]}{'x' if token[10] != 'x' else 'y'}{token[11:]}"
    ),
    "31 characters": lambda token: f"Bearer {token[:-1]}",
    "33 characters": lambda token: f"Bearer {token}A",
    "wrong prefix": lambda token: f"Bearer ghp_{token[5:]}",
    "token alone": lambda token: token,
    "basic scheme": lambda token: "Basic dXNlcjpwYXNzd29yZA==",
    "token scheme": lambda token: f"Token {token}",
    "basic scheme carrying the key": lambda token: f"Basic {token}",
    "huge (10 kB)": lambda token: f"Bearer {token}" + "A" * 10_240,
    "huge bearer": lambda token: "Bearer " + "A" * 10_240,
    "non-ASCII": lambda token: "Bearer thub_" + "é" * 32,
    "non-ASCII look-alike": lambda token: f"Bearer {token[:-1]}а",
    "NUL": lambda token: f"Bearer {token[:-1]}\x00",
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_malformed_authorization_is_invalid_token_without_a_database_query(
    app: Flask, client: FlaskClient, key, header: Callable[[str], str]
) -> None:
    _, token = key
    with recorded_queries(app) as statements:
        response = client.get("/api/v1/account", headers={"Authorization": header(token)})
    assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert statements == []


def test_query_counting_sees_the_lookup_of_a_well_formed_key(app: Flask, client, key) -> None:
    # The check above is only worth something if the listener sees real queries.
    with recorded_queries(app) as statements:
        response = client.get("/api/v1/account", headers=bearer(api_tokens.generate()))
    assert_error(response, 401, "invalid_token")
    assert len(statements) == 1


def test_a_recently_used_key_costs_one_query(app: Flask, client: FlaskClient, key) -> None:
    _, token = key
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with recorded_queries(app) as statements:
        response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    assert len(statements) == 1, statements


def test_an_unknown_well_formed_key_is_invalid_token(client: FlaskClient, user) -> None:
    response = client.get("/api/v1/account", headers=bearer(api_tokens.generate()))
    assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_a_revoked_key_is_invalid_token(app: Flask, client: FlaskClient, key) -> None:
    key_id, token = key
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with app.app_context():
        db.session.execute(delete(ApiKey).where(ApiKey.id == key_id))
        db.session.commit()
    response = client.get("/api/v1/account", headers=bearer(token))
    assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_a_key_of_a_deleted_account_is_invalid_token(app: Flask, client, user, key) -> None:
    _, token = key
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        db.session.delete(account)
        db.session.commit()
    assert_error(client.get("/api/v1/account", headers=bearer(token)), 401, "invalid_token")


def test_every_invalid_token_answer_is_identical(app: Flask, client: FlaskClient, key) -> None:
    _, token = key
    revoked_id, revoked = make_api_key(app, factories.make_person(app).account_slug)
    with app.app_context():
        db.session.execute(delete(ApiKey).where(ApiKey.id == revoked_id))
        db.session.commit()
    headers = [
        "Bearer " + revoked,
        "Bearer " + api_tokens.generate(),
        "Bearer " + _change_last_character(token),
        "Basic " + token,
        "Bearer x",
    ]
    answers = set()
    for header in headers:
        response = client.get("/api/v1/workspaces", headers={"Authorization": header})
        answers.add(
            (response.status_code, response.get_data(), response.headers["WWW-Authenticate"])
        )
    assert len(answers) == 1


# a valid key


def test_a_valid_key_reads_its_account(app: Flask, client: FlaskClient, user, key) -> None:
    _, token = key
    response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    body = response.get_json()
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        expected = {"id": account.id, "slug": account.slug, "name": account.name}
    assert body == {**expected, "auth": "api_key"}


def test_the_bearer_scheme_is_case_insensitive(client: FlaskClient, key) -> None:
    _, token = key
    response = client.get("/api/v1/account", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_each_key_reaches_only_its_own_account(app: Flask, client: FlaskClient, user, key):
    other = factories.make_person(app)
    _, other_token = make_api_key(app, other.account_slug)
    assert client.get("/api/v1/account", headers=bearer(key[1])).get_json()["slug"] == (
        user.account_slug
    )
    assert client.get("/api/v1/account", headers=bearer(other_token)).get_json()["slug"] == (
        other.account_slug
    )


# the Authorization header is judged alone


def test_a_signed_in_browser_with_a_bad_bearer_token_is_refused(client: FlaskClient, user):
    sign_in(client, user.email)
    assert client.get("/api/v1/account").status_code == 200
    for header in ("Bearer nope", "Bearer " + api_tokens.generate(), "Basic abc", ""):
        response = client.get("/api/v1/account", headers={"Authorization": header})
        assert_error(response, 401, "invalid_token")


def test_a_signed_in_browser_sending_another_accounts_key_acts_as_that_key(app, client, user):
    other = factories.make_person(app)
    _, other_token = make_api_key(app, other.account_slug)
    sign_in(client, user.email)
    open_account(client, user.account_slug)
    body = client.get("/api/v1/account", headers=bearer(other_token)).get_json()
    assert body["slug"] == other.account_slug
    assert body["auth"] == "api_key"


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_key_callers_need_no_csrf_token(app: Flask, client: FlaskClient, key) -> None:
    _, token = key
    response = client.post("/api/v1/workspaces", json={"name": "Ops"}, headers=bearer(token))
    assert response.status_code == 201
    workspace_id = response.get_json()["id"]
    path = f"/api/v1/workspaces/{workspace_id}"
    assert client.patch(path, json={"name": "Ops 2"}, headers=bearer(token)).status_code == 200
    assert client.delete(path, headers=bearer(token)).status_code == 204


# session callers


def test_a_signed_in_member_reads_the_account_through_the_session(app, client, user) -> None:
    sign_in(client, user.email)
    response = client.get("/api/v1/account")
    assert response.status_code == 200
    assert response.get_json()["slug"] == user.account_slug
    assert response.get_json()["auth"] == "session"


def test_a_session_acts_on_the_account_opened_last(app: Flask, client: FlaskClient, user) -> None:
    second = factories.make_account(app, user.email)
    sign_in(client, user.email)
    open_account(client, second)
    assert client.get("/api/v1/account").get_json()["slug"] == second
    open_account(client, user.account_slug)
    assert client.get("/api/v1/account").get_json()["slug"] == user.account_slug


def test_a_session_with_several_accounts_and_none_opened_is_refused(app, client, user) -> None:
    factories.make_account(app, user.email)
    sign_in(client, user.email)
    assert_error(client.get("/api/v1/account"), 403, "forbidden")


WRITES = [
    ("POST", "/api/v1/workspaces", {"name": "Ops"}, 201),
    ("PATCH", "/api/v1/workspaces/{id}", {"name": "Renamed"}, 200),
    ("DELETE", "/api/v1/workspaces/{id}", None, 204),
]


def _main_workspace(app: Flask, slug: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Workspace.id).join(Account).where(Account.slug == slug))


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize(("method", "path", "body", "status"), WRITES)
def test_session_writes_without_a_csrf_token_are_forbidden(
    app: Flask, client: FlaskClient, user, method, path, body, status
) -> None:
    workspace_id = _main_workspace(app, user.account_slug)
    sign_in(client, user.email)
    open_account(client, user.account_slug)
    url = path.format(id=workspace_id)
    for headers in ({}, {"X-CSRFToken": "forged"}, {"X-CSRFToken": ""}):
        response = client.open(url, method=method, json=body, headers=headers)
        assert_error(response, 403, "forbidden")
    with app.app_context():
        names = db.session.scalars(select(Workspace.name)).all()
    assert names == ["Main"]


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
@pytest.mark.parametrize(("method", "path", "body", "status"), WRITES)
def test_session_writes_with_the_pages_csrf_token_work(
    app: Flask, client: FlaskClient, user, method, path, body, status
) -> None:
    workspace_id = _main_workspace(app, user.account_slug)
    with app.app_context():  # a second workspace, so that Main may be deleted
        account_id = db.session.scalar(select(Account.id).where(Account.slug == user.account_slug))
        db.session.add(Workspace(account_id=account_id, name="Spare"))
        db.session.commit()
    sign_in(client, user.email)
    csrf = open_account(client, user.account_slug)
    url = path.format(id=workspace_id)
    response = client.open(url, method=method, json=body, headers={"X-CSRFToken": csrf})
    assert response.status_code == status, response.get_data(as_text=True)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_session_reads_need_no_csrf_token(client: FlaskClient, user) -> None:
    sign_in(client, user.email)
    assert client.get("/api/v1/workspaces").status_code == 200


def test_a_removed_members_session_loses_api_access_on_the_next_request(app, client) -> None:
    owner = factories.make_person(app)
    member = member_of(app, owner.account_slug, "member")
    sign_in(client, member.email)
    open_account(client, owner.account_slug)
    assert client.get("/api/v1/workspaces").status_code == 200
    with app.app_context():
        db.session.execute(delete(Membership).where(Membership.user_id == member.id))
        db.session.commit()
    response = client.get("/api/v1/workspaces")
    assert response.status_code in (401, 403)
    assert response.get_json()["error"]["code"] in ("unauthorized", "forbidden")
    assert "data" not in response.get_json()


def test_a_signed_out_browser_is_unauthorized(client: FlaskClient, user, auth) -> None:
    sign_in(client, user.email)
    auth.sign_out()
    assert_error(client.get("/api/v1/account"), 401, "unauthorized")


# admin-only endpoints


def test_keys_cannot_create_keys(app: Flask, client: FlaskClient, key) -> None:
    _, token = key
    response = client.post("/api/v1/api_keys", json={"name": "More"}, headers=bearer(token))
    assert_error(response, 403, "admin_only")
    assert count(app, ApiKey) == 1


def test_keys_cannot_delete_keys(app: Flask, client: FlaskClient, user, key) -> None:
    key_id, token = key
    other_id, _ = make_api_key(app, user.account_slug, "Other")
    for target in (other_id, key_id):
        response = client.delete(f"/api/v1/api_keys/{target}", headers=bearer(token))
        assert_error(response, 403, "admin_only")
    assert count(app, ApiKey) == 2
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200


def test_a_member_session_may_list_but_not_create_or_delete_keys(app, client) -> None:
    owner = factories.make_person(app)
    key_id, token = make_api_key(app, owner.account_slug)
    member = member_of(app, owner.account_slug, "member")
    sign_in(client, member.email)
    csrf = open_account(client, owner.account_slug)
    headers = {"X-CSRFToken": csrf}

    listing = client.get("/api/v1/api_keys")
    assert listing.status_code == 200
    assert [k["id"] for k in listing.get_json()["data"]] == [key_id]
    response = client.post("/api/v1/api_keys", json={"name": "Mine"}, headers=headers)
    assert_error(response, 403, "forbidden")
    response = client.delete(f"/api/v1/api_keys/{key_id}", headers=headers)
    assert_error(response, 403, "forbidden")
    assert count(app, ApiKey) == 1
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_an_owner_or_admin_session_creates_a_key_shown_once(app, client, role) -> None:
    owner = factories.make_person(app)
    person = owner if role == "owner" else member_of(app, owner.account_slug, "admin")
    sign_in(client, person.email)
    csrf = open_account(client, owner.account_slug)

    response = client.post(
        "/api/v1/api_keys", json={"name": "CI pipeline"}, headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 201
    created = response.get_json()
    assert set(created) == LISTING_FIELDS | {"key"}
    assert created["name"] == "CI pipeline"
    assert created["last_used_at"] is None
    token = created["key"]
    assert TOKEN_PATTERN.fullmatch(token) and api_tokens.is_well_formed(token)
    assert token.startswith(created["prefix"]) and len(created["prefix"]) < len(token)

    use = client.get("/api/v1/account", headers=bearer(token))
    assert use.status_code == 200
    assert use.get_json()["slug"] == owner.account_slug
    assert use.get_json()["auth"] == "api_key"


def test_the_key_list_never_holds_the_token_or_its_hash(app: Flask, client: FlaskClient, user):
    sign_in(client, user.email)
    csrf = open_account(client, user.account_slug)
    token = client.post(
        "/api/v1/api_keys", json={"name": "CI"}, headers={"X-CSRFToken": csrf}
    ).get_json()["key"]
    digest = api_tokens.token_hash(token)
    client.get("/api/v1/account", headers=bearer(token))

    for headers in ({}, bearer(token)):
        response = client.get("/api/v1/api_keys", headers=headers)
        text = response.get_data(as_text=True)
        assert response.status_code == 200
        assert token not in text and token[5:] not in text and token[-12:] not in text
        assert digest not in text
        assert not TOKEN_PATTERN.search(text)
        (item,) = response.get_json()["data"]
        assert set(item) == LISTING_FIELDS
        assert item["prefix"] == api_tokens.display_prefix(token)
        assert item["last_used_at"] is not None
    assert response.get_json()["next_cursor"] is None


def test_the_database_holds_no_token_only_its_sha256(app: Flask, client: FlaskClient, user):
    sign_in(client, user.email)
    csrf = open_account(client, user.account_slug)
    token = client.post(
        "/api/v1/api_keys", json={"name": "CI"}, headers={"X-CSRFToken": csrf}
    ).get_json()["key"]
    client.get("/api/v1/account", headers=bearer(token))
    with app.app_context():
        values = [
            str(value)
            for table in db.metadata.sorted_tables
            for row in db.session.execute(select(table))
            for value in row
        ]
        stored = db.session.scalar(select(ApiKey.token_hash))
    assert not any(token in value or token[5:31] in value for value in values)
    assert not any(TOKEN_PATTERN.search(value) for value in values)
    assert stored == api_tokens.token_hash(token)


def test_deleting_a_key_makes_its_very_next_request_fail(app, client, user, key) -> None:
    key_id, token = key
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    browser = app.test_client()
    sign_in(browser, user.email)
    csrf = open_account(browser, user.account_slug)

    response = browser.delete(f"/api/v1/api_keys/{key_id}", headers={"X-CSRFToken": csrf})
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get("/api/v1/account", headers=bearer(token)), 401, "invalid_token")
    again = browser.delete(f"/api/v1/api_keys/{key_id}", headers={"X-CSRFToken": csrf})
    assert_error(again, 404, "not_found")


def test_deleting_an_unknown_key_id_is_not_found(client: FlaskClient, user) -> None:
    sign_in(client, user.email)
    csrf = open_account(client, user.account_slug)
    for key_id in ("key_nope", "' OR 1=1--", "k" * 500):
        response = client.delete(f"/api/v1/api_keys/{key_id}", headers={"X-CSRFToken": csrf})
        assert_error(response, 404, "not_found")


def _key_created_by_an_admin(app: Flask, client: FlaskClient) -> tuple[str, str, str]:
    owner = factories.make_person(app)
    admin = member_of(app, owner.account_slug, "admin")
    browser = app.test_client()
    sign_in(browser, admin.email)
    csrf = open_account(browser, owner.account_slug)
    token = browser.post(
        "/api/v1/api_keys", json={"name": "Deploys"}, headers={"X-CSRFToken": csrf}
    ).get_json()["key"]
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    return admin.id, owner.account_slug, token


def test_a_key_keeps_working_after_its_creator_leaves_the_account(app, client) -> None:
    admin_id, slug, token = _key_created_by_an_admin(app, client)
    with app.app_context():
        db.session.execute(delete(Membership).where(Membership.user_id == admin_id))
        db.session.commit()
    response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["slug"] == slug
    created = client.post("/api/v1/workspaces", json={"name": "Still"}, headers=bearer(token))
    assert created.status_code == 201


def test_a_key_keeps_working_after_its_creator_is_deleted(app, client) -> None:
    admin_id, slug, token = _key_created_by_an_admin(app, client)
    with app.app_context():
        db.session.delete(db.session.get(User, admin_id))
        db.session.commit()
        assert db.session.scalar(select(ApiKey.created_by_id)) is None
    response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["slug"] == slug


# last_used_at


def test_last_used_at_is_written_on_first_use_then_at_most_once_a_minute(app, client, key):
    key_id, token = key
    assert last_used_at(app, key_id) is None
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    with freeze_time(start) as clock:
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
        assert last_used_at(app, key_id) == start

        clock.tick(30)
        assert client.get("/api/v1/workspaces", headers=bearer(token)).status_code == 200
        clock.tick(29)
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
        assert last_used_at(app, key_id) == start

        clock.tick(2)  # 61 s after the first use
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
        assert last_used_at(app, key_id) == start + timedelta(seconds=61)

        listed = client.get("/api/v1/api_keys", headers=bearer(token)).get_json()["data"][0]
    assert datetime.fromisoformat(listed["last_used_at"]) == start + timedelta(seconds=61)


def test_a_refused_request_does_not_touch_last_used_at(app, client, key) -> None:
    key_id, token = key
    client.get("/api/v1/account", headers={"Authorization": f"Basic {token}"})
    client.get("/api/v1/account", headers=bearer(_change_last_character(token)))
    assert last_used_at(app, key_id) is None


# headers


def test_api_responses_are_not_cached(app: Flask, client: FlaskClient, key) -> None:
    _, token = key
    responses = [
        client.get("/api/v1/account", headers=bearer(token)),
        client.get("/api/v1/workspaces/ws_nope", headers=bearer(token)),
        client.get("/api/v1/account"),
        client.get("/api/v1/account", headers={"Authorization": "Bearer x"}),
        client.get("/api/v1/openapi.json"),
        client.get("/api/v1/nope"),
    ]
    for response in responses:
        assert "no-store" in response.headers["Cache-Control"]


# rate limits


def assert_rate_limit_headers(response: Any, limit: int) -> None:
    headers = response.headers
    assert headers.get("X-RateLimit-Limit") == str(limit), dict(headers)
    assert 0 <= int(headers.get("X-RateLimit-Remaining", "-1")) <= limit
    assert int(headers.get("X-RateLimit-Reset", "0")) >= int(time.time())


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_api_responses_carry_rate_limit_headers(app: Flask, client: FlaskClient, user, key):
    _, token = key
    responses = [
        client.get("/api/v1/account", headers=bearer(token)),
        client.get("/api/v1/records/rec_nope", headers=bearer(token)),
        client.post("/api/v1/workspaces", json={"name": ""}, headers=bearer(token)),
        client.post("/api/v1/api_keys", json={"name": "x"}, headers=bearer(token)),
        client.get("/api/v1/account"),
        client.get("/api/v1/account", headers={"Authorization": "Bearer x"}),
    ]
    sign_in(client, user.email)
    responses.append(client.get("/api/v1/account"))
    for response in responses:
        assert_rate_limit_headers(response, 600)


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_routing_errors_under_the_api_carry_rate_limit_headers(client: FlaskClient, key):
    _, token = key
    for response in (
        client.get("/api/v1/nope", headers=bearer(token)),
        client.delete("/api/v1/account", headers=bearer(token)),
    ):
        assert_rate_limit_headers(response, 600)
    # Pages outside the API are not counted against API budgets.
    assert "X-RateLimit-Limit" not in client.get("/nope").headers


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="2 per minute")
def test_probing_unrouted_api_paths_is_rate_limited(client: FlaskClient, key) -> None:
    _, token = key
    for _ in range(2):
        assert client.get("/api/v1/nope", headers=bearer(token)).status_code == 404
    response = client.get("/api/v1/nope", headers=bearer(token))
    assert_error(response, 429, "rate_limited")


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="2 per minute")
def test_spelling_the_header_differently_does_not_buy_a_new_budget(client: FlaskClient, key):
    _, token = key
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    spelled = {"Authorization": f"bearer    {token}"}
    assert client.get("/api/v1/account", headers=spelled).status_code == 200
    response = client.get("/api/v1/account", headers={"Authorization": f"BEARER {token}"})
    assert_error(response, 429, "rate_limited")


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="3 per minute")
def test_unknown_keys_are_counted_per_address(client: FlaskClient, key) -> None:
    _, token = key
    for _ in range(3):  # a fresh, well-formed key each time: each costs a database lookup
        response = client.get("/api/v1/account", headers=bearer(api_tokens.generate()))
        assert_error(response, 401, "invalid_token")
        assert "Retry-After" not in response.headers
    response = client.get("/api/v1/account", headers=bearer(api_tokens.generate()))
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    # The address's guessing budget is not the real key's: it still works.
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    # Another address starts afresh.
    other = {"REMOTE_ADDR": "192.0.2.7"}
    response = client.get(
        "/api/v1/account", headers=bearer(api_tokens.generate()), environ_base=other
    )
    assert_error(response, 401, "invalid_token")


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="2 per minute")
def test_headers_without_a_key_count_against_the_address(client: FlaskClient) -> None:
    for header in ("Bearer not-a-key", "Basic dXNlcjpwdw=="):
        assert_error(client.get("/api/v1/account", headers={"Authorization": header}), 401,
                     "invalid_token")  # fmt: skip
    response = client.get("/api/v1/account", headers={"Authorization": "Token whatever"})
    assert_error(response, 429, "rate_limited")


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="3 per minute")
def test_the_call_over_the_limit_is_rate_limited(client: FlaskClient, key) -> None:
    _, token = key
    for remaining in (2, 1, 0):
        response = client.get("/api/v1/account", headers=bearer(token))
        assert response.status_code == 200
        assert_rate_limit_headers(response, 3)
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    response = client.get("/api/v1/account", headers=bearer(token))
    assert_error(response, 429, "rate_limited")
    assert_rate_limit_headers(response, 3)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="3 per minute")
def test_each_key_and_each_session_has_its_own_budget(app: Flask, user, key) -> None:
    _, first = key
    _, second = make_api_key(app, user.account_slug, "Second")
    keyed = app.test_client()
    for _ in range(3):
        assert keyed.get("/api/v1/account", headers=bearer(first)).status_code == 200
    assert keyed.get("/api/v1/account", headers=bearer(first)).status_code == 429

    # Same account, same address: another key and a signed-in browser are unaffected.
    assert keyed.get("/api/v1/account", headers=bearer(second)).status_code == 200
    browser = app.test_client()
    sign_in(browser, user.email)
    for _ in range(3):
        assert browser.get("/api/v1/account").status_code == 200
    assert_error(browser.get("/api/v1/account"), 429, "rate_limited")
    assert keyed.get("/api/v1/account", headers=bearer(second)).status_code == 200
