"""GET /account: which account the caller acts on, and how."""

from __future__ import annotations

from typing import Any

from terminus_hub.api.auth import current_caller
from terminus_hub.api.auth import scope
from terminus_hub.api.blueprint import bp


@bp.get("/account")
@scope("account:read")
def get_account() -> dict[str, Any]:
    """Describe the caller's account."""
    caller = current_caller()
    account = caller.account
    return {"id": account.id, "slug": account.slug, "name": account.name, "auth": caller.auth}
