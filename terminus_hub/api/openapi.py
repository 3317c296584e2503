"""GET /openapi.json: the OpenAPI 3.1 description of this API, kept beside the resources."""

from __future__ import annotations

from typing import Any

from terminus_hub.api.blueprint import bp
from terminus_hub.api.pagination import DEFAULT_LIMIT
from terminus_hub.api.pagination import MAX_LIMIT
from terminus_hub.api.records import TITLE_MAX
from terminus_hub.api.validation import MAX_DATA_BYTES
from terminus_hub.api.workspaces import NAME_MAX
from terminus_hub.core.keyring import EXPIRY_DAYS_MAX
from terminus_hub.core.keyring import GRACE_HOURS_DEFAULT
from terminus_hub.core.keyring import GRACE_HOURS_MAX
from terminus_hub.core.keyring import SCOPES

_ERROR_CODES = [
    "bad_request",
    "unauthorized",
    "invalid_token",
    "admin_only",
    "insufficient_scope",
    "second_factor_required",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "idempotency_conflict",
    "reauthentication_required",
    "validation_error",
    "rate_limited",
    "internal_error",
    "unavailable",
]
_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "string", "maxLength": 32}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": _ERROR_CODES},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
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
            "auth": {"type": "string", "enum": ["api_key", "session"]},
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
            "scopes": {"type": "array", "items": {"$ref": "#/components/schemas/Scope"}},
            "created_at": _TIME,
            "last_used_at": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "May lag by up to a minute.",
            },
            "expires_at": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "When the key stops working; null: never.",
            },
        },
    },
    "Scope": {
        "type": "string",
        "description": "What a key may do. Known values: "
        + ", ".join(SCOPES)
        + ". More may come: accept values you do not know.",
        "examples": list(SCOPES),
    },
    "NewApiKey": {
        "allOf": [
            {"$ref": "#/components/schemas/ApiKey"},
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
    "Member": {
        "type": "object",
        "required": ["id", "user_id", "email", "name", "role", "created_at"],
        "properties": {
            "id": _ID,
            "user_id": _ID,
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["owner", "admin", "member"]},
            "created_at": _TIME,
        },
    },
    "MemberPatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["role"],
        "properties": {"role": {"type": "string", "enum": ["owner", "admin", "member"]}},
    },
    "Invitation": {
        "type": "object",
        "required": ["id", "email", "role", "created_at", "expires_at"],
        "properties": {
            "id": _ID,
            "email": {"type": "string"},
            "role": {"type": "string", "enum": ["owner", "admin", "member"]},
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
            "role": {"type": "string", "enum": ["owner", "admin", "member"]},
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "created_at", "kind", "account_id", "user_id", "actor"],
        "properties": {
            "id": _ID,
            "created_at": _TIME,
            "kind": {"type": "string"},
            "account_id": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "actor": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": ["user", "api_key", "operator", "anonymous"],
                    },
                    "id": {"type": ["string", "null"]},
                },
            },
            "ip_address": {"type": "string"},
            "user_agent": {"type": "string"},
            "request_id": {
                "type": ["string", "null"],
                "description": "The X-Request-ID of the request that made it (null: a command).",
            },
            "detail": {"type": "object"},
        },
    },
    "ApiKeyInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
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
}


def _list_of(schema: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "next_cursor", "has_more"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}},
            "next_cursor": {"type": ["string", "null"]},
            "has_more": {"type": "boolean"},
        },
    }


