"""GET /openapi.json: the OpenAPI 3.1 description of this API, kept beside the resources.

Each operation's security and scope come from the views' own decorators (api.auth), so the
document cannot promise a key what the code refuses it. Values that may grow (error codes,
roles, actor types, scopes) are open: known values are listed, and clients must accept others.
"""

from __future__ import annotations

from typing import Any

from terminus_hub import audit
from terminus_hub.api.auth import ADMIN_ONLY_ENDPOINTS
from terminus_hub.api.auth import BLUEPRINT
from terminus_hub.api.auth import REQUIRED_SCOPES
from terminus_hub.api.blueprint import bp
from terminus_hub.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from terminus_hub.api.idempotency import MAX_LENGTH as IDEMPOTENCY_MAX
from terminus_hub.api.idempotency import REPLAYED
from terminus_hub.api.pagination import DEFAULT_LIMIT
from terminus_hub.api.pagination import MAX_LIMIT
from terminus_hub.api.records import TITLE_MAX
from terminus_hub.api.validation import MAX_DATA_BYTES
from terminus_hub.api.workspaces import NAME_MAX
from terminus_hub.core.keyring import EXPIRY_DAYS_MAX
from terminus_hub.core.keyring import GRACE_HOURS_DEFAULT
from terminus_hub.core.keyring import GRACE_HOURS_MAX
from terminus_hub.core.keyring import NAME_MAX as KEY_NAME_MAX
from terminus_hub.core.keyring import SCOPES
from terminus_hub.models import ROLES

ERROR_CODES = [
    "bad_request",
    "unauthorized",
    "invalid_token",
    "admin_only",
    "insufficient_scope",
    "forbidden",
    "reauthentication_required",
    "second_factor_required",
    "not_found",
    "method_not_allowed",
    "conflict",
    "idempotency_conflict",
    "payload_too_large",
    "validation_error",
    "rate_limited",
    "internal_error",
    "unavailable",
]
ACTOR_TYPES = ["user", "api_key", "operator", "anonymous"]
AUTH_KINDS = ["api_key", "session"]
_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "string", "maxLength": 32}
_SCHEMA_REF = "#/components/schemas/"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _open_enum(known: list[str] | tuple[str, ...], what: str) -> dict[str, Any]:
    """A string whose known values are listed; a client must accept values it does not know."""
    return {
        "anyOf": [{"type": "string", "enum": list(known)}, {"type": "string"}],
        "description": f"{what} Known values: {', '.join(known)}. More may be added: "
        "treat an unknown value as a new one, not as an error.",
    }


