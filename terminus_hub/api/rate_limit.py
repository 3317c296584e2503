"""The API's rate limit: one Redis round trip per call, on Flask-Limiter's storage and settings.

Counted by two hooks instead of Flask-Limiter's per-request decorator machinery. They lean on
Flask-Limiter internals (the attributes below, read through the limiter), so setup.cfg pins
Flask-Limiter and limits to the minor versions this was written against, and
tests/test_rate_limit_internals.py fails loudly when any of them changes.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app
from flask import g
from flask import request
from flask import session
from flask_limiter import Limiter
from flask_limiter.constants import MAX_BACKEND_CHECKS
from limits import RateLimitItem
from limits import parse_many
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import ResponseError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from terminus_hub import key_state
from terminus_hub.api.bearer import key_hash
from terminus_hub.extensions import limiter


def rate_limit_key() -> str:
    """Count API calls per key, per signed-in user, or per address for anyone else.

    A key is counted by its hash, not by the header's text: "bearer  KEY" and "Bearer KEY" are
    one key with one budget. Headers that hold no well-formed key count against the address.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        token_hash = key_hash(header)
        if token_hash is None:
            return "addr:" + (request.remote_addr or "")
        return "key:" + token_hash[:32]
    user_id = session.get("_user_id")
    if isinstance(user_id, str):
        return "user:" + user_id
    return "addr:" + (request.remote_addr or "")


def rate_limit() -> str:
    """Return the API's limit from settings."""
    return str(current_app.config["TERMINUS_API_RATE_LIMIT"])


# The API's rate limit, counted by these two hooks instead of Flask-Limiter's generic
# machinery (which resolves decorators, exemptions and scopes on every request and cost more
# CPU than the rest of a key check together). They keep its behaviour exactly: the same
# settings (RATELIMIT_ENABLED, RATELIMIT_KEY_PREFIX, the storage and strategy it built), the same
# Redis keys (a budget per key or user, per endpoint, as a Flask-Limiter blueprint limit
# counts), the same headers, 429s and breach log, and the same in-memory fallback with its
# log line and its back-off before Redis is tried again.
_LIMITER_LOG = logging.getLogger("flask-limiter")
_SECURITY_LOG = logging.getLogger("terminus_hub.security")
FALLBACK = "Rate limit storage unreachable - falling back to in-memory storage"
API_BLUEPRINT = "api"
API_PREFIX = "/api/v1"


def in_the_api() -> bool:
    """Is this an API call: a route of the API blueprint, or an unrouted path under it?

    Asked by several hooks of every request; worked out once (routing is done by then).
    """
    environ = request.environ
    known: bool | None = environ.get(_IN_THE_API)
    if known is None:
        known = environ[_IN_THE_API] = _in_the_api()
    return known


_IN_THE_API = "terminus_hub.in_the_api"


def _in_the_api() -> bool:
    if request.blueprint is not None:
        return request.blueprint == API_BLUEPRINT
    # Routing failed (404, 405): no endpoint, no blueprint; the path says whose it is.
    path = request.path
    return request.url_rule is None and (path == API_PREFIX or path.startswith(API_PREFIX + "/"))