def _json(schema: dict[str, Any] | str, description: str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


# Any request can be malformed (NUL characters, a body that is not a JSON object).
_COMMON = (400, 401, 429, 503)
_BODY = (422,)
_ID_PARAM = {"in": "path", "required": True, "schema": {"type": "string"}}
_PAGE_PARAMS = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
]


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _created(schema: str, description: str = "Created.") -> dict[str, Any]:
    location = {"description": "The new object's address.", "schema": {"type": "string"}}
    return {**_json(schema, description), "headers": {"Location": location}}


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _resource(
    name: str, schema: str, patch: str, *, extra_params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    id_param = {"name": f"{name}_id", **_ID_PARAM}
    deleted = {"204": {"description": "Deleted."}}
    return {
        f"/{name}s": {
            "get": _op(
                f"List {name}s, oldest first",
                {"200": _json(_list_of(schema), "A page."), **_errors(*_COMMON, 403, 404, 422)},
                parameters=[*_PAGE_PARAMS, *(extra_params or [])],
            ),
            "post": _op(
                f"Create a {name}",
                {"201": _created(schema), **_errors(*_COMMON, *_BODY, 403)},
                requestBody=_body(f"{schema}Input"),
            ),
        },
        f"/{name}s/{{{name}_id}}": {
            "parameters": [id_param],
            "get": _op(
                f"Show a {name}", {"200": _json(schema, "Found."), **_errors(*_COMMON, 403, 404)}
            ),
            "patch": _op(
                f"Change a {name}",
                {"200": _json(schema, "Changed."), **_errors(*_COMMON, *_BODY, 403, 404)},
                requestBody=_body(patch),
            ),
            "delete": _op(f"Delete a {name}", {**deleted, **_errors(*_COMMON, 403, 404)}),
        },
    }


def document() -> dict[str, Any]:
    """Build the OpenAPI document."""
    workspace_filter = {"name": "workspace_id", "in": "query", "schema": {"type": "string"}}
    key_id = {"name": "key_id", **_ID_PARAM}
    paths: dict[str, Any] = {
        "/account": {
            "get": _op(
                "The account the caller acts on",
                {"200": _json("Account", "The account."), **_errors(*_COMMON, 403)},
            )
        },
        **_resource("workspace", "Workspace", "WorkspacePatch"),
        **_resource("record", "Record", "RecordPatch", extra_params=[workspace_filter]),
        "/api_keys": {
            "get": _op(
                "List the account's keys, oldest first (never the secrets)",
                {"200": _json(_list_of("ApiKey"), "The keys."), **_errors(*_COMMON, 403, 422)},
                parameters=_PAGE_PARAMS,
            ),
            "post": _op(
                "Create a key (owner or admin session only)",
                {
                    "201": _created("NewApiKey", "Created; the full key is in `key`, this once."),
                    **_errors(*_COMMON, *_BODY, 403),
                },
                requestBody=_body("ApiKeyInput"),
            ),
        },
        "/api_keys/{key_id}/roll": {
            "parameters": [key_id],
            "post": _op(
                "Roll a key (owner or admin session only): a new key with the same name and "
                "scopes; the old one keeps working `expires_in_hours` more",
                {
                    "201": _created("NewApiKey", "The new key; the full key is in `key`, once."),
                    **_errors(*_COMMON, *_BODY, 403, 404),
                },
                requestBody={**_body("ApiKeyRoll"), "required": False},
            ),
        },
        "/api_keys/{key_id}": {
            "parameters": [key_id],
            "get": _op(
                "Show a key (never its secret)",
                {"200": _json("ApiKey", "Found."), **_errors(*_COMMON, 403, 404)},
            ),
            "delete": _op(
                "Revoke a key (owner or admin session only); it fails from the next request",
                {"204": {"description": "Revoked."}, **_errors(*_COMMON, 403, 404)},
            ),
        },
        "/members": {
            "get": _op(
                "List members (owner or admin session only)",
                {"200": _json(_list_of("Member"), "The members."), **_errors(*_COMMON, 403, 422)},
                parameters=_PAGE_PARAMS,
            )
        },
        "/members/{member_id}": {
            "parameters": [{"name": "member_id", **_ID_PARAM}],
            "patch": _op(
                "Change a member's role (owner or admin session only)",
                {"200": _json("Member", "Changed."), **_errors(*_COMMON, *_BODY, 403, 404)},
                requestBody=_body("MemberPatch"),
            ),
            "delete": _op(
                "Remove a member (owner or admin session only)",
                {"204": {"description": "Removed."}, **_errors(*_COMMON, 403, 404)},
            ),
        },
        "/invitations": {
            "get": _op(
                "List pending invitations (owner or admin session only)",
                {"200": _json(_list_of("Invitation"), "Pending."), **_errors(*_COMMON, 403, 422)},
                parameters=_PAGE_PARAMS,
            ),
            "post": _op(
                "Invite an email with a role (owner or admin session only)",
                {"201": _created("Invitation", "Sent."), **_errors(*_COMMON, *_BODY, 403)},
                requestBody=_body("InvitationInput"),
            ),
        },
        "/invitations/{invitation_id}": {
            "parameters": [{"name": "invitation_id", **_ID_PARAM}],
            "get": _op(
                "Show a pending invitation (owner or admin session only)",
                {"200": _json("Invitation", "Found."), **_errors(*_COMMON, 403, 404)},
            ),
            "delete": _op(
                "Withdraw an invitation (owner or admin session only)",
                {"204": {"description": "Withdrawn."}, **_errors(*_COMMON, 403, 404)},
            ),
        },
        "/audit_events": {
            "get": _op(
                "The account's security events, oldest first (owner or admin session only)",
                {"200": _json(_list_of("AuditEvent"), "A page."), **_errors(*_COMMON, 403, 422)},
                parameters=[
                    *_PAGE_PARAMS,
                    {"name": "kind", "in": "query", "schema": {"type": "string"}},
                    {"name": "user_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": _TIME},
                    {"name": "until", "in": "query", "schema": _TIME},
                ],
            )
        },
        "/openapi.json": {
            "get": _op(
                "This document",
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {}},
                    }
                },
                security=[],
            )
        },
    }
    # An account keeps at least one workspace.
    paths["/workspaces/{workspace_id}"]["delete"]["responses"].update(_errors(409))
    descriptions = {
        400: "Malformed: the body is not a JSON object, or the request holds NUL characters "
        "(`bad_request`).",
        401: "No credentials (`unauthorized`), or a malformed, unknown, revoked or expired key "
        "(`invalid_token`).",
        403: "An API key on an admin-only endpoint (`admin_only`); a key without the scope "
        "the operation needs (`insufficient_scope`); a member without the role, or a session "
        "call without X-CSRFToken (`forbidden`).",
        404: "No such object in this account (`not_found`).",
        409: "The change would break a rule of the account (`conflict`), such as deleting its "
        "last workspace.",
        422: "Fields are not valid (`validation_error`, with `fields`).",
        429: "Rate limited (`rate_limited`); see Retry-After.",
        503: "A backing service is down (`unavailable`).",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Terminus Hub API",
            "version": "1",
            "description": "Account-scoped API. Authenticate with `Authorization: Bearer thub_…`. "
            "Responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "thub_ + 32 base62"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-thub_session",
                    "description": "The web app's session; POST/PATCH/DELETE need X-CSRFToken.",
                },
            },
            "schemas": SCHEMAS,
            "responses": {
                f"E{status}": _json("Error", text) for status, text in descriptions.items()
            },
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    """Serve the OpenAPI document (no authentication needed)."""
    return document()
