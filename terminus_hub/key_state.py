"""Telling every instance that an API key changed, so their caches of verified keys drop it.

Each instance's key check keeps the keys it verified for a short while (api/auth.py). A key's
*generation* is a random value in the rate limit's Redis, next to the key's rate-limit window;
the Redis call that counts each API request reads it in the same script (and sets a fresh one
when it is missing), so a cached key is used only while its generation is the one seen when it
was read from the database.

A change (revoke, roll, account rename) sets a new generation right after the database commit
that made it, before the answer goes out: the very next request with that key, on any
instance, reads the new generation and looks the key up again. Without Redis (the in-memory
rate limit of development, or Redis down) no generation is read and every request looks its
key up in the database.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from limits.storage import RedisStorage
from sqlalchemy import event
from sqlalchemy.orm import Session

from terminus_hub.extensions import limiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """A key read from the database, as the key check caches it."""

    key_id: str
    last_used_at: datetime | None
    expires_at: datetime | None
    caller: Any  # the api.auth.Caller every request with the key acts as (key and account)
    generation: str  # the key's generation in Redis when it was read
    until: float  # time.monotonic() after which it is read again


class KeyCache:
    """This worker's recently verified keys, by token hash: bounded, short-lived, and used only
    while Redis says the key's generation is unchanged."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, Verified] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token_hash: str, generation: str) -> Verified | None:
        with self._lock:
            row = self._rows.get(token_hash)
            if row is None:
                return None
            if row.generation != generation or row.until < time.monotonic():
                del self._rows[token_hash]
                return None
            self._rows.move_to_end(token_hash)
            return row

    def put(self, token_hash: str, row: Verified) -> None:
        with self._lock:
            self._rows[token_hash] = row
            self._rows.move_to_end(token_hash)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


# A key changed while Redis could not be told (it was unreachable from the instance that changed
# it) is accepted by caches at most this long.
CACHE_SECONDS = 30.0
CACHE = KeyCache(size=10_000)
# Keys may change while Redis cannot be told: when a worker finds it down, and again when it
# is back, whichever hook noticed, that worker reads every key again.
limiter.on_storage_change = CACHE.clear

# Long enough to outlive any cached key (CACHE_SECONDS); a generation that lapses only makes
# caches read again (a missing one is set to a fresh random value no cache holds). Short, so the
# generations the key check sets for any well-formed key, even one that turns out unknown,
# cost Redis no more memory than the rate-limit windows beside them.
GENERATION_TTL_SECONDS = int(2 * CACHE_SECONDS)
_PENDING = "terminus_changed_keys"


def generation_key(token_hash: str) -> str:
    """The Redis key holding a key's generation (beside its rate-limit window)."""
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    return f"{prefix}:keygen:{token_hash[:32]}" if prefix else f"keygen:{token_hash[:32]}"


def redis_storage() -> RedisStorage | None:
    """The rate limit's Redis, when that is what it counts in (up or not)."""
    storage = getattr(limiter, "_storage", None)
    return storage if type(storage) is RedisStorage else None


def changed_after_commit(session: Session, token_hash: str) -> None:
    """Give the key a new generation once the session's transaction commits."""
    session.info.setdefault(_PENDING, set()).add(token_hash)


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    # A savepoint's release (audit.record) is not the commit: the change is not visible yet.
    if session.in_nested_transaction():
        return
    pending: set[str] | None = session.info.pop(_PENDING, None)
    if pending:
        publish(pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    # A savepoint rolled back (a failed audit write) leaves the transaction, and its change, on.
    if session.in_nested_transaction():
        return
    session.info.pop(_PENDING, None)


def publish(token_hashes: set[str]) -> None:
    """Give each key a new generation now (tried even when this worker last found Redis down:
    others may reach it). Without Redis as the rate limit's storage there are no caches."""
    storage = redis_storage()
    if storage is None:
        return
    try:
        connection: Any = storage.get_connection()
        pipe = connection.pipeline(transaction=False)
        for token_hash in token_hashes:
            # A new random value, never a count: a generation that lapsed or was evicted reads
            # as missing, and the key check then sets a fresh one that no cache holds.
            pipe.set(generation_key(token_hash), secrets.token_hex(8), ex=GENERATION_TTL_SECONDS)
        pipe.execute()
    except Exception:
        # Instances that still reach Redis keep using their cached copy until it ages out.
        log.exception(
            "could not tell other instances that %d API key(s) changed", len(token_hashes)
        )
