"""Workspaces of the caller's account."""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import func
from sqlalchemy import select
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
from terminus_hub.api_errors import ApiError
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Workspace

NAME_MAX = 120
LAST_WORKSPACE = "An account keeps at least one workspace: create another before deleting this one."


def serialize(workspace: Workspace) -> dict[str, Any]:
    """Return a workspace's public fields."""
    return {
        "id": workspace.id,
        "name": workspace.name,
        "created_at": workspace.created_at.isoformat(),
    }


@bp.get("/workspaces")
@takes_query(*PAGING)
@scope("workspaces:read")
def list_workspaces() -> dict[str, Any]:
    """List the account's workspaces, oldest first."""
    query = select(Workspace).where(Workspace.account_id == current_caller().account.id)
    return paginate(query, Workspace, serialize)


@bp.post("/workspaces")
@scope("workspaces:write")
@idempotent
def create_workspace() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a workspace; Location names it."""
    body = validation.json_object({"name"})
    validation.check({"name": validation.text(body.get("name"), max_length=NAME_MAX)})
    workspace = Workspace(account_id=current_caller().account.id, name=body["name"].strip())
    db.session.add(workspace)
    db.session.commit()
    location = url_for("api.get_workspace", workspace_id=workspace.id)
    return serialize(workspace), 201, {"Location": location}


@bp.get("/workspaces/<workspace_id>")
@scope("workspaces:read")
def get_workspace(workspace_id: str) -> dict[str, Any]:
    """Show one workspace."""
    return serialize(in_account(Workspace, workspace_id))


@bp.patch("/workspaces/<workspace_id>")
@scope("workspaces:write")
def update_workspace(workspace_id: str) -> dict[str, Any]:
    """Rename a workspace."""
    workspace = in_account(Workspace, workspace_id)
    body = validation.json_object({"name"})
    if "name" in body:
        validation.check({"name": validation.text(body["name"], max_length=NAME_MAX)})
        workspace.name = body["name"].strip()
    db.session.commit()
    return serialize(workspace)


@bp.delete("/workspaces/<workspace_id>")
@scope("workspaces:write")
def delete_workspace(workspace_id: str) -> Response:
    """Delete a workspace and its records; an account keeps at least one workspace."""
    account_id = current_caller().account.id
    # The account's row is taken first: two deletes of its last two workspaces at once
    # happen one after the other, and the second sees that only one is left.
    db.session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
    workspace = in_account(Workspace, workspace_id)
    left = db.session.scalar(
        select(func.count()).select_from(Workspace).where(Workspace.account_id == account_id)
    )
    if left == 1:
        raise ApiError("conflict", LAST_WORKSPACE, 409)
    db.session.delete(workspace)
    db.session.commit()
    return Response(status=204)
