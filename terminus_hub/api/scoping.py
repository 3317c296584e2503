"""Every object is reached only through the caller's account."""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy import select

from terminus_hub.api.auth import current_caller
from terminus_hub.api_errors import not_found
from terminus_hub.extensions import Base
from terminus_hub.extensions import db

M = TypeVar("M", bound=Base)


def in_account(model: type[M], object_id: str) -> M:
    """Return the caller's account's object with this id; other accounts' ids are not found."""
    query: Select[Any] = select(model)
    row: M | None = db.session.scalar(
        query.where(
            model.id == object_id,  # type: ignore[attr-defined]
            model.account_id == current_caller().account.id,  # type: ignore[attr-defined]
        )
    )
    if row is None:
        raise not_found()
    return row
