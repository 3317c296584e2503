"""Terminus Hub: email-first sign-in, SAML single sign-on and account-scoped API keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask

from terminus_hub import accounts
from terminus_hub import api
from terminus_hub import auth
from terminus_hub import cli
from terminus_hub import errors
from terminus_hub import guards
from terminus_hub import headers
from terminus_hub import health
from terminus_hub import logs
from terminus_hub import metrics
from terminus_hub import models
from terminus_hub import outbox
from terminus_hub import settings
from terminus_hub import sso
from terminus_hub import templating
from terminus_hub import user_sessions
from terminus_hub.extensions import csrf
from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.extensions import mail as mail_extension
from terminus_hub.extensions import migrate
from terminus_hub.sso import credentials


class TerminusHub(Flask):
    """Flask, with each hook's sync check made once instead of on every request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The callables known to be plain functions; weak, so one made per request (a bound
        # method, after_this_request) leaves with it.
        self._sync: WeakKeyDictionary[Callable[..., Any], bool] = WeakKeyDictionary()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # Flask asks inspect whether each hook and view is a coroutine function on every call
        # (about 18 times for an API request); the answer never changes.
        try:
            if self._sync.get(func):
                return func
        except TypeError:  # a callable that cannot be weakly referenced
            return super().ensure_sync(func)
        made = super().ensure_sync(func)
        if made is func:
            self._sync[func] = True
        return made


def create_app(config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, error pages, commands, headers."""
    app = TerminusHub(__name__, instance_path=instance_path, instance_relative_config=True)
    settings.load(app, config)
    app.logger.setLevel(app.config["LOG_LEVEL"])
    # Flask-Limiter reports its storage falling back and recovering on its own logger, which
    # has only a NullHandler: logs.init_app sends those lines where the app's own log goes.
    logging.getLogger("flask-limiter").setLevel(logging.INFO)
    logs.init_app(app)
    metrics.init_app(app)

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=settings.migrations_directory(),
        render_item=models.render_migration_item,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    mail_extension.init_app(app)
    user_sessions.init_app(app)
    credentials.init_app(app)
    outbox.init_app(app)
    templating.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(health.bp)
    guards.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    cli.init_app(app)
    return app
