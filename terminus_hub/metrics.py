"""Prometheus metrics, served at GET /metrics to a scraper bearing TERMINUS_METRICS_TOKEN.

Under gunicorn every worker counts in its own files in ``PROMETHEUS_MULTIPROC_DIR``
(gunicorn.conf.py sets it, empties it at start and drops a dead worker's files), and a scrape
of any worker adds them all up. Without that variable (``flask run``, tests) the counts are
the process's own.

Labels take a handful of values each: outcomes, status codes, endpoint names. Never an
email, a key, an account or a path with an id in it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import g
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from terminus_hub.extensions import limiter
from terminus_hub.health import bears_secret
from terminus_hub.health import outbox_counts

bp = Blueprint("metrics", __name__)

SIGN_INS = Counter(
    "terminus_sign_ins_total",
    "Sign-in attempts by method (password, sso) and outcome.",
    ["method", "outcome"],
)
LOCKOUTS = Counter("terminus_lockouts_total", "People locked after too many failed sign-ins.")
API_REQUESTS = Counter(
    "terminus_api_requests_total",
    "API requests by status code and kind of caller (api_key, session, none).",
    ["status", "auth"],
)
KEY_CHECK_SECONDS = Histogram(
    "terminus_api_key_check_seconds",
    "Time to find who an API request's bearer key belongs to.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
KEY_CHECKS = Counter(
    "terminus_api_key_checks_total",
    "Bearer key checks by where the key was found: this worker's cache, the database, or the "
    "database because Redis (which tells instances about revoked keys) is unreachable.",
    ["source"],
)
REQUEST_SECONDS = Histogram(
    "terminus_request_duration_seconds",
    "Time to answer a request, by endpoint (a route's name, never its path).",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MAIL_FAILURES = Counter(
    "terminus_mail_delivery_failures_total",
    "Failed mail deliveries: retried later (final=false) or given up (final=true).",
    ["final"],
)
RATE_LIMIT_FALLBACKS = Counter(
    "terminus_rate_limit_storage_fallbacks_total",
    "Times the rate-limit storage was unreachable and counting fell back to process memory.",
)

# The line Flask-Limiter (and the API's own counter, api/rate_limit.py) logs on falling back.
_FALLBACK_LINE = "Rate limit storage unreachable"


class _CountFallbacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith(_FALLBACK_LINE):
            RATE_LIMIT_FALLBACKS.inc()
        return True


class _Outbox(Collector):
    """The outbox's mail by state, read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "terminus_outbox_messages",
            "Mail in the outbox: pending, stale (pending over 15 minutes) and given up.",
            labels=["state"],
        )
        try:
            counts = outbox_counts()
        except SQLAlchemyError:
            return  # the database is down: /healthz says so; the rest still scrapes
        for state in ("pending", "stale", "failed"):
            family.add_metric([state], counts[state])
        yield family


def init_app(app: Flask) -> None:
    """Time every request, count API answers, and count rate-limit storage fallbacks."""
    limiter_log = logging.getLogger("flask-limiter")
    if not any(isinstance(f, _CountFallbacks) for f in limiter_log.filters):
        limiter_log.addFilter(_CountFallbacks())
    app.after_request(_observe)
    app.register_blueprint(bp)


def _observe(response: Response) -> Response:
    started = g.get("request_started")
    if started is not None:
        endpoint = request.endpoint or "unmatched"
        REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
    if request.blueprint == "api":
        caller = g.get("api_caller")
        auth = caller.auth if caller is not None else "none"
        API_REQUESTS.labels(str(response.status_code), auth).inc()
    return response


def _scraper_allowed() -> bool:
    if not current_app.config["TERMINUS_METRICS_TOKEN"]:
        raise NotFound()  # no token set: there is no metrics endpoint
    return bears_secret("TERMINUS_METRICS_TOKEN")


@bp.get("/metrics")
@limiter.exempt
def metrics() -> Response:
    """The metrics in Prometheus' text format; 401 without the scraper's token."""
    if not _scraper_allowed():
        denied = Response("Unauthorized\n", status=401, mimetype="text/plain")
        denied.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return denied
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry) + generate_latest(_outbox_registry())
    response = Response(body, mimetype=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def _outbox_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Outbox())
    return registry
