"""Workspaces of the caller's account."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from werkzeug.wrappers import Response

from terminus_hub.api import validation
from terminus_hub.api.auth import current_caller
from terminus_hub.api.blueprint import bp
from terminus_hub.api.pagination import paginate
from terminus_hub.api.scoping import in_account
from terminus_hub.extensions import db
from terminus_hub.models import Workspace

NAME_MAX = 120


def serialize(workspace: Workspace) -> dict[str, Any]:
    """Return a workspace's public fields."""
    return {
        "id": workspace.id,
        "name": workspace.name,
        "created_at": workspace.created_at.isoformat(),
    }


@bp.get("/workspaces")
def list_workspaces() -> dict[str, Any]:
    """List the account's workspaces, oldest first."""
    query = select(Workspace).where(Workspace.account_id == current_caller().account.id)
    return paginate(query, Workspace, serialize)


@bp.post("/workspaces")
def create_workspace() -> tuple[dict[str, Any], int]:
    """Create a workspace."""
    body = validation.json_object({"name"})
    validation.check({"name": validation.text(body.get("name"), max_length=NAME_MAX)})
    workspace = Workspace(account_id=current_caller().account.id, name=body["name"].strip())
    db.session.add(workspace)
    db.session.commit()
    return serialize(workspace), 201


@bp.get("/workspaces/<workspace_id>")
def get_workspace(workspace_id: str) -> dict[str, Any]:
    """Show one workspace."""
    return serialize(in_account(Workspace, workspace_id))


@bp.patch("/workspaces/<workspace_id>")
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
def delete_workspace(workspace_id: str) -> Response:
    """Delete a workspace and its records."""
    db.session.delete(in_account(Workspace, workspace_id))
    db.session.commit()
    return Response(status=204)