def _role(what: str) -> dict[str, Any]:
    return _open_enum(ROLES, what)


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error answer has this shape.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": _open_enum(ERROR_CODES, "What went wrong, for programs."),
                    "message": {"type": "string", "description": "What went wrong, for people."},
                    "fields": {
                        "type": "object",
                        "description": "With validation_error: each bad field (or query "
                        "parameter, or header) and what is wrong with it.",
                        "additionalProperties": {"type": "string"},
                    },
                },
            }
        },
    },
    "Account": {
        "type": "object",
        "required": ["id", "slug", "name", "auth"],
        "properties": {
            "id": _ID,
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "auth": _open_enum(AUTH_KINDS, "How the caller is signed in."),
        },
    },
    "Workspace": {
        "type": "object",
        "required": ["id", "name", "created_at"],
        "properties": {"id": _ID, "name": {"type": "string"}, "created_at": _TIME},
    },
    "WorkspaceInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX}},
    },
    "WorkspacePatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX}},
    },
    "Record": {
        "type": "object",
        "required": ["id", "workspace_id", "title", "data", "created_at", "updated_at"],
        "properties": {
            "id": _ID,
            "workspace_id": _ID,
            "title": {"type": "string"},
            "data": {"type": "object"},
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "RecordInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["workspace_id", "title"],
        "properties": {
            "workspace_id": _ID,
            "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
            "data": {
                "type": "object",
                "description": f"Any JSON object up to {MAX_DATA_BYTES} bytes serialised.",
            },
        },
    },
    "RecordPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "workspace_id": _ID,
            "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
            "data": {"type": "object"},
        },
    },
    "Scope": _open_enum(SCOPES, "What a key may do."),
    "ApiKey": {
        "type": "object",
        "required": ["id", "name", "prefix", "scopes", "created_at", "last_used_at", "expires_at"],
        "properties": {
            "id": _ID,
            "name": {"type": "string"},
            "prefix": {
                "type": "string",
                "description": "The first characters, for telling keys apart.",
            },
            "scopes": {"type": "array", "items": {"$ref": f"{_SCHEMA_REF}Scope"}},
            "created_at": _TIME,
            "last_used_at": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "May lag by up to a minute.",
            },
            "expires_at": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "When the key stops working; null: never.",
            },
            "replaced_by": {
                "type": ["string", "null"],
                "description": "The id of the key that replaced this one when it was rolled.",
            },
        },
    },
    "NewApiKey": {
        "allOf": [
            {"$ref": f"{_SCHEMA_REF}ApiKey"},
            {
                "type": "object",
                "required": ["key"],
                "properties": {
                    "key": {
                        "type": "string",
                        "pattern": "^thub_[0-9A-Za-z]{32}$",
                        "description": "The full token. Shown this once; store it now.",
                    }
                },
            },
        ]
    },
    "ApiKeyInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": KEY_NAME_MAX},
            "scopes": {
                "type": "array",
                "items": {"type": "string", "enum": list(SCOPES)},
                "minItems": 1,
                "uniqueItems": True,
                "description": "What the key may do; every scope when left out.",
            },
            "expires_in_days": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": EXPIRY_DAYS_MAX,
                "description": "Days until the key stops working; never when left out or null.",
            },
        },
    },
    "ApiKeyRoll": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "expires_in_hours": {
                "type": "integer",
                "minimum": 0,
                "maximum": GRACE_HOURS_MAX,
                "default": GRACE_HOURS_DEFAULT,
                "description": "How long the old key keeps working.",
            }
        },
    },
    "Member": {
        "type": "object",
        "required": ["id", "user_id", "email", "name", "role", "created_at"],
        "properties": {
            "id": _ID,
            "user_id": _ID,
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": _role("The member's role."),
            "created_at": _TIME,
        },
    },
    "MemberPatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["role"],
        "properties": {"role": {"type": "string", "enum": list(ROLES)}},
    },
    "Invitation": {
        "type": "object",
        "required": ["id", "email", "role", "created_at", "expires_at"],
        "properties": {
            "id": _ID,
            "email": {"type": "string"},
            "role": _role("The role the invitation gives."),
            "created_at": _TIME,
            "expires_at": _TIME,
        },
    },
    "InvitationInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "role"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "role": {"type": "string", "enum": list(ROLES)},
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "created_at", "kind", "account_id", "user_id", "actor"],
        "properties": {
            "id": _ID,
            "created_at": _TIME,
            "kind": _open_enum(audit.KINDS, "What happened."),
            "account_id": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "actor": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {
                    "type": _open_enum(ACTOR_TYPES, "Who did it."),
                    "id": {"type": ["string", "null"]},
                },
            },
            "ip_address": {"type": "string"},
            "user_agent": {"type": "string"},
            "request_id": {
                "type": ["string", "null"],
                "description": "The X-Request-Id of the request that made it (null: a command).",
            },
            "detail": {"type": "object"},
        },
    },
}

HEADERS: dict[str, Any] = {
    "X-Request-Id": {
        "description": "This request's id: the one sent (up to 64 of A-Z a-z 0-9 . _ -), or a "
        "new req_…. It is in the log line and in audit events the request made.",
        "schema": {"type": "string", "maxLength": 64},
    },
    "X-RateLimit-Limit": {
        "description": "Requests allowed per window for this caller and endpoint.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left in the window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "When the window resets (Unix time, seconds).",
        "schema": {"type": "integer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {
        "description": 'The Bearer challenge: realm="terminus", with error="invalid_token" for a '
        'bad key, or error="insufficient_scope" and scope="…" for a missing scope.',
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The new object's address.",
        "schema": {"type": "string"},
    },
    REPLAYED: {
        "description": f"true when this is the kept answer to an earlier request with the same "
        f"{IDEMPOTENCY_HEADER}.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Allow": {
        "description": "The methods this path takes.",
        "schema": {"type": "string"},
    },
}

PARAMETERS: dict[str, Any] = {
    "Limit": {
        "name": "limit",
        "in": "query",
        "description": "Items per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "description": "The next_cursor of the previous page.",
        "schema": {"type": "string", "maxLength": 200},
    },
    "IdempotencyKey": {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "description": "Send the same key with the same request to retry safely: within 24 "
        "hours the first answer comes back, and nothing is made twice.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": IDEMPOTENCY_MAX,
            "pattern": "^[ -~]+$",
        },
    },
}

# Headers on every answer of the API.
_EVERY_ANSWER = ("X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: (
        "Malformed: the body is not a JSON object, or the request holds NUL characters "
        "(`bad_request`).",
        (),
    ),
    401: (
        "No credentials (`unauthorized`), or a malformed, unknown, revoked or expired key "
        "(`invalid_token`).",
        ("WWW-Authenticate",),
    ),
    403: (
        "Not allowed: an API key on an admin-only operation (`admin_only`), a key without the "
        "scope the operation needs (`insufficient_scope`, with WWW-Authenticate naming it), a "
        "member without the role or a session call without X-CSRFToken (`forbidden`), a session "
        "that must confirm it is its person again (`reauthentication_required`) or set up a "
        "second factor first (`second_factor_required`).",
        ("WWW-Authenticate",),
    ),
    404: ("No such object in this account (`not_found`).", ()),
    405: (
        "This path does not take the method used (`method_not_allowed`); Allow lists those "
        "it takes.",
        ("Allow",),
    ),
    409: (
        "A conflict: the change would break a rule of the account (`conflict`), such as "
        f"deleting its last workspace; or the {IDEMPOTENCY_HEADER} was used with another "
        "request, or its first request is still running (`idempotency_conflict`).",
        (),
    ),
    413: ("The request body is too large (`payload_too_large`).", ()),
    422: (
        "Fields, query parameters or headers are not valid (`validation_error`, with `fields` "
        "naming each).",
        (),
    ),
    429: ("Rate limited (`rate_limited`): wait Retry-After seconds.", ("Retry-After",)),
    500: ("Something went wrong on our side (`internal_error`); quote X-Request-Id.", ()),
    503: ("A backing service is down (`unavailable`): retry shortly.", ()),
}


