"""Workspaces, records and keys through the API (docs/api-overview.md), each account sealed off."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import Record
from terminus_hub.models import Workspace
from tests import factories
from tests.factories import make_api_key
from tests.test_api_auth import LISTING_FIELDS

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
WORKSPACE_FIELDS = {"id", "name", "created_at"}
RECORD_FIELDS = {"id", "workspace_id", "title", "data", "created_at", "updated_at"}


# helpers


def assert_utc_time(value: str) -> datetime:
    """An ISO 8601 timestamp in UTC."""
    assert isinstance(value, str)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0), value
    assert value.endswith(("+00:00", "Z")), value
    return moment


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"]["code"] == code
    return body


class Caller:
    """One account's key, with shortcuts for the API's methods."""

    def __init__(self, app: Flask, person: factories.Person) -> None:
        self.app = app
        self.person = person
        self.slug = person.account_slug
        self.key_id, self.token = make_api_key(app, person.account_slug)
        self.client = app.test_client()

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, body: Any) -> Any:
        return self.open("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.open("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.open("DELETE", path)

    def main_workspace(self) -> str:
        return self.get("/api/v1/workspaces").get_json()["data"][0]["id"]

    def new_record(self, workspace_id: str, title: str = "A record", **data: Any) -> dict:
        response = self.post(
            "/api/v1/records", {"workspace_id": workspace_id, "title": title, "data": data}
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def all_pages(self, path: str, limit: int = 100) -> list[dict]:
        items: list[dict] = []
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}"
        while True:
            body = self.get(url).get_json()
            items.extend(body["data"])
            if body["next_cursor"] is None:
                return items
            url = f"{path}{separator}limit={limit}&cursor={body['next_cursor']}"


@pytest.fixture
def a(app: Flask, user: factories.Person) -> Caller:
    return Caller(app, user)


@pytest.fixture
def b(app: Flask) -> Caller:
    return Caller(app, factories.make_person(app))


# workspaces


def test_workspaces_list_has_the_list_shape(a: Caller) -> None:
    response = a.get("/api/v1/workspaces")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    assert body["next_cursor"] is None
    (main,) = body["data"]
    assert set(main) == WORKSPACE_FIELDS
    assert main["name"] == "Main"
    assert_utc_time(main["created_at"])


def test_a_workspace_is_created_shown_renamed_and_deleted(a: Caller) -> None:
    created = a.post("/api/v1/workspaces", {"name": "Operations"})
    assert created.status_code == 201
    workspace = created.get_json()
    assert set(workspace) == WORKSPACE_FIELDS
    assert workspace["name"] == "Operations"
    assert_utc_time(workspace["created_at"])
    assert not workspace["id"].isdigit()
    path = f"/api/v1/workspaces/{workspace['id']}"

    assert a.get(path).get_json() == workspace
    names = [w["name"] for w in a.get("/api/v1/workspaces").get_json()["data"]]
    assert names == ["Main", "Operations"]

    renamed = a.patch(path, {"name": "Ops"})
    assert renamed.status_code == 200
    assert renamed.get_json() == {**workspace, "name": "Ops"}
    assert a.get(path).get_json()["name"] == "Ops"
    assert a.patch(path, {}).get_json() == {**workspace, "name": "Ops"}

    deleted = a.delete(path)
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert_error(a.get(path), 404, "not_found")
    assert_error(a.delete(path), 404, "not_found")


def test_what_is_created_is_named_by_location(a: Caller) -> None:
    created = a.post("/api/v1/workspaces", {"name": "Located"})
    workspace = created.get_json()
    assert created.headers["Location"] == f"/api/v1/workspaces/{workspace['id']}"
    assert a.get(created.headers["Location"]).get_json() == workspace
    made = a.post("/api/v1/records", {"workspace_id": workspace["id"], "title": "R", "data": {}})
    record = made.get_json()
    assert made.headers["Location"] == f"/api/v1/records/{record['id']}"
    assert a.get(made.headers["Location"]).get_json() == record


def test_the_last_workspace_is_kept(a: Caller) -> None:
    main = a.main_workspace()
    refused = assert_error(a.delete(f"/api/v1/workspaces/{main}"), 409, "conflict")
    assert "at least one workspace" in refused["error"]["message"]
    assert a.get(f"/api/v1/workspaces/{main}").status_code == 200
    other = a.post("/api/v1/workspaces", {"name": "Other"}).get_json()["id"]
    assert a.delete(f"/api/v1/workspaces/{main}").status_code == 204
    assert_error(a.delete(f"/api/v1/workspaces/{other}"), 409, "conflict")


def test_deleting_a_workspace_deletes_its_records(a: Caller) -> None:
    workspace_id = a.post("/api/v1/workspaces", {"name": "Temp"}).get_json()["id"]
    record = a.new_record(workspace_id)
    kept = a.new_record(a.main_workspace())
    assert a.delete(f"/api/v1/workspaces/{workspace_id}").status_code == 204
    assert_error(a.get(f"/api/v1/records/{record['id']}"), 404, "not_found")
    assert [r["id"] for r in a.get("/api/v1/records").get_json()["data"]] == [kept["id"]]


# records


def test_a_record_is_created_shown_changed_and_deleted(a: Caller) -> None:
    main = a.main_workspace()
    created = a.post(
        "/api/v1/records",
        {"workspace_id": main, "title": "Invoice 42", "data": {"total": 12.5, "tags": ["a"]}},
    )
    assert created.status_code == 201
    record = created.get_json()
    assert set(record) == RECORD_FIELDS
    assert record["workspace_id"] == main
    assert record["title"] == "Invoice 42"
    assert record["data"] == {"total": 12.5, "tags": ["a"]}
    created_at = assert_utc_time(record["created_at"])
    assert assert_utc_time(record["updated_at"]) >= created_at
    path = f"/api/v1/records/{record['id']}"
    assert a.get(path).get_json() == record

    other = a.post("/api/v1/workspaces", {"name": "Archive"}).get_json()["id"]
    changed = a.patch(path, {"title": "Invoice 43", "data": {"total": 13}, "workspace_id": other})
    assert changed.status_code == 200
    after = changed.get_json()
    assert after["title"] == "Invoice 43"
    assert after["data"] == {"total": 13}
    assert after["workspace_id"] == other
    assert after["created_at"] == record["created_at"]
    assert assert_utc_time(after["updated_at"]) > assert_utc_time(record["updated_at"])
    assert a.get(path).get_json() == after

    deleted = a.delete(path)
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert_error(a.get(path), 404, "not_found")
    assert_error(a.patch(path, {"title": "again"}), 404, "not_found")
    assert_error(a.delete(path), 404, "not_found")


def test_a_record_without_data_gets_an_empty_object(a: Caller) -> None:
    response = a.post("/api/v1/records", {"workspace_id": a.main_workspace(), "title": "Bare"})
    assert response.status_code == 201
    assert response.get_json()["data"] == {}


def test_a_partial_patch_changes_only_what_it_names(a: Caller) -> None:
    record = a.new_record(a.main_workspace(), "Keep", colour="red")
    after = a.patch(f"/api/v1/records/{record['id']}", {"title": "Renamed"}).get_json()
    assert after["data"] == {"colour": "red"}
    assert after["workspace_id"] == record["workspace_id"]
    after = a.patch(f"/api/v1/records/{record['id']}", {"data": {"colour": "blue"}}).get_json()
    assert after["title"] == "Renamed"


def test_records_list_has_the_list_shape(a: Caller) -> None:
    record = a.new_record(a.main_workspace())
    body = a.get("/api/v1/records").get_json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    assert body == {"data": [record], "next_cursor": None, "has_more": False}


def test_records_page_by_cursor_oldest_first(a: Caller) -> None:
    main = a.main_workspace()
    start = datetime.now(UTC)
    made = []
    with freeze_time(start) as clock:
        for number in range(7):
            clock.tick(1)
            made.append(a.new_record(main, f"Record {number}")["id"])

    pages = []
    url = "/api/v1/records?limit=3"
    while True:
        response = a.get(url)
        assert response.status_code == 200
        body = response.get_json()
        pages.append(body)
        if body["next_cursor"] is None:
            break
        assert isinstance(body["next_cursor"], str) and body["next_cursor"]
        url = f"/api/v1/records?limit=3&cursor={body['next_cursor']}"
        assert len(pages) < 10

    assert [len(page["data"]) for page in pages] == [3, 3, 1]
    assert [page["next_cursor"] is None for page in pages] == [False, False, True]
    ids = [item["id"] for page in pages for item in page["data"]]
    assert ids == made
    assert len(set(ids)) == 7
    times = [assert_utc_time(item["created_at"]) for page in pages for item in page["data"]]
    assert times == sorted(times)


def test_records_created_at_the_same_instant_are_neither_lost_nor_repeated(a: Caller) -> None:
    main = a.main_workspace()
    with freeze_time(datetime.now(UTC)):
        made = {a.new_record(main, f"R{n}")["id"] for n in range(5)}
    ids = [item["id"] for item in a.all_pages("/api/v1/records", limit=2)]
    assert sorted(ids) == sorted(made)


def test_the_default_page_is_50_and_the_largest_is_100(a: Caller) -> None:
    main = a.main_workspace()
    with a.app.app_context():
        account_id = db.session.scalar(select(Account.id).where(Account.slug == a.slug))
        start = datetime.now(UTC)
        db.session.add_all(
            Record(
                account_id=account_id,
                workspace_id=main,
                title=f"R{n}",
                data={},
                created_at=start + timedelta(seconds=n),
                updated_at=start + timedelta(seconds=n),
            )
            for n in range(101)
        )
        db.session.commit()
    default = a.get("/api/v1/records").get_json()
    assert len(default["data"]) == 50 and default["next_cursor"]
    largest = a.get("/api/v1/records?limit=100").get_json()
    assert len(largest["data"]) == 100 and largest["next_cursor"]
    rest = a.get(f"/api/v1/records?limit=100&cursor={largest['next_cursor']}").get_json()
    assert [r["title"] for r in rest["data"]] == ["R100"]
    assert rest["next_cursor"] is None
    one = a.get("/api/v1/records?limit=1").get_json()
    assert [r["title"] for r in one["data"]] == ["R0"]


def test_workspaces_page_by_cursor_too(a: Caller) -> None:
    for name in ("B", "C"):
        a.post("/api/v1/workspaces", {"name": name})
    first = a.get("/api/v1/workspaces?limit=2").get_json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = a.get(f"/api/v1/workspaces?limit=2&cursor={first['next_cursor']}").get_json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    names = [w["name"] for w in first["data"] + second["data"]]
    assert names == ["Main", "B", "C"]


def test_the_workspace_id_filter_lists_one_workspaces_records(a: Caller) -> None:
    main = a.main_workspace()
    other = a.post("/api/v1/workspaces", {"name": "Other"}).get_json()["id"]
    in_main = [a.new_record(main, f"M{n}")["id"] for n in range(3)]
    in_other = [a.new_record(other, f"O{n}")["id"] for n in range(2)]

    assert [r["id"] for r in a.all_pages(f"/api/v1/records?workspace_id={main}", 2)] == in_main
    assert [r["id"] for r in a.all_pages(f"/api/v1/records?workspace_id={other}", 1)] == in_other
    assert len(a.all_pages("/api/v1/records")) == 5
    assert_error(a.get("/api/v1/records?workspace_id=ws_nope"), 404, "not_found")


@pytest.mark.parametrize(
    "limit",
    [
        "0",
        "101",
        "-1",
        "1000000",
        "abc",
        "",
        "1.5",
        "1e2",
        " 5",
        "5 ",
        "0x10",
        "+5",
        "²",  # str.isdigit() says yes, int() says no
        "١٢",  # Arabic-Indic digits: not ASCII
        "9" * 5000,  # over int()'s 4300-digit limit
    ],
)
@pytest.mark.parametrize("collection", ["records", "workspaces"])
def test_a_limit_outside_1_to_100_is_a_validation_error(a: Caller, collection, limit) -> None:
    response = a.get(f"/api/v1/{collection}", query_string={"limit": limit})
    body = assert_error(response, 422, "validation_error")
    assert set(body["error"]["fields"]) == {"limit"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "a",
        "x" * 1000,
        _b64(b"not json"),
        _b64(b"[]"),
        _b64(b"{}"),
        _b64(b"42"),
        _b64(b'["not a time", "rec_x"]'),
        _b64(b'["2024-01-01T00:00:00", "rec_x"]'),  # no time zone
        _b64(b'["2024-01-01T00:00:00+00:00", 5]'),
        _b64(b'["2024-01-01T00:00:00+00:00", "' + b"r" * 40 + b'"]'),
        _b64(b'["2024-01-01T00:00:00+00:00", "rec_x", "extra"]'),
        _b64(b"\xff\xfe\xfd"),
        "éé",
    ],
)
def test_a_garbage_cursor_is_a_validation_error(a: Caller, cursor: str) -> None:
    for collection in ("records", "workspaces"):
        response = a.get(f"/api/v1/{collection}", query_string={"cursor": cursor})
        body = assert_error(response, 422, "validation_error")
        assert set(body["error"]["fields"]) == {"cursor"}


# keys listing


def test_the_key_list_shows_this_accounts_keys(a: Caller, b: Caller) -> None:
    second_id, _ = make_api_key(a.app, a.slug, "Second")
    body = a.get("/api/v1/api_keys").get_json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    assert {k["id"] for k in body["data"]} == {a.key_id, second_id}
    for key in body["data"]:
        assert set(key) == LISTING_FIELDS
        assert_utc_time(key["created_at"])
        if key["last_used_at"] is not None:
            assert_utc_time(key["last_used_at"])
    assert b.key_id not in {k["id"] for k in body["data"]}


# isolation between accounts


def snapshot(app: Flask, slug: str) -> dict[str, Any]:
    """Every row that belongs to an account, as plain values."""
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        workspaces = db.session.execute(
            select(Workspace.id, Workspace.name, Workspace.created_at).where(
                Workspace.account_id == account.id
            )
        ).all()
        records = db.session.execute(
            select(
                Record.id,
                Record.workspace_id,
                Record.title,
                Record.data,
                Record.created_at,
                Record.updated_at,
            ).where(Record.account_id == account.id)
        ).all()
        keys = db.session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.token_hash).where(ApiKey.account_id == account.id)
        ).all()
        return {
            "account": (account.id, account.slug, account.name),
            "workspaces": sorted(map(tuple, workspaces)),
            "records": sorted(map(tuple, records), key=lambda row: row[0]),
            "keys": sorted(map(tuple, keys)),
        }


@pytest.fixture
def b_objects(b: Caller) -> dict[str, str]:
    workspace = b.main_workspace()
    record = b.new_record(workspace, "B's secret", secret="b-only")
    return {"workspace": workspace, "record": record["id"], "key": b.key_id}


def _missing_body(a: Caller, collection: str, method: str) -> bytes:
    response = a.open(method, f"/api/v1/{collection}/x_does_not_exist", json={"title": "x"})
    assert response.status_code == 404
    return response.get_data()


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    ("collection", "kind"), [("workspaces", "workspace"), ("records", "record")]
)
def test_another_accounts_objects_are_not_found(a, b, b_objects, method, collection, kind):
    before = snapshot(b.app, b.slug)
    bodies = [
        {"name": "Hijacked"},
        {"title": "Hijacked", "data": {"pwned": True}},
        {"workspace_id": a.main_workspace()},
    ]
    for body in bodies:
        response = a.open(method, f"/api/v1/{collection}/{b_objects[kind]}", json=body)
        assert_error(response, 404, "not_found")
        assert response.get_data() == _missing_body(a, collection, method)
    assert snapshot(b.app, b.slug) == before


def test_lists_never_show_another_accounts_objects(a: Caller, b: Caller, b_objects) -> None:
    a.new_record(a.main_workspace(), "A's own")
    b_ids = set(b_objects.values())
    for path in ("/api/v1/workspaces", "/api/v1/records"):
        listed = a.all_pages(path, limit=1) + a.get(path).get_json()["data"]
        assert listed and not ({item["id"] for item in listed} & b_ids)
        assert "B's secret" not in json.dumps(listed)
    keys = a.get("/api/v1/api_keys").get_json()["data"]
    assert {k["id"] for k in keys} == {a.key_id}


def test_the_workspace_filter_cannot_reach_another_account(a: Caller, b: Caller, b_objects):
    response = a.get(f"/api/v1/records?workspace_id={b_objects['workspace']}")
    assert_error(response, 404, "not_found")
    assert response.get_data() == a.get("/api/v1/records?workspace_id=ws_nope").get_data()


def test_a_cursor_made_from_another_accounts_record_shows_only_own_records(a, b, b_objects):
    mine = a.new_record(a.main_workspace(), "Mine")
    with b.app.app_context():
        theirs = db.session.get(Record, b_objects["record"])
        moment = datetime(2000, 1, 1, tzinfo=UTC)
        cursor = _b64(json.dumps([moment.isoformat(), theirs.id]).encode())
    body = a.get(f"/api/v1/records?cursor={cursor}").get_json()
    assert [r["id"] for r in body["data"]] == [mine["id"]]


def test_a_record_cannot_be_put_into_another_accounts_workspace(a, b, b_objects) -> None:
    before = snapshot(b.app, b.slug)
    response = a.post(
        "/api/v1/records", {"workspace_id": b_objects["workspace"], "title": "Planted"}
    )
    body = assert_error(response, 422, "validation_error")
    assert set(body["error"]["fields"]) == {"workspace_id"}

    own = a.new_record(a.main_workspace(), "Mine")
    moved = a.patch(f"/api/v1/records/{own['id']}", {"workspace_id": b_objects["workspace"]})
    body = assert_error(moved, 422, "validation_error")
    assert set(body["error"]["fields"]) == {"workspace_id"}
    assert a.get(f"/api/v1/records/{own['id']}").get_json() == own
    assert snapshot(b.app, b.slug) == before


def test_an_owner_cannot_delete_another_accounts_key(app: Flask, a: Caller, b: Caller) -> None:
    before = snapshot(app, b.slug)
    browser = app.test_client()
    browser.post("/sign_in/password", data={"email": a.person.email, "password": a.person.password})
    page = browser.get(f"/a/{a.slug}/").get_data(as_text=True)
    csrf = {"X-CSRFToken": CSRF_META.search(page).group(1)}

    response = browser.delete(f"/api/v1/api_keys/{b.key_id}", headers=csrf)
    assert_error(response, 404, "not_found")
    assert response.get_data() == browser.delete("/api/v1/api_keys/key_nope", headers=csrf).data
    for bad_id in ("' OR 1=1--", "k" * 500):
        assert_error(browser.delete(f"/api/v1/api_keys/{bad_id}", headers=csrf), 404, "not_found")
    assert b.get("/api/v1/account").status_code == 200
    assert snapshot(app, b.slug) == before


def test_an_owner_session_sees_only_its_account(app: Flask, a: Caller, b: Caller, b_objects):
    browser: FlaskClient = app.test_client()
    browser.post("/sign_in/password", data={"email": a.person.email, "password": a.person.password})
    assert browser.get(f"/a/{b.slug}/").status_code == 404
    assert browser.get(f"/api/v1/workspaces/{b_objects['workspace']}").status_code == 404
    assert browser.get(f"/api/v1/records/{b_objects['record']}").status_code == 404
    listed = browser.get("/api/v1/records").get_json()["data"]
    assert b_objects["record"] not in {r["id"] for r in listed}


def test_after_every_attempt_bs_data_is_unchanged_and_still_works(app, a, b, b_objects):
    before = snapshot(app, b.slug)
    for method in ("GET", "PATCH", "DELETE"):
        for collection, kind in (("workspaces", "workspace"), ("records", "record")):
            a.open(method, f"/api/v1/{collection}/{b_objects[kind]}", json={"name": "x"})
    a.post("/api/v1/records", {"workspace_id": b_objects["workspace"], "title": "x"})
    a.delete(f"/api/v1/api_keys/{b.key_id}")
    assert snapshot(app, b.slug) == before
    record = b.get(f"/api/v1/records/{b_objects['record']}").get_json()
    assert record["title"] == "B's secret" and record["data"] == {"secret": "b-only"}
