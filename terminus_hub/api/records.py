"""Records in the caller's account's workspaces."""

from __future__ import annotations

from typing import Any

from flask import request
from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from terminus_hub.api import validation
from terminus_hub.api.auth import current_caller
from terminus_hub.api.auth import scope
from terminus_hub.api.blueprint import bp
from terminus_hub.api.idempotency import idempotent
from terminus_hub.api.pagination import paginate
from terminus_hub.api.scoping import in_account
from terminus_hub.api.validation import PAGING
from terminus_hub.api.validation import takes_query
from terminus_hub.api_errors import validation_error
from terminus_hub.extensions import db
from terminus_hub.models import Record
from terminus_hub.models import Workspace
from terminus_hub.models import utcnow

TITLE_MAX = 200
NO_SUCH_WORKSPACE = "No such workspace in this account."


def serialize(record: Record) -> dict[str, Any]:
    """Return a record's public fields."""
    return {
        "id": record.id,
        "workspace_id": record.workspace_id,
        "title": record.title,
        "data": record.data,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def _workspace_field(value: Any) -> tuple[Workspace | None, str | None]:
    """Return the caller's workspace with this id, or what is wrong with the value."""
    if not isinstance(value, str) or not value:
        return None, validation.REQUIRED
    workspace = db.session.scalar(
        select(Workspace).where(
            Workspace.id == value, Workspace.account_id == current_caller().account.id
        )
    )
    return (workspace, None) if workspace else (None, NO_SUCH_WORKSPACE)


def _commit_in_workspace() -> None:
    """Commit; a workspace deleted meanwhile is a bad workspace_id, not a server error."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise validation_error({"workspace_id": NO_SUCH_WORKSPACE}) from None


@bp.get("/records")
@takes_query(*PAGING, "workspace_id")
@scope("records:read")
def list_records() -> dict[str, Any]:
    """List records, oldest first, optionally of one workspace."""
    query = select(Record).where(Record.account_id == current_caller().account.id)
    workspace_id = request.args.get("workspace_id")
    if workspace_id is not None:
        query = query.where(Record.workspace_id == in_account(Workspace, workspace_id).id)
    return paginate(query, Record, serialize)


@bp.post("/records")
@scope("records:write")
@idempotent
def create_record() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a record in one of the account's workspaces."""
    body = validation.json_object({"workspace_id", "title", "data"})
    workspace, workspace_problem = _workspace_field(body.get("workspace_id"))
    validation.check(
        {
            "workspace_id": workspace_problem,
            "title": validation.text(body.get("title"), max_length=TITLE_MAX),
            "data": validation.json_data(body.get("data", {})),
        }
    )
    assert workspace is not None  # validation.check refused a missing one
    now = utcnow()
    record = Record(
        account_id=workspace.account_id,
        workspace_id=workspace.id,
        title=body["title"].strip(),
        data=body.get("data", {}),
        created_at=now,
        updated_at=now,
    )
    db.session.add(record)
    _commit_in_workspace()
    return serialize(record), 201, {"Location": url_for("api.get_record", record_id=record.id)}


@bp.get("/records/<record_id>")
@scope("records:read")
def get_record(record_id: str) -> dict[str, Any]:
    """Show one record."""
    return serialize(in_account(Record, record_id))


@bp.patch("/records/<record_id>")
@scope("records:write")
def update_record(record_id: str) -> dict[str, Any]:
    """Change a record's title, data or workspace."""
    record = in_account(Record, record_id)
    body = validation.json_object({"workspace_id", "title", "data"})
    workspace, workspace_problem = (
        _workspace_field(body["workspace_id"]) if "workspace_id" in body else (None, None)
    )
    validation.check(
        {
            "workspace_id": workspace_problem,
            "title": validation.text(body["title"], max_length=TITLE_MAX)
            if "title" in body
            else None,
            "data": validation.json_data(body["data"]) if "data" in body else None,
        }
    )
    if workspace is not None:
        record.workspace_id = workspace.id
    if "title" in body:
        record.title = body["title"].strip()
    if "data" in body:
        record.data = body["data"]
    record.updated_at = utcnow()
    _commit_in_workspace()
    return serialize(record)


@bp.delete("/records/<record_id>")
@scope("records:write")
def delete_record(record_id: str) -> Response:
    """Delete a record."""
    db.session.delete(in_account(Record, record_id))
    db.session.commit()
    return Response(status=204)
