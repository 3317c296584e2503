"""Every answer under /api/ is JSON in the one error shape (docs/api-overview.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from terminus_hub import api_tokens
from terminus_hub import create_app
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import Record
from terminus_hub.models import User
from terminus_hub.models import Workspace
from tests import factories
from tests.conftest import BASE_CONFIG
from tests.factories import make_api_key

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
DATA_LIMIT = 64 * 1024


# helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, as JSON, never an HTML page or a traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return body


def stored_state(app: Flask) -> dict[str, Any]:
    """Everything the API could write, to compare before and after bad input."""
    with app.app_context():
        workspaces = db.session.execute(
            select(Workspace.id, Workspace.account_id, Workspace.name, Workspace.created_at)
        ).all()
        records = db.session.execute(
            select(
                Record.id,
                Record.workspace_id,
                Record.title,
                Record.data,
                Record.created_at,
                Record.updated_at,
            )
        ).all()
        return {
            "workspaces": sorted(map(tuple, workspaces)),
            "records": sorted(map(tuple, records), key=lambda row: row[0]),
            "keys": sorted(db.session.scalars(select(ApiKey.id)).all()),
            "accounts": sorted(db.session.scalars(select(Account.id)).all()),
            "users": sorted(db.session.scalars(select(User.id)).all()),
            "memberships": sorted(db.session.scalars(select(Membership.id)).all()),
        }


class Api:
    """The user's account through a key, and (for admin-only endpoints) the owner's session."""

    def __init__(self, app: Flask, user: factories.Person) -> None:
        self.app = app
        self.token = make_api_key(app, user.account_slug)[1]
        self.client = app.test_client()
        self.browser = app.test_client()
        self.browser.post(
            "/sign_in/password", data={"email": user.email, "password": user.password}
        )
        page = self.browser.get(f"/a/{user.account_slug}/").get_data(as_text=True)
        self.csrf = CSRF_META.search(page).group(1)
        main = self.call("GET", "/api/v1/workspaces").get_json()["data"][0]
        self.workspace_id = main["id"]
        created = self.call(
            "POST",
            "/api/v1/records",
            json={"workspace_id": self.workspace_id, "title": "First", "data": {"n": 1}},
        )
        assert created.status_code == 201
        self.record_id = created.get_json()["id"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        ids = {"ws": getattr(self, "workspace_id", ""), "rec": getattr(self, "record_id", "")}
        path = path.format(**ids)
        if path.startswith("/api/v1/api_keys"):
            headers = {"X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
            return self.browser.open(path, method=method, headers=headers, **kwargs)
        headers = {**bearer(self.token), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(app: Flask, user: factories.Person) -> Api:
    return Api(app, user)


BODY_ENDPOINTS = [
    ("POST", "/api/v1/workspaces"),
    ("PATCH", "/api/v1/workspaces/{ws}"),
    ("POST", "/api/v1/records"),
    ("PATCH", "/api/v1/records/{rec}"),
    ("POST", "/api/v1/api_keys"),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path in BODY_ENDPOINTS]


# routing


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1/",
        "/api/v1",
        "/api/",
        "/api/v2/account",
        "/api/v1/records/a/b",
        "/api/v1/workspaces/",
        "/api/v1/account.html",
    ],
)
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "key"])
def test_unknown_api_paths_are_json_404s(api: Api, path: str, authenticated: bool) -> None:
    headers = bearer(api.token) if authenticated else {}
    for extra in ({}, {"HX-Request": "true"}, {"Accept": "text/html"}):
        response = api.client.get(path, headers={**headers, **extra})
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/account", {"GET"}),
        ("POST", "/api/v1/account", {"GET"}),
        ("PUT", "/api/v1/workspaces", {"GET", "POST"}),
        ("DELETE", "/api/v1/records", {"GET", "POST"}),
        ("PUT", "/api/v1/records/{rec}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/workspaces/{ws}", {"GET", "PATCH", "DELETE"}),
        ("PUT", "/api/v1/api_keys/key_x", {"GET", "DELETE"}),
        ("GET", "/api/v1/api_keys/key_x/roll", {"POST"}),
        ("POST", "/api/v1/openapi.json", {"GET"}),
        ("TRACE", "/api/v1/account", {"GET"}),
    ],
)
def test_wrong_methods_are_json_405s_with_allow(api: Api, method, path, allowed) -> None:
    path = path.format(ws=api.workspace_id, rec=api.record_id)
    for headers in (bearer(api.token), {}):
        response = api.client.open(path, method=method, headers=headers)
        assert_error(response, 405, "method_not_allowed")
        listed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert listed - {"HEAD", "OPTIONS"} == allowed


# 400: the body is not a JSON object

NOT_AN_OBJECT: dict[str, dict[str, Any]] = {
    "not JSON": {"data": "name=Ops", "content_type": "application/json"},
    "truncated JSON": {"data": '{"name": "Ops"', "content_type": "application/json"},
    "JSON array": {"json": [{"name": "Ops"}]},
    "JSON string": {"json": "Ops"},
    "JSON number": {"json": 42},
    "JSON null": {"data": "null", "content_type": "application/json"},
    "JSON true": {"json": True},
    "empty body": {"data": "", "content_type": "application/json"},
    "invalid UTF-8": {"data": b'{"name": "\xff\xfe"}', "content_type": "application/json"},
    "form-encoded": {"data": {"name": "Ops"}},
    "object as text/plain": {"data": '{"name": "Ops"}', "content_type": "text/plain"},
    "object without content type": {"data": '{"name": "Ops"}'},
}


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize("body", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    app: Flask, api: Api, method: str, path: str, body: dict[str, Any]
) -> None:
    before = stored_state(app)
    assert_error(api.call(method, path, **body), 400, "bad_request")
    assert stored_state(app) == before


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS[:3], ids=ENDPOINT_IDS[:3])
def test_deeply_nested_json_is_a_bad_request(app: Flask, api: Api, method, path) -> None:
    before = stored_state(app)
    body = "[" * 100_000 + "]" * 100_000
    response = api.call(method, path, data=body, content_type="application/json")
    assert_error(response, 400, "bad_request")
    assert stored_state(app) == before


@pytest.mark.parametrize("depth", [33, 100, 330, 500, 700, 980, 1500, 5000])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_data_nested_at_any_depth_is_a_clean_refusal(
    app: Flask, api: Api, method: str, depth: int
) -> None:
    before = stored_state(app)
    nested = '{"k":' * depth + "1" + "}" * depth  # data itself counts as a level
    path = "/api/v1/records" if method == "POST" else f"/api/v1/records/{api.record_id}"
    fields = f'"workspace_id": "{api.workspace_id}", "title": "t", ' if method == "POST" else ""
    body = f'{{{fields}"data": {nested}}}'
    response = api.call(method, path, data=body, content_type="application/json")
    assert response.status_code in (400, 422), response.status_code
    error = assert_error(response, response.status_code)["error"]
    if response.status_code == 422:
        assert error["fields"] == {"data": "Nest objects and arrays at most 32 levels deep."}
    assert len(response.get_data()) < 1000
    assert stored_state(app) == before


@pytest.mark.parametrize(
    "body",
    [
        '{"workspace_id": "WS", "title": "t", "data": {"a": "\\ud800"}}',
        '{"workspace_id": "WS", "title": "t", "data": {"\\udfff": 1}}',
        '{"workspace_id": "\\ud800", "title": "t", "data": {}}',
    ],
)
def test_a_lone_surrogate_is_not_json_text(app: Flask, api: Api, body: str) -> None:
    before = stored_state(app)
    data = body.replace("WS", api.workspace_id)
    response = api.call("POST", "/api/v1/records", data=data, content_type="application/json")
    assert_error(response, 400, "bad_request")
    assert stored_state(app) == before


def test_data_nested_32_deep_is_kept(api: Api) -> None:
    nested: Any = 1
    for _ in range(32):
        nested = {"k": nested}
    response = api.call("POST", "/api/v1/records", json=_records_body(api, data=nested))
    assert response.status_code == 201, response.get_json()


def test_a_422_echoes_a_few_unknown_names_not_the_whole_body(app: Flask, api: Api) -> None:
    before = stored_state(app)
    body = {"name": "Ops", **{f"field_{n:06d}_" + "x" * 200: n for n in range(3000)}}
    response = api.call("POST", "/api/v1/workspaces", json=body)
    error = assert_error(response, 422, "validation_error")["error"]
    assert len(error["fields"]) == 10
    assert all(len(name) <= 64 for name in error["fields"])
    assert "3000 unknown fields" in error["message"]
    assert len(response.get_data()) < 2000
    assert stored_state(app) == before


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_json_numbers_in_data_are_refused(app: Flask, api: Api, constant: str) -> None:
    before = stored_state(app)
    body = f'{{"workspace_id": "{api.workspace_id}", "title": "t", "data": {{"x": {constant}}}}}'
    response = api.call("POST", "/api/v1/records", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code)
    assert stored_state(app) == before


# 422: fields named


def _records_body(api: Api, **fields: Any) -> dict[str, Any]:
    return {"workspace_id": api.workspace_id, "title": "A record", "data": {}, **fields}


NUL = "a\u0000b"
INVALID_FIELDS: list[tuple[str, str, Callable[[Api], Any], set[str]]] = [
    # POST /workspaces
    ("POST", "/api/v1/workspaces", lambda a: {}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": None}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": 5}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": ["Ops"]}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": {"x": 1}}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": True}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": ""}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": " \t "}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": "x" * 121}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": NUL}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": "two\nlines"}, {"name"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": "Ops", "colour": "red"}, {"colour"}),
    ("POST", "/api/v1/workspaces", lambda a: {"name": "Ops", "id": "ws_mine"}, {"id"}),
    # PATCH /workspaces/<id>
    ("PATCH", "/api/v1/workspaces/{ws}", lambda a: {"name": ""}, {"name"}),
    ("PATCH", "/api/v1/workspaces/{ws}", lambda a: {"name": None}, {"name"}),
    ("PATCH", "/api/v1/workspaces/{ws}", lambda a: {"name": 3.5}, {"name"}),
    ("PATCH", "/api/v1/workspaces/{ws}", lambda a: {"name": "x" * 121}, {"name"}),
    ("PATCH", "/api/v1/workspaces/{ws}", lambda a: {"created_at": "2020"}, {"created_at"}),
    # POST /records
    ("POST", "/api/v1/records", lambda a: _records_body(a, title=None), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title=7), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title=["t"]), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title=""), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title="   "), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title="x" * 201), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title=NUL), {"title"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data=[1, 2]), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data="{}"), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data=1), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data=None), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data=True), {"data"}),
    (
        "POST",
        "/api/v1/records",
        lambda a: _records_body(a, data={"x": "a" * (DATA_LIMIT - 7)}),
        {"data"},
    ),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data={"x": NUL}), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data={NUL: 1}), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, data={"x": [{"y": NUL}]}), {"data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, title="", data=[]), {"title", "data"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, extra=1), {"extra"}),
    ("POST", "/api/v1/records", lambda a: {"title": "t", "data": {}}, {"workspace_id"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, workspace_id=5), {"workspace_id"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, workspace_id=""), {"workspace_id"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, workspace_id="ws_x"), {"workspace_id"}),
    ("POST", "/api/v1/records", lambda a: _records_body(a, workspace_id=None), {"workspace_id"}),
    # PATCH /records/<id>
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"title": ""}, {"title"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"title": None}, {"title"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"title": "x" * 201}, {"title"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"title": NUL}, {"title"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"data": []}, {"data"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"data": None}, {"data"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"data": {"k": NUL}}, {"data"}),
    (
        "PATCH",
        "/api/v1/records/{rec}",
        lambda a: {"data": {"x": "a" * (DATA_LIMIT - 7)}},
        {"data"},
    ),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"title": "", "data": 1}, {"title", "data"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"workspace_id": 5}, {"workspace_id"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"workspace_id": "ws_x"}, {"workspace_id"}),
    ("PATCH", "/api/v1/records/{rec}", lambda a: {"id": "rec_mine"}, {"id"}),
    # POST /api_keys (owner session)
    ("POST", "/api/v1/api_keys", lambda a: {}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": None}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": 1}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": ""}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": "   "}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": "x" * 101}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": NUL}, {"name"}),
    ("POST", "/api/v1/api_keys", lambda a: {"name": "CI", "key": "thub_x"}, {"key"}),
]


@pytest.mark.parametrize(
    ("method", "path", "make_body", "fields"),
    INVALID_FIELDS,
    ids=[f"{m} {p.split('/')[3]} {sorted(f)}-{i}" for i, (m, p, _, f) in enumerate(INVALID_FIELDS)],
)
def test_invalid_fields_are_each_named(
    app: Flask, api: Api, method: str, path: str, make_body, fields: set[str]
) -> None:
    before = stored_state(app)
    response = api.call(method, path, json=make_body(api))
    body = assert_error(response, 422, "validation_error")
    assert set(body["error"]["fields"]) == fields
    assert all(isinstance(v, str) and v for v in body["error"]["fields"].values())
    assert stored_state(app) == before


def test_a_nul_escape_inside_json_text_is_refused(app: Flask, api: Api) -> None:
    before = stored_state(app)
    raw = (
        f'{{"workspace_id": "{api.workspace_id}", "title": "a\\u0000b", '
        '"data": {"k": "\\u0000"}}'
    )
    response = api.call("POST", "/api/v1/records", data=raw, content_type="application/json")
    body = assert_error(response, 422, "validation_error")
    assert set(body["error"]["fields"]) == {"title", "data"}
    assert stored_state(app) == before


def test_every_bad_record_field_is_named_in_one_answer(app: Flask, api: Api) -> None:
    response = api.call(
        "POST", "/api/v1/records", json={"workspace_id": 5, "title": "", "data": []}
    )
    body = assert_error(response, 422, "validation_error")
    assert set(body["error"]["fields"]) == {"workspace_id", "title", "data"}


def test_a_literal_backslash_u0000_text_is_not_a_nul(api: Api) -> None:
    response = api.call("POST", "/api/v1/records", json=_records_body(api, data={"re": "\\u0000"}))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["data"] == {"re": "\\u0000"}


def test_values_at_the_limits_are_accepted(api: Api) -> None:
    # title: 200 characters; data: exactly 64 KiB serialised; names up to their maximum.
    data = {"x": "a" * (DATA_LIMIT - 8)}
    response = api.call(
        "POST", "/api/v1/records", json=_records_body(api, title="t" * 200, data=data)
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["title"] == "t" * 200
    assert response.get_json()["data"] == data
    assert api.call("POST", "/api/v1/workspaces", json={"name": "w" * 120}).status_code == 201
    assert api.call("POST", "/api/v1/api_keys", json={"name": "k" * 100}).status_code == 201


def test_multi_byte_data_is_measured_in_bytes(app: Flask, api: Api) -> None:
    before = stored_state(app)
    data = {"x": "é" * (DATA_LIMIT // 2)}  # 32,768 characters but over 64 KiB in UTF-8
    response = api.call("POST", "/api/v1/records", json=_records_body(api, data=data))
    assert set(assert_error(response, 422, "validation_error")["error"]["fields"]) == {"data"}
    assert stored_state(app) == before


# 413


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_over_the_size_limit_is_refused_with_413(app: Flask, api: Api, method, path):
    before = stored_state(app)
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = '{"name": "' + "a" * limit + '"}'
    response = api.call(method, path, data=body, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert stored_state(app) == before


# ids of the wrong shape and odd query strings


@pytest.mark.parametrize("bad_id", ["' OR 1=1--", "x" * 500, "%2e%2e", "rec_" + "é" * 8, "1"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("collection", ["workspaces", "records"])
def test_ids_of_the_wrong_shape_are_not_found(app, api: Api, bad_id, method, collection):
    before = stored_state(app)
    response = api.call(method, f"/api/v1/{collection}/{bad_id}", json={"name": "x"})
    assert_error(response, 404, "not_found")
    assert stored_state(app) == before


def test_a_nul_in_the_path_or_query_is_a_json_error(app: Flask, api: Api) -> None:
    before = stored_state(app)
    for path in (
        "/api/v1/records/%00",
        "/api/v1/records?workspace_id=%00",
        "/api/v1/records?cursor=%00",
    ):
        response = api.call("GET", path)
        assert response.status_code in (400, 404, 422)
        assert_error(response, response.status_code)
    assert stored_state(app) == before


# 500 and 503


def _raise(exc: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


@pytest.mark.app_config(TESTING=False, PROPAGATE_EXCEPTIONS=False)
def test_an_unexpected_error_is_a_json_500_without_a_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "secret internals at /srv/terminus/api/account.py line 12"
    monkeypatch.setattr("terminus_hub.api.account.current_caller", _raise(RuntimeError(secret)))
    response = api.call("GET", "/api/v1/account")
    body = assert_error(response, 500)
    assert body["error"]["code"] == "internal_error"
    text = response.get_data(as_text=True)
    assert secret not in text and "RuntimeError" not in text and "File " not in text

    monkeypatch.undo()
    assert api.call("GET", "/api/v1/account").status_code == 200


def test_a_database_error_is_a_json_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    monkeypatch.setattr("terminus_hub.api.account.current_caller", _raise(down))
    response = api.call("GET", "/api/v1/account")
    assert_error(response, 503, "unavailable")
    assert "connection refused" not in response.get_data(as_text=True)

    monkeypatch.undo()
    assert api.call("GET", "/api/v1/account").status_code == 200


def test_an_unreachable_database_is_a_json_503(tmp_path: Path) -> None:
    # A real driver error: the database file's folder does not exist.
    missing = tmp_path / "missing" / "terminus.sqlite"
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"},
        instance_path=str(tmp_path / "instance"),
    )
    client = app.test_client()
    try:
        response = client.get("/api/v1/account", headers=bearer(api_tokens.generate()))
        body = assert_error(response, 503, "unavailable")
        assert "sqlite" not in str(body).lower()
        # Malformed tokens never reach the database, so they still get their 401.
        assert_error(
            client.get("/api/v1/account", headers=bearer("thub_bad")), 401, "invalid_token"
        )
    finally:
        with app.app_context():
            db.engine.dispose()
