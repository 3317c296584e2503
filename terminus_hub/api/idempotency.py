"""Idempotency-Key on POST: a retried request gets the first answer again, never a second change.

`@idempotent` wraps each POST view inside its authorisation (scope, admin_only, reauth), so
a kept answer is only ever given to a caller who may make that request now. Keys belong to the
caller (the API key, or the person) within the account the request acts on.

- The first request claims its key: a row committed before the view runs, with a random claim
  token, so another request with the key sees it at once, on any instance.
- The view's own commit also marks the row, in the same transaction ("changed, answer not kept
  yet"). A request whose claim was taken over meanwhile cannot commit: its change is refused.
- After the view, the answer (status, Content-Type, Location, body) is kept, encrypted, for 24
  hours, and replayed byte for byte to a retry of the same request with `Idempotent-Replayed`.
- An error before any change releases the key. Once a change was committed, the key is never
  released: if no answer could be kept, a retry gets 409 saying the outcome must be looked up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from typing import ParamSpec

from flask import g
from flask import has_request_context
from flask import make_response
from flask import request
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import or_
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from terminus_hub import sealing
from terminus_hub.api.auth import BLUEPRINT
from terminus_hub.api.auth import current_caller
from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import to_response
from terminus_hub.api_errors import validation_error
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import IdempotentRequest
from terminus_hub.models import utcnow

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
KEPT = timedelta(hours=24)
# A claim with no committed change for this long is taken as lost (its process died); another
# request may take the key over, and the first can then no longer commit.
ABANDONED_AFTER = timedelta(minutes=1)
KEY_INVALID = f"Use 1 to {MAX_LENGTH} printable ASCII characters, such as a UUID."
OTHER_REQUEST = (
    "This Idempotency-Key was used with a different request in the last 24 hours. "
    "Use a new key for a new request."
)
STILL_RUNNING = (
    "A request with this Idempotency-Key is still being processed. Retry in a few seconds."
)
TAKEN_OVER = (
    "This request took too long and its Idempotency-Key was taken over by a retry; "
    "nothing was changed by it."
)
OUTCOME_UNKNOWN = (
    "The first request with this Idempotency-Key made its change but could not answer. "
    "Look the result up (for example in the list) instead of retrying."
)
ANSWER_LOST = (
    "The answer kept for this Idempotency-Key can no longer be read (the service's secret key "
    "changed). Look the result up instead of retrying."
)
# Status of a claim whose view committed its change but whose answer is not kept (yet).
_CHANGED = 0
# Answer headers kept with the body; the others (rate limits, request id) belong to each call.
_KEPT_HEADERS = ("Content-Type", "Location")
_PURPOSE = b"idempotent answers"

P = ParamSpec("P")
# Views wrapped by @idempotent (every POST of the API; a test holds that).
IDEMPOTENT_ENDPOINTS: set[str] = set()


@dataclass
class _Claim:
    caller_id: str
    account_id: str
    key: str
    token: str
    changed: bool = False

    def where(self) -> tuple[Any, ...]:
        return (
            IdempotentRequest.caller_id == self.caller_id,
            IdempotentRequest.account_id == self.account_id,
            IdempotentRequest.key == self.key,
            IdempotentRequest.claim == self.token,
        )


def idempotent(view: Callable[P, Any]) -> Callable[P, Response]:
    """Honour an Idempotency-Key on a POST view (place it below the authorisation decorators)."""
    IDEMPOTENT_ENDPOINTS.add(f"{BLUEPRINT}.{view.__name__}")

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return make_response(view(*args, **kwargs))
        if not 1 <= len(key) <= MAX_LENGTH or not all(" " <= c <= "~" for c in key):
            raise validation_error({HEADER: KEY_INVALID})
        caller = current_caller()
        caller_id = caller.key.id if caller.key is not None else caller.user.id  # type: ignore[union-attr]
        claim = _claim(caller_id, caller.account.id, key, _fingerprint())
        if isinstance(claim, Response):
            return claim
        g.idempotency_claim = claim
        try:
            response = make_response(view(*args, **kwargs))
        except ApiError as error:
            g.pop("idempotency_claim", None)
            _after_error(claim, to_response(error))
            raise
        except Exception:
            g.pop("idempotency_claim", None)
            _after_error(claim, None)
            raise
        g.pop("idempotency_claim", None)
        if claim.changed or 200 <= response.status_code < 300:
            _keep(claim, response)
        else:
            _release(claim)
        return response

    return wrapper


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _claim(caller_id: str, account_id: str, key: str, fingerprint: str) -> _Claim | Response:
    """Claim the key for this request, or answer from what an earlier request left."""
    claim = _Claim(caller_id, account_id, key, secrets.token_hex(16))
    now = utcnow()
    try:
        db.session.add(
            IdempotentRequest(
                caller_id=caller_id,
                account_id=account_id,
                key=key,
                claim=claim.token,
                fingerprint=fingerprint,
                created_at=now,
            )
        )
        db.session.commit()  # deliberate: other requests with this key must see it now
        return claim
    except IntegrityError:
        db.session.rollback()
    where = (
        IdempotentRequest.caller_id == caller_id,
        IdempotentRequest.account_id == account_id,
        IdempotentRequest.key == key,
    )
    # Kept past 24 hours (housekeeping has not run yet), or claimed by a request that died
    # before changing anything: the key is free again.
    taken = db.session.execute(
        update(IdempotentRequest)
        .where(
            *where,
            or_(
                IdempotentRequest.created_at < now - KEPT,
                IdempotentRequest.status.is_(None)
                & (IdempotentRequest.created_at < now - ABANDONED_AFTER),
            ),
        )
        .values(
            claim=claim.token, fingerprint=fingerprint, status=None, response=None, created_at=now
        )
    )
    db.session.commit()
    if affected(taken) == 1:
        return claim
    row = db.session.get(IdempotentRequest, (caller_id, account_id, key), populate_existing=True)
    if row is None or row.status is None:
        raise ApiError("idempotency_conflict", STILL_RUNNING, 409)
    if row.fingerprint != fingerprint:
        raise ApiError("idempotency_conflict", OTHER_REQUEST, 409)
    if row.response is None:
        # Changed, and its answer not kept: still being written, or lost for good.
        lost = row.created_at < now - ABANDONED_AFTER
        raise ApiError("idempotency_conflict", OUTCOME_UNKNOWN if lost else STILL_RUNNING, 409)
    return _replay(row.response)


@event.listens_for(Session, "before_commit")
def _mark_change(session: Session) -> None:
    """In the view's own transaction: note the change, and refuse it if the claim was lost."""
    if not has_request_context():
        return
    claim: _Claim | None = g.get("idempotency_claim")
    # Only the view's own session counts, and a savepoint's release (audit.record) is not its
    # commit.
    if (
        claim is None
        or claim.changed
        or session is not db.session()
        or session.in_nested_transaction()
    ):
        return
    # The view's changes go first: if they fail, nothing was changed and the key is freed.
    session.flush()
    marked = session.execute(
        update(IdempotentRequest)
        .where(*claim.where(), IdempotentRequest.status.is_(None))
        .values(status=_CHANGED)
    )
    if affected(marked) != 1:
        raise ApiError("idempotency_conflict", TAKEN_OVER, 409)
    claim.changed = True


