"""Idempotency-Key on POST (docs/api-overview.md#retries-and-idempotency-key): a retry gets the
first answer again, never a second object."""

from __future__ import annotations

import os
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
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from terminus_hub.api import records
from terminus_hub.extensions import db
from terminus_hub.models import ApiKey
from terminus_hub.models import IdempotentRequest
from terminus_hub.models import Record
from terminus_hub.models import Workspace
from tests import factories
from tests.factories import CSRF_META
from tests.factories import sign_in


class Caller:
    """One account's key, posting records with an Idempotency-Key."""

    def __init__(self, app: Flask, person: factories.Person) -> None:
        self.app = app
        _, self.token = factories.make_api_key(app, person.account_slug)
        self.client = app.test_client()
        listed = self.client.get("/api/v1/workspaces", headers=self.headers())
        self.workspace = listed.get_json()["data"][0]["id"]

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def post_record(self, key: str | None, title: str = "Invoice 1", **extra: Any) -> Any:
        body = {"workspace_id": self.workspace, "title": title, **extra}
        return self.client.post("/api/v1/records", json=body, headers=self.headers(key))


def record_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Record))


@pytest.fixture
def a(app: Flask, user: factories.Person) -> Caller:
    return Caller(app, user)


def test_a_retry_gets_the_first_answer_byte_for_byte(app: Flask, a: Caller) -> None:
    first = a.post_record("order-5512")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = a.post_record("order-5512")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert record_count(app) == 1


def test_the_same_key_with_another_request_is_a_conflict(app: Flask, a: Caller) -> None:
    assert a.post_record("k1").status_code == 201
    other = a.post_record("k1", title="Invoice 2")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_conflict"
    elsewhere = a.client.post("/api/v1/workspaces", json={"name": "Ops"}, headers=a.headers("k1"))
    assert elsewhere.status_code == 409
    assert record_count(app) == 1
    assert len(a.client.get("/api/v1/workspaces", headers=a.headers()).get_json()["data"]) == 1


def test_keys_belong_to_their_caller(app: Flask, a: Caller) -> None:
    b = Caller(app, factories.make_person(app))
    assert a.post_record("shared").status_code == 201
    answer = b.post_record("shared")
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert record_count(app) == 2


def test_a_second_key_of_the_same_account_is_another_caller(app: Flask, a: Caller) -> None:
    assert a.post_record("same").status_code == 201
    _, a.token = factories.make_api_key(app, _slug_of(a), "Second key")
    assert "Idempotent-Replayed" not in a.post_record("same").headers
    assert record_count(app) == 2


def _slug_of(caller: Caller) -> str:
    return caller.client.get("/api/v1/account", headers=caller.headers()).get_json()["slug"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\xe9", "tab\there", "line\x7f"])
def test_a_bad_key_is_refused_and_nothing_is_made(app: Flask, a: Caller, key: str) -> None:
    response = a.post_record(key)
    assert response.status_code == 422
    assert "printable ASCII" in response.get_json()["error"]["fields"]["Idempotency-Key"]
    assert record_count(app) == 0


def test_the_longest_key_and_any_printable_character_work(app: Flask, a: Caller) -> None:
    assert a.post_record("k" * 255).status_code == 201
    assert a.post_record(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").status_code == 201
    assert record_count(app) == 2


def test_an_error_answer_releases_the_key(app: Flask, a: Caller) -> None:
    refused = a.post_record("retry-me", title="")
    assert refused.status_code == 422
    fixed = a.post_record("retry-me", title="Fixed")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert record_count(app) == 1


def test_a_key_is_kept_24_hours(app: Flask, a: Caller) -> None:
    first = a.post_record("daily")
    with freeze_time(datetime.now(UTC) + timedelta(hours=23)):
        assert a.post_record("daily").headers.get("Idempotent-Replayed") == "true"
    with freeze_time(datetime.now(UTC) + timedelta(hours=25)):
        later = a.post_record("daily")
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert later.get_json()["id"] != first.get_json()["id"]
    assert record_count(app) == 2


def test_housekeeping_forgets_keys_after_24_hours(app: Flask, a: Caller, runner: Any) -> None:
    a.post_record("old")
    with freeze_time(datetime.now(UTC) + timedelta(hours=25)):
        output = runner.invoke(args=["housekeeping"]).output
    assert "1 idempotent_requests" in output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotentRequest)) == 0


