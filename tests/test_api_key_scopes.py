"""Scoped, expiring and rolled API keys (docs/api-authentication.md): API, page, CLI, mail."""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.api.auth import ADMIN_ONLY_ENDPOINTS
from terminus_hub.api.auth import PUBLIC_ENDPOINTS
from terminus_hub.api.auth import REQUIRED_SCOPES
from terminus_hub.core import keyring
from terminus_hub.core.keyring import SCOPES
from terminus_hub.core.keyring import create_key
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import AuditEvent
from tests import factories
from tests.factories import CSRF_META
from tests.factories import key_form
from tests.factories import sign_in

SCOPE_CHALLENGE = 'Bearer realm="terminus", error="insufficient_scope", scope="{}"'


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ApiKey))


def make_key(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/api_keys", json={"name": "CI", **body}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def owner(app: Flask) -> factories.Person:
    return factories.make_person(app)


@pytest.fixture
def as_owner(client: FlaskClient, owner: factories.Person) -> dict[str, str]:
    return factories.session_headers(client, owner)


# scopes


def test_a_key_does_only_what_its_scopes_allow(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    made = make_key(client, as_owner, scopes=["records:read"])
    assert made["scopes"] == ["records:read"]
    reader = app.test_client()
    assert reader.get("/api/v1/records", headers=bearer(made["key"])).status_code == 200

    for method, path, needed in [
        ("POST", "/api/v1/records", "records:write"),
        ("DELETE", "/api/v1/records/rec_x", "records:write"),
        ("GET", "/api/v1/workspaces", "workspaces:read"),
        ("POST", "/api/v1/workspaces", "workspaces:write"),
        ("GET", "/api/v1/account", "account:read"),
        ("GET", "/api/v1/api_keys", "account:read"),
    ]:
        response = reader.open(path, method=method, json={}, headers=bearer(made["key"]))
        assert response.status_code == 403, (method, path)
        error = response.get_json()["error"]
        assert error["code"] == "insufficient_scope"
        assert needed in error["message"]
        assert response.headers["WWW-Authenticate"] == SCOPE_CHALLENGE.format(needed)


def test_a_write_scope_does_not_give_read(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    made = make_key(client, as_owner, scopes=["workspaces:write"])
    writer = app.test_client()
    created = writer.post("/api/v1/workspaces", json={"name": "Ops"}, headers=bearer(made["key"]))
    assert created.status_code == 201
    listed = writer.get("/api/v1/workspaces", headers=bearer(made["key"]))
    assert listed.get_json()["error"]["code"] == "insufficient_scope"


def test_a_key_made_without_scopes_has_them_all(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    made = make_key(client, as_owner)
    assert made["scopes"] == list(SCOPES)
    assert made["expires_at"] is None
    _, token = factories.make_api_key(app, factories.make_person(app).account_slug)
    assert app.test_client().get("/api/v1/account", headers=bearer(token)).status_code == 200


def test_every_api_endpoint_is_public_admin_only_or_scoped(app: Flask) -> None:
    endpoints = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.static"
    }
    for endpoint in endpoints:
        kinds = [
            endpoint in PUBLIC_ENDPOINTS,
            endpoint in ADMIN_ONLY_ENDPOINTS,
            endpoint in REQUIRED_SCOPES,
        ]
        assert kinds.count(True) == 1, endpoint
    for rule in app.url_map.iter_rules():
        if rule.endpoint in REQUIRED_SCOPES:
            scope = REQUIRED_SCOPES[rule.endpoint]
            access = "read" if rule.methods <= {"GET", "HEAD", "OPTIONS"} else "write"
            assert scope.endswith(f":{access}"), rule


def test_sessions_are_not_limited_by_scopes(client: FlaskClient, as_owner: dict[str, str]) -> None:
    assert client.get("/api/v1/account").status_code == 200
    assert (
        client.post("/api/v1/workspaces", json={"name": "W"}, headers=as_owner).status_code == 201
    )


@pytest.mark.parametrize(
    ("scopes", "says"),
    [
        ([], "at least one"),
        (["records:read", "records:read"], "repeated"),
        (["records:admin"], "not a scope"),
        (["RECORDS:READ"], "not a scope"),
        ("records:read", "list"),
        ([1], "list"),
        (None, "list"),
        ({"records:read": True}, "list"),
    ],
)
def test_bad_scopes_are_refused_and_nothing_is_made(
    app: Flask, client: FlaskClient, as_owner: dict[str, str], scopes: Any, says: str
) -> None:
    response = client.post(
        "/api/v1/api_keys", json={"name": "CI", "scopes": scopes}, headers=as_owner
    )
    assert response.status_code == 422
    assert says in response.get_json()["error"]["fields"]["scopes"]
    assert key_count(app) == 0


# expiry


@pytest.mark.parametrize("days", [0, 367, -1, "7", 7.5, 7.0, True, [7]])
def test_a_bad_expiry_is_refused_and_nothing_is_made(
    app: Flask, client: FlaskClient, as_owner: dict[str, str], days: Any
) -> None:
    response = client.post(
        "/api/v1/api_keys", json={"name": "CI", "expires_in_days": days}, headers=as_owner
    )
    assert response.status_code == 422
    assert "1 to 366" in response.get_json()["error"]["fields"]["expires_in_days"]
    assert key_count(app) == 0


def test_an_expired_key_fails_saying_it_expired(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    made = make_key(client, as_owner, expires_in_days=1)
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    caller = app.test_client()
    assert caller.get("/api/v1/records", headers=bearer(made["key"])).status_code == 200

    with freeze_time(expires + timedelta(seconds=1)):
        response = caller.get("/api/v1/records", headers=bearer(made["key"]))
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "invalid_token"
    assert "expired" in error["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="terminus", error="invalid_token"'
    with app.app_context():
        used = db.session.get(ApiKey, made["id"]).last_used_at
    assert used is not None and used < expires  # the refused call wrote nothing


def test_the_keys_page_shows_scopes_and_expiry(
    app: Flask, client: FlaskClient, owner: factories.Person
) -> None:
    sign_in(client, owner.email)
    slug = owner.account_slug
    response = client.post(
        f"/a/{slug}/api_keys",
        data=key_form("Reports", scopes=["records:read"], expires_in_days="30"),
    )
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    assert "<code>records:read</code>" in page
    with app.app_context():
        key = db.session.scalar(select(ApiKey))
        assert key.scopes == "records:read"
        expires = key.expires_at
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert expires.strftime("%-d %b %Y") in page


def test_the_page_refuses_a_key_without_scopes(
    app: Flask, client: FlaskClient, owner: factories.Person
) -> None:
    sign_in(client, owner.email)
    response = client.post(f"/a/{owner.account_slug}/api_keys", data=key_form("Nothing", scopes=[]))
    assert response.status_code == 422
    assert "at least one scope" in response.get_data(as_text=True)
    bad = client.post(f"/a/{owner.account_slug}/api_keys", data=key_form("Forged", scopes=["root"]))
    assert bad.status_code == 422
    forged = client.post(
        f"/a/{owner.account_slug}/api_keys", data=key_form("Forged", expires_in_days="9999")
    )
    assert forged.status_code == 422
    assert key_count(app) == 0


# roll


def test_rolling_a_key_gives_a_new_one_and_the_old_one_lives_on(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    old = make_key(client, as_owner, scopes=["records:read", "records:write"])
    response = client.post(
        f"/api/v1/api_keys/{old['id']}/roll", json={"expires_in_hours": 2}, headers=as_owner
    )
    assert response.status_code == 201
    new = response.get_json()
    assert response.headers["Location"] == f"/api/v1/api_keys/{new['id']}"
    assert new["id"] != old["id"] and new["key"] != old["key"]
    assert (new["name"], new["scopes"]) == (old["name"], old["scopes"])
    assert new["expires_at"] is None
    shown = client.get(f"/api/v1/api_keys/{old['id']}").get_json()
    old_end = datetime.fromisoformat(shown["expires_at"])
    assert timedelta(minutes=119) < old_end - datetime.now(UTC) <= timedelta(hours=2)

    caller = app.test_client()
    for token in (old["key"], new["key"]):
        assert caller.get("/api/v1/records", headers=bearer(token)).status_code == 200
    with freeze_time(old_end + timedelta(seconds=1)):
        assert caller.get("/api/v1/records", headers=bearer(old["key"])).status_code == 401
        assert caller.get("/api/v1/records", headers=bearer(new["key"])).status_code == 200

    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "api_key.rolled"))
        assert event.detail["key_id"] == old["id"]
        assert event.detail["new_key_id"] == new["id"]
        assert event.actor_type == "user"


def test_a_roll_keeps_the_lifetime_and_defaults_to_24_hours(
    client: FlaskClient, as_owner: dict[str, str]
) -> None:
    old = make_key(client, as_owner, expires_in_days=90)
    new = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner).get_json()
    new_end = datetime.fromisoformat(new["expires_at"])
    assert timedelta(days=89, hours=23) < new_end - datetime.now(UTC) <= timedelta(days=90)
    old_end = datetime.fromisoformat(client.get(f"/api/v1/api_keys/{old['id']}").json["expires_at"])
    assert timedelta(hours=23) < old_end - datetime.now(UTC) <= timedelta(hours=24)


def test_a_roll_with_no_grace_ends_the_old_key_now(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    old = make_key(client, as_owner)
    rolled = client.post(
        f"/api/v1/api_keys/{old['id']}/roll", json={"expires_in_hours": 0}, headers=as_owner
    )
    assert rolled.status_code == 201
    response = app.test_client().get("/api/v1/account", headers=bearer(old["key"]))
    assert response.status_code == 401 and "expired" in response.get_json()["error"]["message"]
    again = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert again.status_code == 422
    assert "expired" in again.get_json()["error"]["fields"]["key_id"]
    assert key_count(app) == 2


@pytest.mark.parametrize("hours", [-1, 169, "24", 1.5, True, None])
def test_a_bad_grace_is_refused_and_nothing_changes(
    app: Flask, client: FlaskClient, as_owner: dict[str, str], hours: Any
) -> None:
    old = make_key(client, as_owner)
    response = client.post(
        f"/api/v1/api_keys/{old['id']}/roll", json={"expires_in_hours": hours}, headers=as_owner
    )
    assert response.status_code == 422
    assert "0 to 168" in response.get_json()["error"]["fields"]["expires_in_hours"]
    assert key_count(app) == 1
    assert client.get(f"/api/v1/api_keys/{old['id']}").get_json()["expires_at"] is None


def test_only_owner_and_admin_sessions_roll_and_only_their_keys(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    old = make_key(client, as_owner)
    by_key = app.test_client().post(
        f"/api/v1/api_keys/{old['id']}/roll", headers=bearer(old["key"])
    )
    assert by_key.get_json()["error"]["code"] == "admin_only"
    stranger = factories.make_person(app)
    theirs = app.test_client()
    headers = factories.session_headers(theirs, stranger)
    elsewhere = theirs.post(f"/api/v1/api_keys/{old['id']}/roll", headers=headers)
    assert elsewhere.status_code == 404
    client.delete(f"/api/v1/api_keys/{old['id']}", headers=as_owner)
    revoked = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert revoked.status_code == 404
    assert key_count(app) == 0


def test_a_member_cannot_roll(app: Flask, owner: factories.Person) -> None:
    key_id, _ = factories.make_api_key(app, owner.account_slug)
    member = factories.make_user(app)
    factories.make_membership(app, owner.account_slug, member.email, "member")
    client = app.test_client()
    headers = factories.session_headers(
        client,
        factories.Person(member.id, member.email, factories.PASSWORD, owner.account_slug),
    )
    response = client.post(f"/api/v1/api_keys/{key_id}/roll", headers=headers)
    assert response.get_json()["error"]["code"] == "forbidden"
    assert key_count(app) == 1


def test_rolling_on_the_page_shows_the_new_key_once(
    app: Flask, client: FlaskClient, owner: factories.Person
) -> None:
    key_id, _ = factories.make_api_key(app, owner.account_slug, "Deploys")
    sign_in(client, owner.email)
    page = client.get(f"/a/{owner.account_slug}/api_keys").get_data(as_text=True)
    assert f"/api_keys/{key_id}/roll" in page
    response = client.post(
        f"/a/{owner.account_slug}/api_keys/{key_id}/roll",
        data={"expires_in_hours": "1", "csrf_token": CSRF_META.search(page).group(1)},
    )
    assert response.status_code == 201
    shown = response.get_data(as_text=True)
    assert re.search(r"which stops working <time [^>]+>in (59 minutes|1 hour)</time>", shown)
    with app.app_context():
        new = db.session.scalar(select(ApiKey).where(ApiKey.id != key_id))
        assert new.name == "Deploys"
        assert new.prefix in shown
    forged = client.post(
        f"/a/{owner.account_slug}/api_keys/{key_id}/roll", data={"expires_in_hours": "9999"}
    )
    assert forged.status_code == 303
    assert key_count(app) == 2


# the week's warning


def test_owners_and_admins_are_told_once_a_week_before_a_key_expires(
    app: Flask, runner: Any, outbox: Any, owner: factories.Person
) -> None:
    admin = factories.make_user(app)
    factories.make_membership(app, owner.account_slug, admin.email, "admin")
    member = factories.make_user(app)
    factories.make_membership(app, owner.account_slug, member.email, "member")
    start = datetime.now(UTC)
    with freeze_time(start), app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == owner.account_slug))
        create_key(account, "Long", None, expires_in_days=30)
        create_key(account, "Short", None, expires_in_days=3)
        create_key(account, "Forever", None)
        db.session.commit()

    with freeze_time(start + timedelta(days=22)):
        assert "Announced 0" in runner.invoke(args=["keys", "notify-expiring"]).output
    with freeze_time(start + timedelta(days=23, hours=1)):
        assert "Announced 1 " in runner.invoke(args=["keys", "notify-expiring"]).output
        assert "Announced 0" in runner.invoke(args=["housekeeping"]).output

    told = {message.recipient for message in outbox.messages()}
    assert told == {owner.email, admin.email}
    mail = outbox.messages(owner.email)[0]
    assert "“Long”" in mail.text_body and "roll" in mail.text_body
    assert f"/a/{owner.account_slug}/api_keys" in mail.text_body


def test_housekeeping_tells_about_expiring_keys_too(
    app: Flask, runner: Any, outbox: Any, owner: factories.Person
) -> None:
    start = datetime.now(UTC)
    with freeze_time(start), app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == owner.account_slug))
        create_key(account, "Monthly", None, expires_in_days=30)
        db.session.commit()
    with freeze_time(start + timedelta(days=25)):
        assert "Announced 1 " in runner.invoke(args=["housekeeping"]).output
    assert [m.recipient for m in outbox.messages()] == [owner.email]


# command line


def test_the_cli_makes_scoped_expiring_keys(
    app: Flask, runner: Any, owner: factories.Person
) -> None:
    result = runner.invoke(
        args=[
            "keys",
            "create",
            owner.account_slug,
            "Export",
            "--scope",
            "records:read",
            "--expires-in-days",
            "10",
        ]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get("/api/v1/records", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/workspaces", headers=bearer(token)).status_code == 403
    listed = runner.invoke(args=["keys", "list", owner.account_slug]).output
    assert "records:read" in listed

    bad = runner.invoke(args=["keys", "create", owner.account_slug, "X", "--scope", "root"])
    assert bad.exit_code != 0 and "--scope" in bad.output
    bad = runner.invoke(args=["keys", "create", owner.account_slug, "X", "--expires-in-days", "0"])
    assert bad.exit_code != 0 and "--expires-in-days" in bad.output
    assert key_count(app) == 1


def test_a_rolled_key_cannot_be_rolled_again(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    # Found by attacking it: each roll of the old key made another live successor.
    old = make_key(client, as_owner, expires_in_days=30)
    first = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert first.status_code == 201
    again = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert again.status_code == 422
    assert "already rolled" in again.get_json()["error"]["fields"]["key_id"]
    assert key_count(app) == 2
    successor = first.get_json()
    assert (
        client.post(f"/api/v1/api_keys/{successor['id']}/roll", headers=as_owner).status_code == 201
    )
    page = client.get(f"/a/{client.get('/api/v1/account').get_json()['slug']}/api_keys")
    assert f"/api_keys/{old['id']}/roll" not in page.get_data(as_text=True)
    assert f"/api_keys/{successor['id']}/roll" not in page.get_data(as_text=True)


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 5, "max_overflow": 5})
def test_two_rolls_at_once_make_one_successor(
    app: Flask, owner: factories.Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, _ = factories.make_api_key(app, owner.account_slug)
    sessions = []
    for _ in range(2):
        browser = app.test_client()
        sessions.append((browser, factories.session_headers(browser, owner)))
    # Each roll dawdles after reading the key, so both are surely in flight together.
    new_key = keyring._new_key

    def slow_new_key(*args: Any) -> Any:
        time.sleep(0.3)
        return new_key(*args)

    monkeypatch.setattr(keyring, "_new_key", slow_new_key)
    barrier = threading.Barrier(2)

    def roll(index: int) -> int:
        browser, headers = sessions[index]
        barrier.wait(timeout=30)
        return browser.post(f"/api/v1/api_keys/{key_id}/roll", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(roll, range(2), timeout=60))
    assert statuses == [201, 422]
    assert key_count(app) == 2


def test_a_key_revoked_while_it_is_rolled_is_not_found(
    app: Flask, client: FlaskClient, as_owner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus_hub.api import api_keys

    old = make_key(client, as_owner)
    found = api_keys._key_or_404

    def revoked_meanwhile(key_id: str) -> ApiKey:
        key = found(key_id)
        with app.app_context():  # another request revokes it in between
            db.session.execute(delete(ApiKey).where(ApiKey.id == key_id))
            db.session.commit()
        return key

    monkeypatch.setattr(api_keys, "_key_or_404", revoked_meanwhile)
    response = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert response.status_code == 404
    assert key_count(app) == 0


def test_a_key_whose_successor_was_revoked_can_be_rolled_again(
    app: Flask, client: FlaskClient, as_owner: dict[str, str]
) -> None:
    old = make_key(client, as_owner)
    first = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner).get_json()
    assert client.get(f"/api/v1/api_keys/{old['id']}").get_json()["replaced_by"] == first["id"]
    client.delete(f"/api/v1/api_keys/{first['id']}", headers=as_owner)
    again = client.post(f"/api/v1/api_keys/{old['id']}/roll", headers=as_owner)
    assert again.status_code == 201
    assert client.get(f"/api/v1/api_keys/{old['id']}").get_json()["replaced_by"] == again.json["id"]