def _headers(*names: str) -> dict[str, Any]:
    return {name: _ref("headers", name) for name in (*_EVERY_ANSWER, *names)}


def _answer(description: str, schema: dict[str, Any] | str | None, *headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "headers": _headers(*headers)}
    if schema is not None:
        if isinstance(schema, str):
            schema = {"$ref": f"{_SCHEMA_REF}{schema}"}
        answer["content"] = {"application/json": {"schema": schema}}
    return answer


def _list_of(schema: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "next_cursor", "has_more"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": f"{_SCHEMA_REF}{schema}"}},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as cursor for the next page; null on the last page.",
            },
            "has_more": {"type": "boolean", "description": "Whether another page follows."},
        },
    }


def _security(endpoint: str, method: str) -> list[dict[str, list[str]]]:
    """Who may call an operation, from its view's decorators (the scope is x-required-scope)."""
    session: dict[str, list[str]] = {"session": []}
    if method != "get":
        session["csrf"] = []
    if endpoint in ADMIN_ONLY_ENDPOINTS:
        return [session]
    return [{"bearer": []}, session]


def _operation(
    method: str,
    view: str,
    tag: str,
    summary: str,
    description: str,
    success: dict[str, Any],
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    endpoint = f"{BLUEPRINT}.{view}"
    security = _security(endpoint, method)
    who = (
        "Owners and admins, signed in (an API key gets 403 admin_only)."
        if endpoint in ADMIN_ONLY_ENDPOINTS
        else f"API keys with the {REQUIRED_SCOPES[endpoint]} scope, or any member signed in."
    )
    statuses = {400, 401, 403, 405, 422, 429, 500, 503, *errors}
    if body is not None:
        statuses |= {413}
    if method == "post":
        statuses |= {409}
    operation: dict[str, Any] = {
        "operationId": view,
        "tags": [tag],
        "summary": summary,
        "description": f"{description}\n\n{who}",
        "security": security,
        **({"x-required-scope": REQUIRED_SCOPES[endpoint]} if endpoint in REQUIRED_SCOPES else {}),
        "parameters": list(parameters or []),
        "responses": {
            **success,
            **{str(status): _ref("responses", f"E{status}") for status in sorted(statuses)},
        },
    }
    if method == "post":
        operation["parameters"].append(_ref("parameters", "IdempotencyKey"))
    if not operation["parameters"]:
        del operation["parameters"]
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": f"{_SCHEMA_REF}{body}"}}},
        }
    return operation


_PAGING = [_ref("parameters", "Limit"), _ref("parameters", "Cursor")]


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "string", "maxLength": 32},
    }


def _created(schema: str, description: str = "Created.") -> dict[str, Any]:
    return {"201": _answer(description, schema, "Location", REPLAYED)}


