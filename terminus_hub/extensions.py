"""Unbound extension singletons, bound to the app in create_app."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any
from typing import cast

from flask import Flask
from flask import request
from flask_limiter import Limiter
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy import event
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine import Engine
from sqlalchemy.engine import Result
from sqlalchemy.orm import DeclarativeBase

from terminus_hub.smtp import Mail

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def affected(result: Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE touched (execute() is typed as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Limiter(Limiter):
    """Flask-Limiter that takes each app's settings, even when create_app runs again, and
    says when its storage goes down or comes back (whichever hook noticed)."""

    # Called with no argument when the storage is found down or back (key_state sets it).
    on_storage_change: Callable[[], None] | None = None

    @property
    def _storage_dead(self) -> bool:
        return bool(self.__dict__.get("_dead", False))

    @_storage_dead.setter
    def _storage_dead(self, dead: bool) -> None:
        changed = bool(dead) != bool(self.__dict__.get("_dead", False))
        self.__dict__["_dead"] = dead
        if changed and self.on_storage_change is not None:
            self.on_storage_change()

    def init_app(self, app: Flask) -> None:
        # Flask-Limiter keeps the first app's choices (``x = x or config[...]``) on the
        # instance; with one module-level limiter, a second app (tests, a second instance in
        # one process) would silently inherit its key prefix, strategy and "storage is down".
        self.enabled = True
        self._key_prefix = ""
        self._strategy = None
        self._retry_after = None
        self._in_memory_fallback_enabled = None
        self._storage_options = {}
        self._storage_dead = False
        super().init_app(app)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def _log_breach(limit: RequestLimit) -> None:
    # A security event (OWASP logging vocabulary): who hit which limit, never what they sent.
    logging.getLogger("terminus_hub.security").warning(
        "excess_rate_limit_exceeded limit=%r endpoint=%s address=%s",
        str(limit.limit),
        request.endpoint,
        request.remote_addr,
    )


limiter = _Limiter(key_func=get_remote_address, on_breach=_log_breach)
mail = Mail()


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """Turn on foreign keys for SQLite so deletes behave as on PostgreSQL."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