def test_a_request_still_running_holds_its_key(app: Flask, a: Caller) -> None:
    with app.app_context():
        key = db.session.scalar(select(ApiKey))
        db.session.add(
            IdempotentRequest(
                caller_id=key.id,
                account_id=key.account_id,
                key="busy",
                claim="0" * 32,
                fingerprint="0" * 64,
            )
        )
        db.session.commit()
    response = a.post_record("busy")
    assert response.status_code == 409
    assert "still being processed" in response.get_json()["error"]["message"]
    assert record_count(app) == 0
    # A first request that changed nothing for a minute (its process died) gives its key up.
    with freeze_time(datetime.now(UTC) + timedelta(minutes=2)):
        assert a.post_record("busy").status_code == 201
    assert record_count(app) == 1


def test_gets_and_deletes_ignore_the_header(app: Flask, a: Caller) -> None:
    made = a.post_record(None).get_json()
    assert a.client.get("/api/v1/records", headers=a.headers("g")).status_code == 200
    path = f"/api/v1/records/{made['id']}"
    assert a.client.delete(path, headers=a.headers("g")).status_code == 204


def test_a_new_keys_answer_is_replayed_but_not_stored_in_clear(
    app: Flask, client: FlaskClient, user: factories.Person
) -> None:
    sign_in(client, user.email)
    page = client.get(f"/a/{user.account_slug}/").get_data(as_text=True)
    headers = {"X-CSRFToken": CSRF_META.search(page).group(1), "Idempotency-Key": "ci-key"}
    first = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers)
    again = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["key"] == first.get_json()["key"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1
        stored = db.session.scalar(select(IdempotentRequest.response))
    token = first.get_json()["key"]
    assert token not in stored and token[5:] not in stored


def test_a_replay_needs_the_same_secret_key(app: Flask, a: Caller) -> None:
    a.post_record("rotated")
    app.config["SECRET_KEY"] = "a-new-secret-key-after-rotation-000000000000000"
    response = a.post_record("rotated")
    assert response.status_code == 409  # never runs twice, even when the answer is lost
    assert record_count(app) == 1


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 5, "max_overflow": 5})
def test_two_requests_at_once_with_one_key_make_one_record(
    app: Flask, a: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each request dawdles inside its view, so both are surely in flight together.
    serialize = records.serialize

    def slow_serialize(record: Record) -> dict[str, Any]:
        time.sleep(0.3)
        return serialize(record)

    monkeypatch.setattr(records, "serialize", slow_serialize)
    barrier = threading.Barrier(2)

    def post(_: int) -> tuple[int, str | None]:
        barrier.wait(timeout=30)
        response = a.app.test_client().post(
            "/api/v1/records",
            json={"workspace_id": a.workspace, "title": "Once"},
            headers=a.headers("together"),
        )
        return response.status_code, response.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = sorted(pool.map(post, range(2), timeout=60))
    assert answers == [(201, None), (409, None)]
    assert record_count(app) == 1
    assert a.post_record("together", title="Once").headers["Idempotent-Replayed"] == "true"


# found by attacking it: a kept answer is only ever given to whoever may make the request now


def _owner_session(client: FlaskClient, email: str, slug: str) -> dict[str, str]:
    page = client.get(f"/a/{slug}/").get_data(as_text=True)
    return {"X-CSRFToken": CSRF_META.search(page).group(1)}


def test_a_kept_answer_stays_in_its_account(app: Flask, client: FlaskClient) -> None:
    person = factories.make_person(app)
    other_slug = factories.make_account(app, person.email, name="Second")
    sign_in(client, person.email)
    headers = {**_owner_session(client, person.email, person.account_slug), "Idempotency-Key": "k"}
    first = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers)
    assert first.status_code == 201
    headers = {**_owner_session(client, person.email, other_slug), "Idempotency-Key": "k"}
    second = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers)
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.get_json()["key"] != first.get_json()["key"]
    with app.app_context():
        accounts = db.session.scalars(select(ApiKey.account_id)).all()
    assert len(set(accounts)) == 2


def test_a_replay_is_authorised_like_a_new_request(app: Flask, client: FlaskClient) -> None:
    owner = factories.make_person(app)
    admin = factories.make_user(app)
    factories.make_membership(app, owner.account_slug, admin.email, "admin")
    sign_in(client, admin.email)
    headers = {**_owner_session(client, admin.email, owner.account_slug), "Idempotency-Key": "k1"}
    assert client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers).status_code == 201
    with app.app_context():
        from terminus_hub.models import Membership

        membership = db.session.scalar(select(Membership).where(Membership.user_id == admin.id))
        membership.role = "member"
        db.session.commit()
    replay = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers)
    assert replay.status_code == 403
    assert "key" not in replay.get_json()