def _resource(
    name: str, tag: str, patch_note: str, extra_params: list[dict[str, Any]]
) -> dict[str, Any]:
    """The five operations of workspaces and records."""
    schema = name.capitalize()
    plural = f"{name}s"
    deleted = {"204": _answer("Deleted.", None)}
    return {
        f"/{plural}": {
            "get": _operation(
                "get",
                f"list_{plural}",
                tag,
                f"List {plural}",
                f"The account's {plural}, oldest first, a page at a time.",
                {"200": _answer("A page.", _list_of(schema))},
                parameters=[*_PAGING, *extra_params],
                # A filter naming an object that is not the account's: 404.
                errors=(404,) if extra_params else (),
            ),
            "post": _operation(
                "post",
                f"create_{name}",
                tag,
                f"Create a {name}",
                f"Make a {name}; Location names it.",
                _created(schema),
                body=f"{schema}Input",
            ),
        },
        f"/{plural}/{{{name}_id}}": {
            "parameters": [_path_id(f"{name}_id", name)],
            "get": _operation(
                "get",
                f"get_{name}",
                tag,
                f"Show a {name}",
                f"One {name} of the account.",
                {"200": _answer("Found.", schema)},
                errors=(404,),
            ),
            "patch": _operation(
                "patch",
                f"update_{name}",
                tag,
                f"Change a {name}",
                f"Change the fields sent; the others stay as they are.{patch_note}",
                {"200": _answer("Changed.", schema)},
                body=f"{schema}Patch",
                errors=(404,),
            ),
            "delete": _operation(
                "delete",
                f"delete_{name}",
                tag,
                f"Delete a {name}",
                f"Delete the {name}.",
                deleted,
                errors=(404,),
            ),
        },
    }


TAGS = [
    {"name": "Account", "description": "The account the caller acts on."},
    {"name": "Workspaces", "description": "An account's workspaces; each holds records."},
    {"name": "Records", "description": "Records: a title and a JSON object, in a workspace."},
    {
        "name": "API keys",
        "description": "The account's keys: scopes, expiry, roll. Managed by owners and admins.",
    },
    {"name": "Members", "description": "Who belongs to the account, with which role."},
    {"name": "Invitations", "description": "Invitations to join the account, sent by mail."},
    {"name": "Audit log", "description": "The account's security events."},
    {"name": "Meta", "description": "About this API."},
]


def _key_paths() -> dict[str, Any]:
    key_id = _path_id("key_id", "key")
    return {
        "/api_keys": {
            "get": _operation(
                "get",
                "list_api_keys",
                "API keys",
                "List keys",
                "The account's keys, oldest first; never their secrets.",
                {"200": _answer("A page.", _list_of("ApiKey"))},
                parameters=_PAGING,
            ),
            "post": _operation(
                "post",
                "create_api_key",
                "API keys",
                "Create a key",
                "Make a key with a name, scopes (all when left out) and an optional expiry. "
                "The answer holds the full key, this once.",
                _created("NewApiKey", "Created; the full key is in `key`, this once."),
                body="ApiKeyInput",
            ),
        },
        "/api_keys/{key_id}": {
            "parameters": [key_id],
            "get": _operation(
                "get",
                "get_api_key",
                "API keys",
                "Show a key",
                "One key of the account; never its secret.",
                {"200": _answer("Found.", "ApiKey")},
                errors=(404,),
            ),
            "delete": _operation(
                "delete",
                "delete_api_key",
                "API keys",
                "Revoke a key",
                "Delete a key: it fails from the very next request.",
                {"204": _answer("Revoked.", None)},
                errors=(404,),
            ),
        },
        "/api_keys/{key_id}/roll": {
            "parameters": [key_id],
            "post": _operation(
                "post",
                "roll_api_key",
                "API keys",
                "Roll a key",
                "Make a new key with the same name and scopes (and lifetime); the old one keeps "
                "working expires_in_hours more. An expired key cannot be rolled (422).",
                _created("NewApiKey", "The new key; the full key is in `key`, this once."),
                body="ApiKeyRoll",
                body_required=False,
                errors=(404,),
            ),
        },
    }


