"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document that matches the real routes."""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import factories
from tests.factories import make_api_key

BASE = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
HAS_JSONSCHEMA = importlib.util.find_spec("jsonschema") is not None
HAS_SPEC_VALIDATOR = importlib.util.find_spec("openapi_spec_validator") is not None


# helpers


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer such as #/components/schemas/Error."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(document, node["$ref"])
    return node


def walk(node: Any, path: str = "#") -> Any:
    """Yield (path, dict) for every object in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def operations(document: dict[str, Any]) -> Any:
    """Yield (path, method, operation, path item) for every documented operation."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation, item


_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def check(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """A small JSON Schema check for the keywords this document uses (no jsonschema here)."""
    if "$ref" in schema:
        check(document, resolve(document, schema["$ref"]), value, where)
    for part in schema.get("allOf", []):
        check(document, part, value, where)
    if "oneOf" in schema:
        matches = 0
        for part in schema["oneOf"]:
            try:
                check(document, part, value, where)
            except AssertionError:
                continue
            matches += 1
        assert matches == 1, f"{where}: {value!r} matches {matches} of oneOf"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_is_type(value, t) for t in types), f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, str):
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ pattern"
        assert len(value) <= schema.get("maxLength", len(value)), where
        assert len(value) >= schema.get("minLength", 0), where
        if schema.get("format") == "date-time":
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            assert moment.utcoffset() == timedelta(0), f"{where}: {value} is not UTC"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing {name}"
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                check(document, properties[name], item, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{where}: unexpected {name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                check(document, schema["additionalProperties"], item, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(document, schema["items"], item, f"{where}[{index}]")


def validate(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    if HAS_JSONSCHEMA:
        import jsonschema

        wrapped = {**schema, "components": document["components"]}
        jsonschema.validate(value, wrapped, cls=jsonschema.Draft202012Validator)
    check(document, schema, value)


def documented_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    """The JSON schema a documented response promises."""
    response = deref(document, document["paths"][path][method]["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


# the document itself


def test_the_document_needs_no_authentication(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = client.get(f"{BASE}/openapi.json", headers=headers)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.get_json()["openapi"] == "3.1.0"


def test_the_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert isinstance(document["info"]["title"], str) and document["info"]["title"]
    assert isinstance(document["info"]["version"], str) and document["info"]["version"]
    assert [server["url"] for server in document["servers"]] == [BASE]
    assert all(path.startswith("/") for path in document["paths"])
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    for requirement in document["security"]:
        assert set(requirement) <= set(schemes)


@pytest.mark.skipif(not HAS_SPEC_VALIDATOR, reason="openapi-spec-validator is not installed")
def test_the_document_passes_the_openapi_3_1_meta_schema(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate as validate_spec
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    validate_spec(document, cls=OpenAPIV31SpecValidator)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = [(where, node["$ref"]) for where, node in walk(document) if "$ref" in node]
    assert refs
    for where, ref in refs:
        assert isinstance(ref, str), where
        resolve(document, ref)


def test_every_operation_has_a_summary_and_described_responses(document: dict[str, Any]) -> None:
    for path, method, operation, _ in operations(document):
        assert operation.get("summary"), (path, method)
        assert operation["responses"], (path, method)
        for status, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", status), (path, method, status)
            assert deref(document, response).get("description"), (path, method, status)


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    for path, method, operation, item in operations(document):
        declared = {
            deref(document, p)["name"]
            for p in [*item.get("parameters", []), *operation.get("parameters", [])]
            if deref(document, p)["in"] == "path"
        }
        assert declared == set(re.findall(r"{([^}]+)}", path)), (path, method)
        for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
            parameter = deref(document, parameter)
            assert parameter["in"] in {"path", "query", "header", "cookie"}
            if parameter["in"] == "path":
                assert parameter["required"] is True


def _routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(BASE + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(BASE) :])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def test_documented_operations_are_exactly_the_real_routes(app: Flask, document) -> None:
    real = _routes(app)
    documented = {(path, method) for path, method, _, _ in operations(document)}
    assert real, "no API routes found"
    assert documented - real == set(), "documented but not served"
    assert real - documented == set(), "served but not documented"


def test_the_document_lists_the_contracts_endpoints(document: dict[str, Any]) -> None:
    contract = {
        ("/account", "get"),
        ("/workspaces", "get"),
        ("/workspaces", "post"),
        ("/workspaces/{workspace_id}", "get"),
        ("/workspaces/{workspace_id}", "patch"),
        ("/workspaces/{workspace_id}", "delete"),
        ("/records", "get"),
        ("/records", "post"),
        ("/records/{record_id}", "get"),
        ("/records/{record_id}", "patch"),
        ("/records/{record_id}", "delete"),
        ("/api_keys", "get"),
        ("/api_keys", "post"),
        ("/api_keys/{key_id}", "delete"),
        ("/openapi.json", "get"),
    }
    assert contract <= {(path, method) for path, method, _, _ in operations(document)}


def test_every_operation_but_the_document_itself_documents_401(document) -> None:
    for path, method, operation, _ in operations(document):
        if path == "/openapi.json":
            assert "401" not in operation["responses"]
            assert operation["security"] == []
        else:
            assert "401" in operation["responses"], (path, method)
            assert "429" in operation["responses"], (path, method)


def test_every_error_response_refers_to_the_error_schema(document: dict[str, Any]) -> None:
    errors = 0
    for path, method, operation, _ in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            errors += 1
            content = deref(document, response)["content"]
            assert set(content) == {"application/json"}, (path, method, status)
            schema = content["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    assert errors > 30


def test_the_list_operations_document_their_query_parameters(document) -> None:
    def names(path: str) -> set[str]:
        return {deref(document, p)["name"] for p in document["paths"][path]["get"]["parameters"]}

    assert names("/records") == {"workspace_id", "limit", "cursor"}
    assert {"limit", "cursor"} <= names("/workspaces")
    limit = next(
        deref(document, p)
        for p in document["paths"]["/records"]["get"]["parameters"]
        if deref(document, p)["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    assert limit["schema"]["default"] == 50


def test_the_documented_error_codes_are_the_contracts(document: dict[str, Any]) -> None:
    code = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    codes = set(code["anyOf"][0]["enum"])
    contract = {
        "bad_request",
        "unauthorized",
        "invalid_token",
        "admin_only",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "validation_error",
        "rate_limited",
        "unavailable",
    }
    assert contract <= codes


# real answers against their documented schemas


def test_real_answers_match_their_documented_schemas(app: Flask, client, document) -> None:
    person = factories.make_person(app)
    token = make_api_key(app, person.account_slug)[1]
    headers = {"Authorization": f"Bearer {token}"}

    def answer(method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = client.open(BASE + path, method=method, headers=headers, **kwargs)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def documented(path: str, method: str, status: int) -> Any:
        return documented_schema(document, path, method, status)

    validate(document, documented("/account", "get", 200), answer("GET", "/account", 200))
    workspaces = answer("GET", "/workspaces", 200)
    validate(document, documented("/workspaces", "get", 200), workspaces)
    workspace_id = workspaces["data"][0]["id"]
    new_workspace = answer("POST", "/workspaces", 201, json={"name": "Ops"})
    validate(document, documented("/workspaces", "post", 201), new_workspace)
    validate(
        document,
        documented("/workspaces/{workspace_id}", "patch", 200),
        answer("PATCH", f"/workspaces/{new_workspace['id']}", 200, json={"name": "Ops 2"}),
    )

    record = answer(
        "POST", "/records", 201, json={"workspace_id": workspace_id, "title": "T", "data": {"a": 1}}
    )
    validate(document, documented("/records", "post", 201), record)
    validate(
        document,
        documented("/records/{record_id}", "get", 200),
        answer("GET", f"/records/{record['id']}", 200),
    )
    answer("POST", "/records", 201, json={"workspace_id": workspace_id, "title": "U"})
    page = answer("GET", "/records?limit=1", 200)
    assert page["next_cursor"] is not None
    validate(document, documented("/records", "get", 200), page)
    validate(document, documented("/api_keys", "get", 200), answer("GET", "/api_keys", 200))

    # The admin-only create, through an owner's session.
    browser = app.test_client()
    browser.post("/sign_in/password", data={"email": person.email, "password": person.password})
    csrf = CSRF_META.search(browser.get(f"/a/{person.account_slug}/").get_data(as_text=True))
    created = browser.post(
        f"{BASE}/api_keys", json={"name": "Deploys"}, headers={"X-CSRFToken": csrf.group(1)}
    )
    assert created.status_code == 201
    validate(document, documented("/api_keys", "post", 201), created.get_json())


def test_real_errors_match_the_error_schema(app: Flask, client, document) -> None:
    person = factories.make_person(app)
    token = make_api_key(app, person.account_slug)[1]
    headers = {"Authorization": f"Bearer {token}"}
    error = {"$ref": "#/components/schemas/Error"}
    responses = [
        client.get(f"{BASE}/account"),
        client.get(f"{BASE}/account", headers={"Authorization": "Bearer nope"}),
        client.post(f"{BASE}/workspaces", data="[]", headers=headers),
        client.post(f"{BASE}/workspaces", json={"name": ""}, headers=headers),
        client.post(f"{BASE}/api_keys", json={"name": "x"}, headers=headers),
        client.get(f"{BASE}/records/rec_nope", headers=headers),
        client.get(f"{BASE}/nope", headers=headers),
        client.delete(f"{BASE}/account", headers=headers),
        client.get(f"{BASE}/records?limit=0", headers=headers),
    ]
    statuses = set()
    for response in responses:
        assert response.status_code >= 400
        statuses.add(response.status_code)
        validate(document, error, response.get_json())
    assert statuses == {400, 401, 403, 404, 405, 422}


def test_the_schema_check_refuses_answers_that_break_the_document(document) -> None:
    # The checks above are only worth something if a wrong answer fails them.
    record = {
        "id": "rec_x",
        "workspace_id": "ws_x",
        "title": "T",
        "data": {},
        "created_at": "2024-01-01T00:00:00+00:00",
        "updated_at": "2024-01-01T00:00:00+00:00",
    }
    schema = {"$ref": "#/components/schemas/Record"}
    check(document, schema, record)
    wrong = [
        {k: v for k, v in record.items() if k != "title"},
        {**record, "data": []},
        {**record, "created_at": "2024-01-01T00:00:00"},
        {**record, "id": 5},
    ]
    for answer in wrong:
        with pytest.raises(AssertionError):
            check(document, schema, answer)
    with pytest.raises(AssertionError):
        check(document, {"$ref": "#/components/schemas/Error"}, {"error": {"code": "oops"}})
    with pytest.raises(AssertionError):
        check(document, {"$ref": "#/components/schemas/NewApiKey"}, {"key": "thub_short"})


# conventions: ids, tags, security, headers, open enums


def _endpoint_of(app: Flask, path: str, method: str) -> str:
    for rule in app.url_map.iter_rules():
        documented = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(BASE) :])
        if (
            rule.rule.startswith(BASE + "/")
            and documented == path
            and method.upper() in rule.methods
        ):
            return rule.endpoint
    raise AssertionError(f"no route for {method} {path}")


def test_every_operation_is_named_tagged_and_described(app: Flask, document) -> None:
    tags = {tag["name"] for tag in document["tags"]}
    assert all(tag.get("description") for tag in document["tags"])
    ids = []
    for path, method, operation, _ in operations(document):
        # The operationId is the view's own name, so logs, code and clients agree.
        assert f"api.{operation['operationId']}" == _endpoint_of(app, path, method)
        ids.append(operation["operationId"])
        assert operation["tags"] and set(operation["tags"]) <= tags, (path, method)
        assert operation.get("description"), (path, method)
    assert len(ids) == len(set(ids))


def test_each_operation_says_who_may_call_it(app: Flask, document) -> None:
    from terminus_hub.api.auth import ADMIN_ONLY_ENDPOINTS
    from terminus_hub.api.auth import REQUIRED_SCOPES

    admin_only = 0
    for path, method, operation, _ in operations(document):
        endpoint = _endpoint_of(app, path, method)
        schemes = [set(requirement) for requirement in operation["security"]]
        session = {"session"} if method == "get" else {"session", "csrf"}
        if endpoint in ADMIN_ONLY_ENDPOINTS:
            admin_only += 1
            assert schemes == [session], (path, method)
            assert "x-required-scope" not in operation
        elif endpoint in REQUIRED_SCOPES:
            assert schemes == [{"bearer"}, session], (path, method)
            assert operation["x-required-scope"] == REQUIRED_SCOPES[endpoint]
            assert REQUIRED_SCOPES[endpoint] in operation["description"]
    assert admin_only >= 10
    csrf = document["components"]["securitySchemes"]["csrf"]
    assert (csrf["in"], csrf["name"]) == ("header", "X-CSRFToken")
    assert document["components"]["securitySchemes"]["session"]["in"] == "cookie"


def test_the_answers_headers_are_documented(document) -> None:
    for path, method, operation, _ in operations(document):
        for status, response in operation["responses"].items():
            headers = deref(document, response)["headers"]
            assert {"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Reset"} <= set(headers)
            if status == "201":
                assert {"Location", "Idempotent-Replayed"} <= set(headers), (path, method)
            if status == "429":
                assert "Retry-After" in headers
            if status in ("401", "403"):
                assert "WWW-Authenticate" in headers
        if method == "post":
            names = {deref(document, p)["name"] for p in operation["parameters"]}
            assert "Idempotency-Key" in names, path
        if path != "/openapi.json":
            assert {"405", "500", "422"} <= set(operation["responses"]), (path, method)
        if "requestBody" in operation:
            assert "413" in operation["responses"], (path, method)


def test_enums_that_may_grow_are_open(document) -> None:
    schemas = document["components"]["schemas"]
    grow = [
        schemas["Error"]["properties"]["error"]["properties"]["code"],
        schemas["Member"]["properties"]["role"],
        schemas["Invitation"]["properties"]["role"],
        schemas["AuditEvent"]["properties"]["actor"]["properties"]["type"],
        schemas["AuditEvent"]["properties"]["kind"],
        schemas["Account"]["properties"]["auth"],
        schemas["Scope"],
    ]
    for schema in grow:
        known, anything = schema["anyOf"]
        assert known["enum"] and anything == {"type": "string"}
        validate(document, schema, "a_value_added_later")
    assert "insufficient_scope" in grow[0]["anyOf"][0]["enum"]


def test_the_documented_413_is_what_a_big_body_gets(app: Flask, client, document) -> None:
    person = factories.make_person(app)
    token = make_api_key(app, person.account_slug)[1]
    body = '{"name": "' + "a" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    response = client.post(
        f"{BASE}/workspaces",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413
    code = response.get_json()["error"]["code"]
    assert f"`{code}`" in document["components"]["responses"]["E413"]["description"]
