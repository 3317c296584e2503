"""Per-address rate limits of the sign-in pages, read from settings at request time."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from terminus_hub.extensions import limiter


def _setting(key: str) -> Callable[[], str]:
    return lambda: str(current_app.config[key])


# Both sign-in steps draw on one budget per client address.
sign_in = limiter.shared_limit(
    _setting("TERMINUS_SIGN_IN_RATE_LIMIT"), scope="sign_in", methods=["POST"]
)
sign_up = limiter.limit(_setting("TERMINUS_SIGN_UP_RATE_LIMIT"), methods=["POST"])
recovery = limiter.limit(_setting("TERMINUS_RECOVERY_RATE_LIMIT"), methods=["POST"])
links = limiter.limit(_setting("TERMINUS_LINK_RATE_LIMIT"), methods=["POST"])
sso = limiter.limit(_setting("TERMINUS_SSO_RATE_LIMIT"))