def _member_paths() -> dict[str, Any]:
    return {
        "/members": {
            "get": _operation(
                "get",
                "list_members",
                "Members",
                "List members",
                "The account's members, oldest first.",
                {"200": _answer("A page.", _list_of("Member"))},
                parameters=_PAGING,
            )
        },
        "/members/{member_id}": {
            "parameters": [_path_id("member_id", "membership")],
            "patch": _operation(
                "patch",
                "update_member",
                "Members",
                "Change a member's role",
                "Give a member another role. Only owners make or unmake owners; an account "
                "keeps at least one owner.",
                {"200": _answer("Changed.", "Member")},
                body="MemberPatch",
                errors=(404,),
            ),
            "delete": _operation(
                "delete",
                "delete_member",
                "Members",
                "Remove a member",
                "Take a person out of the account; their sessions lose it at once.",
                {"204": _answer("Removed.", None)},
                errors=(404,),
            ),
        },
        "/invitations": {
            "get": _operation(
                "get",
                "list_invitations",
                "Invitations",
                "List pending invitations",
                "Invitations not yet accepted, withdrawn or expired, oldest first.",
                {"200": _answer("A page.", _list_of("Invitation"))},
                parameters=_PAGING,
            ),
            "post": _operation(
                "post",
                "create_invitation",
                "Invitations",
                "Invite someone",
                "Send an email address an invitation with a role; the link goes out by mail.",
                _created("Invitation", "Sent."),
                body="InvitationInput",
            ),
        },
        "/invitations/{invitation_id}": {
            "parameters": [_path_id("invitation_id", "invitation")],
            "get": _operation(
                "get",
                "get_invitation",
                "Invitations",
                "Show a pending invitation",
                "One invitation that can still be accepted.",
                {"200": _answer("Found.", "Invitation")},
                errors=(404,),
            ),
            "delete": _operation(
                "delete",
                "delete_invitation",
                "Invitations",
                "Withdraw an invitation",
                "Its link stops working at once.",
                {"204": _answer("Withdrawn.", None)},
                errors=(404,),
            ),
        },
        "/audit_events": {
            "get": _operation(
                "get",
                "list_audit_events",
                "Audit log",
                "List security events",
                "The account's security events, oldest first; filter by kind, person and time.",
                {"200": _answer("A page.", _list_of("AuditEvent"))},
                parameters=[
                    *_PAGING,
                    _query("kind", "Only events of this kind.", {"type": "string"}),
                    _query("user_id", "Only events about this person.", {"type": "string"}),
                    _query("since", "Only events at or after this time.", _TIME),
                    _query("until", "Only events before this time.", _TIME),
                ],
            )
        },
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def document() -> dict[str, Any]:
    """Build the OpenAPI document."""
    workspace_filter = _query(
        "workspace_id", "Only the records of this workspace.", {"type": "string"}
    )
    paths: dict[str, Any] = {
        "/account": {
            "get": _operation(
                "get",
                "get_account",
                "Account",
                "Show the account",
                "The account the caller acts on, and how the caller is signed in.",
                {"200": _answer("The account.", "Account")},
            )
        },
        **_resource("workspace", "Workspaces", "", []),
        **_resource(
            "record", "Records", " A new workspace_id moves the record.", [workspace_filter]
        ),
        **_key_paths(),
        **_member_paths(),
        "/openapi.json": {
            "get": {
                "operationId": "openapi_document",
                "tags": ["Meta"],
                "summary": "This document",
                "description": "The OpenAPI 3.1 description of this API; no credentials needed.",
                "security": [],
                "responses": {
                    "200": _answer("The OpenAPI document.", {"type": "object"}),
                    **{str(s): _ref("responses", f"E{s}") for s in (405, 422, 429, 500, 503)},
                },
            }
        },
    }
    # An account keeps at least one workspace.
    paths["/workspaces/{workspace_id}"]["delete"]["responses"]["409"] = _ref("responses", "E409")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Terminus Hub API",
            "version": "1",
            "summary": "Workspaces, records, API keys and members of a Terminus Hub account.",
            "description": "Account-scoped API. Authenticate with `Authorization: Bearer thub_…` "
            "(a key with the scopes each operation names), or with the web app's session "
            "cookie plus `X-CSRFToken` on changes. Every answer carries X-Request-Id and "
            "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset. POSTs take an "
            "Idempotency-Key.",
            "contact": {"name": "The operators of this Terminus Hub installation"},
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "servers": [{"url": "/api/v1", "description": "This Terminus Hub."}],
        "security": [{"bearer": []}, {"session": []}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "thub_ + 32 base62",
                    "description": "An API key. Each operation names the scope it needs.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-thub_session",
                    "description": "The web app's session cookie (thub_session when the "
                    "installation serves plain HTTP, as in development).",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "With a session, changes (POST, PATCH, DELETE) also send the "
                    'CSRF token of the page (<meta name="csrf-token">).',
                },
            },
            "schemas": SCHEMAS,
            "headers": HEADERS,
            "parameters": PARAMETERS,
            "responses": {
                f"E{status}": _answer(text, "Error", *headers)
                for status, (text, headers) in ERRORS.items()
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    """Serve the OpenAPI document (no authentication needed)."""
    return document()