def _after_error(claim: _Claim, answer: Response | None) -> None:
    """A view failed: keep its answer if it had changed something, else free the key.

    Both roll back what the failed view left first."""
    if not claim.changed:
        _release(claim)
    elif answer is not None and answer.status_code < 500:
        _keep(claim, answer)
    else:
        _keep(claim, to_response(ApiError("idempotency_conflict", OUTCOME_UNKNOWN, 409)))


def _release(claim: _Claim) -> None:
    db.session.rollback()
    db.session.execute(delete(IdempotentRequest).where(*claim.where()))
    db.session.commit()


def _keep(claim: _Claim, response: Response) -> None:
    db.session.rollback()  # whatever a failed view left behind is not ours to write
    db.session.execute(
        update(IdempotentRequest)
        .where(*claim.where())
        .values(status=response.status_code, response=_sealed(response))
    )
    db.session.commit()


def _sealed(response: Response) -> str:
    kept = {
        "status": response.status_code,
        "headers": {
            name: value for name, value in response.headers.items() if name in _KEPT_HEADERS
        },
        "body": base64.b64encode(response.get_data()).decode("ascii"),
    }
    # Compressed, then encrypted: a new API key's answer holds its token.
    return sealing.seal(_PURPOSE, zlib.compress(json.dumps(kept).encode("utf-8")))


def _replay(sealed: str) -> Response:
    opened = sealing.unseal(_PURPOSE, sealed)
    if opened is None:
        # The secret changed since: the answer is lost, and the request must not run twice.
        raise ApiError("idempotency_conflict", ANSWER_LOST, 409)
    kept = json.loads(zlib.decompress(opened))
    response = Response(base64.b64decode(kept["body"]), status=kept["status"])
    for name, value in kept["headers"].items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response
