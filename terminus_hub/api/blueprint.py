"""The api blueprint under /api/v1, its authentication and its rate limit hooks."""

from __future__ import annotations

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

from terminus_hub.api import auth
from terminus_hub.api import rate_limit
from terminus_hub.api import validation
from terminus_hub.extensions import csrf
from terminus_hub.extensions import limiter

bp = Blueprint(rate_limit.API_BLUEPRINT, __name__, url_prefix=rate_limit.API_PREFIX)
# Session callers are checked for X-CSRFToken by api.auth itself; key callers carry no cookies.
csrf.exempt(bp)
bp.before_request(auth.authenticate)
bp.before_request(validation.check_query_parameters)
# Every API call is counted (TERMINUS_API_RATE_LIMIT, per key or signed-in user) by
# rate_limit.check_rate_limit, first of all before-request hooks as Flask-Limiter's own was, through
# the limiter's storage; Flask-Limiter's own hook is wrapped to leave API calls alone.


@bp.record
def _on_register(state: BlueprintSetupState) -> None:
    # create_app binds the limiter before registering this blueprint.
    hooks = state.app.before_request_funcs.setdefault(None, [])
    found = [i for i, hook in enumerate(hooks) if hook == limiter._check_request_limit]
    if limiter.enabled and (not found or limiter._storage is None):
        raise RuntimeError("bind the limiter to the app before registering the API blueprint")
    for i in found:
        # Its filter would only say "not mine" after resolving the view, its exemptions and
        # meta limits; API calls skip it outright.
        hooks[i] = rate_limit.outside_the_api(hooks[i])
    hooks.insert(0, rate_limit.check_rate_limit)
    # Its after-request hook only adds the headers of limits it counted: none for API calls.
    after = state.app.after_request_funcs.setdefault(None, [])
    for i, hook in enumerate(after):
        if getattr(hook, "func", None) is rate_limit.LIMITER_HEADERS_HOOK:
            after[i] = rate_limit.outside_the_api(hook)
    # Its teardown resets the per-request state of limits it counted: none for API calls.
    teardown = state.app.teardown_request_funcs.setdefault(None, [])
    for i, hook in enumerate(teardown):
        if hook == getattr(limiter, "_Limiter__release_context", None):
            teardown[i] = rate_limit.outside_the_api(hook)
    # App-wide, so that unrouted paths under the API (404, 405) get their headers too.
    state.app.after_request(rate_limit.add_rate_limit_headers)
    rate_limit.one_trip_moving_window(limiter)
