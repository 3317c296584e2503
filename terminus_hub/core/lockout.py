"""Lockout after consecutive failures, counted atomically so parallel guesses can't slip by.

Each attempt first reserves its place with one atomic increment of ``failed_attempts`` and is
judged only when that place is within the threshold; a correct password then clears the count,
again with one conditional update. However many attempts arrive at once, no more than the
threshold are ever checked before the lock, and none succeeds once the count has passed it.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from flask import current_app
from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import or_
from sqlalchemy import update

from terminus_hub import audit
from terminus_hub import links
from terminus_hub import metrics
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.outbox import may_mail
from terminus_hub.outbox import send_email


def _max_attempts() -> int:
    return int(current_app.config["TERMINUS_LOCKOUT_MAX_ATTEMPTS"])


def _lock_expired(now: datetime) -> ColumnElement[bool]:
    return and_(User.locked_until.is_not(None), User.locked_until <= now)


# No user has this id: an unknown address runs the same statements, which then match no row.
NO_ONE = ""


def reserve_attempt(user_id: str | None) -> bool:
    """Count one attempt; say whether it may be judged (not locked, within the threshold).

    For ``None`` (an unknown address) the same update runs, matches nothing and says False.
    """
    now = utcnow()
    expired = _lock_expired(now)
    # A lock that has run out starts a fresh count.
    row = db.session.execute(
        update(User)
        .where(User.id == (user_id or NO_ONE))
        .values(
            failed_attempts=case((expired, 1), else_=User.failed_attempts + 1),
            locked_at=case((expired, None), else_=User.locked_at),
            locked_until=case((expired, None), else_=User.locked_until),
        )
        .returning(User.failed_attempts, User.locked_until)
    ).one_or_none()
    db.session.commit()  # visible to parallel attempts before the slow password check
    if row is None:
        return False
    locked = row.locked_until is not None and row.locked_until > now
    return not locked and row.failed_attempts <= _max_attempts()


def release_attempt(user_id: str) -> None:
    """Give back the attempt a right password reserved when a second-factor code comes next.

    The count is not cleared (only a finished sign-in clears it), so wrong codes add up
    however often the password is entered again; but the right password itself costs no
    attempt, so it never leaves the code step without one.
    """
    db.session.execute(
        update(User)
        .where(User.id == user_id, User.failed_attempts > 0)
        .values(failed_attempts=User.failed_attempts - 1)
    )


def record_failure(user_id: str | None, at_code: bool = False) -> None:
    """Lock the user once the count reaches the threshold, mailing the unlock link once.

    ``at_code``: the failure was a second-factor code, after a right password: the mail says
    the password is known. For ``None`` (an unknown address) and a person already locked, the
    same update runs and matches nothing.
    """
    now = utcnow()
    minutes = current_app.config["TERMINUS_LOCKOUT_MINUTES"]
    result = db.session.execute(
        update(User)
        .where(
            User.id == (user_id or NO_ONE),
            User.failed_attempts >= _max_attempts(),
            or_(User.locked_until.is_(None), User.locked_until <= now),
        )
        .values(locked_at=now, locked_until=now + timedelta(minutes=minutes))
    )
    user = db.session.get(User, user_id) if user_id and affected(result) == 1 else None
    if user is not None:
        metrics.LOCKOUTS.inc()
        db.session.refresh(user)
        # Capped per address like recovery mail: each unlock link buys a few more guesses.
        if may_mail(user.email, "unlock"):
            send_unlock_email(user, at_code=at_code)
        detail: dict[str, object] = {"minutes": minutes}
        if at_code:
            detail["at_code"] = True
        audit.record("account.locked", user=user, detail=detail)
    db.session.commit()  # deliberate: the lock must hold for parallel attempts at once


def forget_expired_lock(user: User) -> None:
    """Start a fresh count when the person's lock has run out (as a password attempt does).

    For ways in that count no attempt of their own (a passkey): attempts made during the lock
    must not keep them out after it.
    """
    db.session.execute(
        update(User)
        .where(User.id == user.id, _lock_expired(utcnow()))
        .values(failed_attempts=0, locked_at=None, locked_until=None)
    )


def record_success(user: User) -> bool:
    """Clear the count for a correct password, unless a parallel attempt locked the user first."""
    now = utcnow()
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.failed_attempts <= _max_attempts(),
            or_(User.locked_until.is_(None), User.locked_until <= now),
        )
        .values(failed_attempts=0, locked_at=None, locked_until=None)
    )
    db.session.commit()  # deliberate, like the count: parallel attempts see it at once
    db.session.refresh(user)
    return affected(result) == 1


def send_unlock_email(user: User, at_code: bool = False) -> None:
    """Mail the link that clears this lock (``at_code``: the password was right, the codes
    were not)."""
    url = links.external_url("auth.unlock", token=links.make_token("unlock", user))
    reset_url = links.external_url("auth.forgot_password")
    send_email(
        user.email,
        "unlock",
        user=user,
        url=url,
        reset_url=reset_url,
        minutes=current_app.config["TERMINUS_LOCKOUT_MINUTES"],
        at_code=at_code,
    )


def unlock(user: User) -> bool:
    """Clear the lock named by an unlock link; False when that lock is already gone."""
    if user.locked_at is None:
        return False
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, User.locked_at == user.locked_at)
        .values(failed_attempts=0, locked_at=None, locked_until=None)
    )
    if affected(result) == 1:
        audit.record("account.unlocked", user=user, detail={"by": "link"})
    return affected(result) == 1


def clear(user: User) -> None:
    """Forget failures and any lock (operator unlock, password reset)."""
    user.failed_attempts = 0
    user.locked_at = None
    user.locked_until = None
