"""The Flask-Limiter and limits internals the API's one-round-trip rate limit relies on.

terminus_hub/api/rate_limit.py reads these private attributes (setup.cfg pins both packages to
the minor versions it was written against). When an upgrade renames or removes any of them,
this test says which, before anything subtler breaks.
"""

from __future__ import annotations

import inspect

import flask_limiter
import limits
import pytest
from flask import Flask
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from terminus_hub.extensions import limiter

LIMITER_ATTRIBUTES = (
    "_check_request_limit",  # the before-request hook the API swaps out
    "_headers_enabled",
    "_in_memory_fallback_enabled",
    "_key_prefix",
    "_limiter",  # the strategy object (replaced by OneTripMovingWindow on Redis)
    "_storage",
    "_storage_dead",  # the in-memory fallback switch
    "_swallow_errors",
)


def test_the_bound_limiter_has_every_private_attribute_the_api_reads(app: Flask) -> None:
    missing = [name for name in LIMITER_ATTRIBUTES if not hasattr(limiter, name)]

    assert missing == [], (
        f"Flask-Limiter {flask_limiter.__version__} lacks {missing}: "
        "terminus_hub/api/rate_limit.py must be updated before upgrading"
    )


def test_the_moving_window_and_redis_storage_keep_the_api_it_uses() -> None:
    hit = inspect.signature(MovingWindowRateLimiter.hit)
    stats = inspect.signature(MovingWindowRateLimiter.get_window_stats)

    assert list(hit.parameters)[:3] == ["self", "item", "identifiers"], limits.__version__
    assert "cost" in hit.parameters
    assert list(stats.parameters)[:3] == ["self", "item", "identifiers"]
    for name in ("prefixed_key", "get_connection", "base_exceptions"):
        assert hasattr(RedisStorage, name), f"limits {limits.__version__} RedisStorage.{name}"
    # An instance attribute, set from this constructor argument.
    assert "wrap_exceptions" in inspect.signature(RedisStorage.__init__).parameters


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_flask_limiters_header_hook_is_found_and_left_out_of_api_calls(app: Flask) -> None:
    from terminus_hub.api.rate_limit import LIMITER_HEADERS_HOOK

    assert LIMITER_HEADERS_HOOK is not None, flask_limiter.__version__
    hooks = app.after_request_funcs[None]
    assert not [hook for hook in hooks if getattr(hook, "func", None) is LIMITER_HEADERS_HOOK]
    wrapped = [hook for hook in hooks if getattr(hook, "__wrapped__", None) is not None]
    assert any(getattr(hook.__wrapped__, "func", None) is LIMITER_HEADERS_HOOK for hook in wrapped)
