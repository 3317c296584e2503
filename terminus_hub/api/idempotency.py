"""Idempotency-Key on POST: a retried request gets the first answer again, never a second object.

The first request with a key claims it (a row committed before the view runs, so a second
request with the same key sees it at once, on any instance). When the view succeeds its answer
is kept, encrypted, for 24 hours and replayed byte for byte to any retry with the same key and
the same request, with `Idempotent-Replayed: true`. The same key with another request, or while
the first is still running, answers 409 `idempotency_conflict`. An error answer releases the
key, so a corrected retry can use it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

from flask import g
from flask import request
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from terminus_hub import sealing
from terminus_hub.api.auth import PUBLIC_ENDPOINTS
from terminus_hub.api.auth import current_caller
from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import validation_error
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import IdempotentRequest
from terminus_hub.models import utcnow

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
KEPT = timedelta(hours=24)
# A first request that has not answered in this time is taken as lost; its key can be reused.
ABANDONED_AFTER = timedelta(minutes=1)
KEY_INVALID = f"Use 1 to {MAX_LENGTH} printable ASCII characters, such as a UUID."
OTHER_REQUEST = (
    "This Idempotency-Key was used with a different request in the last 24 hours. "
    "Use a new key for a new request."
)
STILL_RUNNING = (
    "A request with this Idempotency-Key is still being processed. Retry in a few seconds."
)
# Answer headers kept with the body; the others (rate limits, request id) belong to each call.
_KEPT_HEADERS = ("Content-Type", "Location")
_PURPOSE = b"idempotent answers"


def _printable_ascii(text: str) -> bool:
    return all(" " <= character <= "~" for character in text)


def begin() -> Response | None:
    """Before a POST view: claim its Idempotency-Key, or answer from what the key holds."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST" or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not 1 <= len(key) <= MAX_LENGTH or not _printable_ascii(key):
        raise validation_error({HEADER: KEY_INVALID})
    caller = current_caller()
    caller_id = caller.key.id if caller.key is not None else caller.user.id  # type: ignore[union-attr]
    fingerprint = _fingerprint()
    if _claim(caller_id, key, fingerprint):
        g.idempotency = (caller_id, key)
        return None
    row = db.session.get(IdempotentRequest, (caller_id, key), populate_existing=True)
    if row is None:
        # Released between our insert and our read: the caller may simply retry.
        raise ApiError("idempotency_conflict", STILL_RUNNING, 409)
    if row.status is None or row.response is None:
        raise ApiError("idempotency_conflict", STILL_RUNNING, 409)
    if row.fingerprint != fingerprint:
        raise ApiError("idempotency_conflict", OTHER_REQUEST, 409)
    return _replay(row.response)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _claim(caller_id: str, key: str, fingerprint: str) -> bool:
    """Insert the key's row (committed at once); or take over one past its time. True: ours."""
    now = utcnow()
    try:
        db.session.add(
            IdempotentRequest(caller_id=caller_id, key=key, fingerprint=fingerprint, created_at=now)
        )
        db.session.commit()  # deliberate: other requests with this key must see it now
        return True
    except IntegrityError:
        db.session.rollback()
    # Kept past 24 hours (housekeeping has not run yet), or left behind by a crashed request.
    taken = db.session.execute(
        update(IdempotentRequest)
        .where(
            IdempotentRequest.caller_id == caller_id,
            IdempotentRequest.key == key,
            or_(
                IdempotentRequest.created_at < now - KEPT,
                IdempotentRequest.status.is_(None)
                & (IdempotentRequest.created_at < now - ABANDONED_AFTER),
            ),
        )
        .values(fingerprint=fingerprint, status=None, response=None, created_at=now)
    )
    db.session.commit()
    return affected(taken) == 1


def finish(response: Response) -> Response:
    """After the view: keep a successful answer for replays; release the key after an error."""
    claimed: tuple[str, str] | None = g.pop("idempotency", None)
    if claimed is None:
        return response
    caller_id, key = claimed
    where = (IdempotentRequest.caller_id == caller_id, IdempotentRequest.key == key)
    db.session.rollback()  # whatever a failed view left behind is not ours to write
    if 200 <= response.status_code < 300:
        db.session.execute(
            update(IdempotentRequest)
            .where(*where)
            .values(status=response.status_code, response=_sealed(response))
        )
    else:
        db.session.execute(delete(IdempotentRequest).where(*where))
    db.session.commit()
    return response


def _sealed(response: Response) -> str:
    kept = {
        "status": response.status_code,
        "headers": {
            name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers
        },
        "body": base64.b64encode(response.get_data()).decode("ascii"),
    }
    # Encrypted: a new API key's answer holds its token.
    return sealing.seal(_PURPOSE, json.dumps(kept).encode("utf-8"))


def _replay(sealed: str) -> Response:
    opened = sealing.unseal(_PURPOSE, sealed)
    if opened is None:
        # SECRET_KEY changed since: the answer is lost, and the request must not run twice.
        raise ApiError("idempotency_conflict", OTHER_REQUEST, 409)
    kept = json.loads(opened)
    response = Response(base64.b64decode(kept["body"]), status=kept["status"])
    for name, value in kept["headers"].items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response