def test_a_failure_after_the_change_never_lets_a_retry_make_it_twice(
    app: Flask, a: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    serialize = records.serialize
    calls = []

    def fail_once(record: Record) -> dict[str, Any]:
        calls.append(record.id)
        if len(calls) == 1:
            raise RuntimeError("the database went away after the commit")
        return serialize(record)

    monkeypatch.setattr(records, "serialize", fail_once)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    first = a.post_record("after-commit")
    assert first.status_code == 500
    retry = a.post_record("after-commit")
    assert retry.status_code == 409
    assert retry.get_json()["error"]["code"] == "idempotency_conflict"
    with freeze_time(datetime.now(UTC) + timedelta(minutes=5)):
        assert a.post_record("after-commit").status_code == 409
    assert record_count(app) == 1


def test_an_answer_that_cannot_be_kept_never_lets_a_retry_make_it_twice(
    app: Flask, a: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus_hub.api import idempotency

    keep = idempotency._keep

    def lost(*args: Any) -> None:
        raise RuntimeError("the worker died before keeping the answer")

    monkeypatch.setattr(idempotency, "_keep", lost)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert a.post_record("lost").status_code == 500
    monkeypatch.setattr(idempotency, "_keep", keep)
    with freeze_time(datetime.now(UTC) + timedelta(minutes=5)):
        retry = a.post_record("lost")
    assert retry.status_code == 409
    assert record_count(app) == 1


def test_a_request_whose_key_was_taken_over_cannot_commit(
    app: Flask, a: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus_hub.api import idempotency

    monkeypatch.setattr(idempotency, "ABANDONED_AFTER", timedelta(seconds=0.3))
    check = records._workspace_field
    slept = []

    def slow_first(value: Any) -> Any:
        if not slept:
            slept.append(True)
            time.sleep(1.2)  # the first request dawdles before its change...
        return check(value)

    monkeypatch.setattr(records, "_workspace_field", slow_first)

    def first() -> int:
        return (
            a.app.test_client()
            .post(
                "/api/v1/records",
                json={"workspace_id": a.workspace, "title": "Once"},
                headers=a.headers("taken"),
            )
            .status_code
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        dawdler = pool.submit(first)
        time.sleep(0.6)  # ...long enough to look abandoned, so a retry takes its key over
        retry = a.post_record("taken", title="Once")
        assert retry.status_code == 201
        assert dawdler.result(timeout=30) == 409
    assert record_count(app) == 1


def test_every_post_of_the_api_takes_an_idempotency_key(app: Flask) -> None:
    from terminus_hub.api.idempotency import IDEMPOTENT_ENDPOINTS

    posts = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and "POST" in rule.methods
    }
    assert posts and posts == IDEMPOTENT_ENDPOINTS


def test_a_change_that_fails_to_commit_frees_the_key(app: Flask, a: Caller) -> None:
    # Found by attacking it: a failed flush inside the commit was taken for a made change.
    failures = []

    def fail_first_flush(session: Any, context: Any, instances: Any) -> None:
        if not failures and any(isinstance(row, Record) for row in session.new):
            failures.append(True)
            raise RuntimeError("the workspace was deleted meanwhile")

    event.listen(Session, "before_flush", fail_first_flush)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        assert a.post_record("flush").status_code == 500
        retry = a.post_record("flush")
    finally:
        event.remove(Session, "before_flush", fail_first_flush)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert record_count(app) == 1


def test_a_retry_while_the_answer_is_being_kept_is_told_to_wait(app: Flask, a: Caller) -> None:
    response = a.post_record("answering")
    with app.app_context():
        row = db.session.scalar(select(IdempotentRequest))
        row.status, row.response = 0, None  # the change is made; its answer not kept yet
        db.session.commit()
    retry = a.post_record("answering")
    assert retry.status_code == 409
    assert "still being processed" in retry.get_json()["error"]["message"]
    with freeze_time(datetime.now(UTC) + timedelta(minutes=2)):
        lost = a.post_record("answering")
    assert "Look the result up" in lost.get_json()["error"]["message"]
    assert response.status_code == 201 and record_count(app) == 1


def test_a_workspace_deleted_while_a_record_is_made_is_a_clear_error(
    app: Flask, a: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = records._workspace_field

    def deleted_meanwhile(value: Any) -> Any:
        found = check(value)
        with app.app_context():  # another request deletes the workspace in between
            db.session.execute(delete(Workspace).where(Workspace.id == value))
            db.session.commit()
        return found

    monkeypatch.setattr(records, "_workspace_field", deleted_meanwhile)
    second = a.client.post("/api/v1/workspaces", json={"name": "Spare"}, headers=a.headers())
    assert second.status_code == 201
    response = a.post_record("gone")
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"workspace_id": records.NO_SUCH_WORKSPACE}
    assert record_count(app) == 0
    monkeypatch.setattr(records, "_workspace_field", check)
    a.workspace = second.get_json()["id"]
    assert a.post_record("gone").status_code == 201  # the key was freed