@functools.lru_cache(maxsize=32)
def _limit_items(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(sorted(parse_many(text)))


class _Backoff:
    """When the storage is down, try it again after 1, 2, 4, … 32 s (as Flask-Limiter does)."""

    def __init__(self) -> None:
        self.count = 0
        self.last = time.time()

    def due(self) -> bool:
        if self.count > MAX_BACKEND_CHECKS:
            self.count = 0
        if time.time() - self.last > 2**self.count:
            self.last = time.time()
            self.count += 1
            return True
        return False


_backoff = _Backoff()


def _storage_failed() -> bool:
    """Switch to the in-memory fallback; False when there is none (or it is already in use)."""
    if limiter._in_memory_fallback_enabled and not limiter._storage_dead:
        _LIMITER_LOG.warning(FALLBACK)
        limiter._storage_dead = True
        return True
    return False


def _hit(
    items: tuple[RateLimitItem, ...], args: list[str], watched: str | None = None
) -> tuple[Any, RateLimitItem | None]:
    if limiter._storage_dead and _backoff.due():
        try:
            recovered = limiter.storage.check()
        except Exception:
            recovered = False
        if recovered:
            _LIMITER_LOG.info("Rate limit storage recovered")
            limiter._storage_dead = False
            _backoff.count = 0
    strategy = limiter.limiter  # the in-memory fallback while the storage is down
    for index, item in enumerate(items):
        if index == 0 and watched is not None and isinstance(strategy, OneTripMovingWindow):
            # The key's generation comes back with the count: the key check's cache uses it.
            acquired, g.key_generation = strategy.hit_reading(item, watched, *args)
        else:
            acquired = strategy.hit(item, *args)
        if not acquired:
            return strategy, item
    return strategy, None


def _charge(
    who: str, what: str, watched: str | None = None
) -> tuple[Any, RateLimitItem, list[str]] | None:
    """Count one hit for ``who`` on ``what``; raise 429 past the limit.

    Returns what the X-RateLimit-* headers need, or None when the storage failed and errors
    are swallowed.
    """
    items = _limit_items(rate_limit())
    args = [who, what]
    if limiter._key_prefix:
        args.insert(0, limiter._key_prefix)
    try:
        strategy, breached = _hit(items, args, watched)
    except Exception:
        g.pop("key_generation", None)
        if _storage_failed():
            strategy, breached = _hit(items, args)
        elif limiter._swallow_errors:
            _LIMITER_LOG.exception("Failed to rate limit. Swallowing error")
            return None
        else:
            raise
    if breached is not None:
        _LIMITER_LOG.info("ratelimit %s (%s) exceeded at endpoint: %s", breached, who, what)
        _SECURITY_LOG.warning(
            "excess_rate_limit_exceeded limit=%r endpoint=%s address=%s",
            str(breached),
            what,
            request.remote_addr,
        )
        g.api_rate_limit = (strategy, breached, args)
        raise TooManyRequests()
    return strategy, items[0], args


def check_rate_limit() -> None:
    """Count an API call before anything else looks at it; refuse it past the limit (429)."""
    if not (in_the_api() and limiter.enabled and limiter.initialized):
        return
    g.pop("key_generation", None)  # only this request's own reading counts
    who = rate_limit_key()
    watched = key_state.generation_key(who[len("key:") :]) if who.startswith("key:") else None
    g.api_rate_limit = _charge(who, request.endpoint or "", watched)


# Budget name for well-formed keys that match no key, counted per client address.
UNKNOWN_KEYS = "api.unknown_keys"


def count_unknown_key() -> None:
    """Count a lookup of an unknown key against the address (a fresh random key each time
    would otherwise get a fresh budget each time)."""
    if limiter.enabled and limiter.initialized:
        _charge("addr:" + (request.remote_addr or ""), UNKNOWN_KEYS)


def add_rate_limit_headers(response: Response) -> Response:
    """X-RateLimit-Limit, -Remaining and -Reset on every counted call; Retry-After on a 429."""
    state = g.pop("api_rate_limit", None)
    if state is None or not limiter._headers_enabled:
        return response
    strategy, item, args = state
    try:
        reset, remaining = strategy.get_window_stats(item, *args)
    except Exception:
        if _storage_failed():
            reset, remaining = limiter.limiter.get_window_stats(item, *args)
        elif limiter._swallow_errors:
            _LIMITER_LOG.exception("Failed to update rate limit headers. Swallowing error")
            return response
        else:
            raise
    reset_at = int(reset + 1)
    headers = response.headers
    headers.add("X-RateLimit-Limit", str(item.amount))
    headers.add("X-RateLimit-Remaining", str(remaining))
    headers.add("X-RateLimit-Reset", str(reset_at))
    if response.status_code == 429:
        headers["Retry-After"] = str(int(reset_at - time.time()))
    return response


# Flask-Limiter's after-request hook (a partial of this function, bound to the limiter).
LIMITER_HEADERS_HOOK = getattr(Limiter, "_Limiter__inject_headers", None)


def outside_the_api(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a request hook so that it runs for every request but API calls.

    For API calls the wrapper hands back what it was given: an after-request hook's response,
    nothing for a before-request hook (a teardown's return value is not read).
    """

    @wraps(hook)
    def wrapper(*args: Any) -> Any:
        if not in_the_api():
            return hook(*args)
        return args[0] if args else None

    return wrapper


# The moving window in one Redis round trip. limits' own strategy spends two per request:
# one script to take an entry, a second to read the window back for the X-RateLimit-*
# headers. This script does both atomically (the same two steps as limits'
# acquire_moving_window.lua and moving_window.lua, on the same list), and the strategy keeps
# the window it read for the headers of the same request.
_ACQUIRE_AND_READ = """
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local acquired = 0
if amount <= limit then
    local entry = redis.call('lindex', KEYS[1], limit - amount)
    if not (entry and tonumber(entry) >= timestamp - expiry) then
        local entries = {}
        for i = 1, amount do
            entries[i] = timestamp
        end
        for i = 1, #entries, 5000 do
            redis.call('lpush', KEYS[1], unpack(entries, i, math.min(i + 4999, #entries)))
        end
        redis.call('ltrim', KEYS[1], 0, limit - 1)
        redis.call('expire', KEYS[1], expiry)
        acquired = 1
    end
end
local low = 0
local high = math.min(limit, redis.call('llen', KEYS[1])) - 1
local found = nil
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value >= timestamp - expiry then
        found = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
-- A bearer key's generation (terminus_hub/key_state.py), read in the same round trip. One
-- that is missing (never set, lapsed, evicted, or Redis lost its data) gets a fresh random
-- value, which no cache holds.
local generation = false
if KEYS[2] then
    generation = redis.call('get', KEYS[2])
    if not generation then
        generation = ARGV[5]
        redis.call('set', KEYS[2], generation, 'EX', ARGV[6])
    end
end
if found then
    return {acquired, redis.call('lindex', KEYS[1], found), found + 1, generation}
end
return {acquired, false, 0, generation}
"""
# Windows read by hit() live until their request's headers ask for them, and no longer.
_WINDOW_TTL = 5.0


class _Line(threading.local):
    """A thread's own connection to Redis for the script, and the process it was made in."""

    connection: Any = None
    pid = 0
    answered = False  # has Redis answered on it (so a failure may mean it went stale)?


class OneTripMovingWindow(MovingWindowRateLimiter):
    """limits' moving window on Redis, hit and window read in one script call.

    The call goes over the thread's own connection (made with the storage pool's settings):
    one send and one read, without the client's per-command pool checkout, retry
    and callback layers, which cost more CPU than the round trip itself.
    """

    def __init__(self, storage: RedisStorage) -> None:
        super().__init__(storage)
        self._redis = storage
        self._script = storage.get_connection().register_script(_ACQUIRE_AND_READ.encode())
        self._windows = threading.local()
        self._line = _Line()

    def _call_script(self, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA on this thread's connection; once more on a fresh one if it went stale."""
        line = self._line
        if line.connection is None or line.pid != os.getpid():
            # Never one inherited through a fork: its socket is the parent's.
            # Made from the pool's settings but not counted against its max_connections: this
            # thread holds it for good.
            client: Any = self._redis.get_connection()
            pool = client.connection_pool
            line.connection = pool.connection_class(**pool.connection_kwargs)
            line.pid, line.answered = os.getpid(), False
        connection = line.connection
        try:
            try:
                answer = self._send(connection, "EVALSHA", self._script.sha, keys, args)
            except NoScriptError:
                # Redis restarted or its scripts were flushed: send the text (Redis keeps it).
                answer = self._send(connection, "EVAL", self._script.script, keys, args)
        except RedisConnectionError:  # a timeout is not one: the script may have run
            if not line.answered:
                raise
            # Redis restarted or closed an idle connection: once more, on a new one.
            line.answered = False
            return self._call_script(keys, args)
        line.answered = True
        return answer

    @staticmethod
    def _send(connection: Any, command: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            connection.send_packed_command(
                connection.pack_command(command, script, len(keys), *keys, *args),
                check_health=False,
            )
            return connection.read_response()
        except ResponseError:
            raise  # Redis answered (NOSCRIPT, a script error): the reply was read in full
        except BaseException:
            # Whatever stopped us between the send and the end of the read, a reply may still
            # be on its way: never let the next request read it as its own.
            connection.disconnect()
            raise

    def _read(self) -> dict[str, tuple[float, float, int]]:
        windows = getattr(self._windows, "by_key", None)
        if windows is None:
            windows = self._windows.by_key = {}
        return windows

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self.hit_reading(item, None, *identifiers, cost=cost)[0]

    def hit_reading(
        self, item: RateLimitItem, watched: str | None, *identifiers: str, cost: int = 1
    ) -> tuple[bool, str | None]:
        """hit(), also reading (or setting, when missing) the key generation at ``watched``."""
        key = item.key_for(*identifiers)
        now = time.time()
        storage = self._redis
        keys = [storage.prefixed_key(key)]
        args: list[Any] = [now, item.amount, item.get_expiry(), cost]
        if watched is not None:
            # The generation to set if the key has none (used only then).
            keys.append(watched)
            args += [secrets.token_hex(8), key_state.GENERATION_TTL_SECONDS]
        try:
            acquired, oldest, count, generation = self._call_script(keys, args)
        except storage.base_exceptions as exc:
            if storage.wrap_exceptions:
                raise StorageError(exc) from exc
            raise
        windows = self._read()
        if len(windows) > 16:
            windows.clear()
        windows[key] = (now, float(oldest) if oldest else now, int(count))
        if isinstance(generation, bytes):
            generation = generation.decode("ascii")
        return bool(acquired), generation or None

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        key = item.key_for(*identifiers)
        window = self._read().pop(key, None)
        if window is None or time.time() - window[0] > _WINDOW_TTL:
            return super().get_window_stats(item, *identifiers)
        _, start, count = window
        return WindowStats(start + item.get_expiry(), item.amount - count)


def one_trip_moving_window(limiter: Limiter) -> None:
    """Use OneTripMovingWindow when the app counts a moving window in plain Redis.

    Called once the limiter is bound to an app; any other strategy or storage is left as
    Flask-Limiter made it, and its in-memory fallback is untouched.
    """
    storage = getattr(limiter, "_storage", None)
    strategy = getattr(limiter, "_limiter", None)
    if type(storage) is RedisStorage and type(strategy) is MovingWindowRateLimiter:
        limiter._limiter = OneTripMovingWindow(storage)
