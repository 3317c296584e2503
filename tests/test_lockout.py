"""Lockout: N consecutive failures lock, one generic message, unlock links, expiry."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from terminus_hub.auth.recovery_views import UNLOCKED
from terminus_hub.core.signin import INCORRECT
from terminus_hub.extensions import db
from terminus_hub.links import INVALID_LINK
from terminus_hub.models import User

WRONG = "not the right password"
# The token (hidden field and meta tag) is the only part allowed to differ.
CSRF_FIELD = re.compile(
    rb'(<meta name="csrf-token" content=|name="csrf_token" type="hidden" value=)"[^"]*"'
)


def _fail(auth, email, times):
    return [auth.sign_in(email, WRONG) for _ in range(times)]


def _row(app, user_id):
    with app.app_context():
        row = db.session.get(User, user_id)
        db.session.expunge(row)
        return row


def _unlock_mails(outbox, email):
    return [m for m in outbox.messages(email) if m.template == "unlock"]


def test_four_failures_do_not_lock(auth, user, outbox):
    _fail(auth, user.email, 4)
    assert auth.sign_in(user.email, user.password).status_code == 303
    assert _unlock_mails(outbox, user.email) == []


def test_five_failures_lock_and_mail_one_unlock_link(app, auth, user, outbox):
    _fail(auth, user.email, 5)
    row = _row(app, user.id)
    assert row.locked_until is not None
    assert len(_unlock_mails(outbox, user.email)) == 1
    assert auth.sign_in(user.email, user.password).status_code == 422


def test_locked_account_answers_exactly_like_a_wrong_password(auth, user):
    responses = _fail(auth, user.email, 5)
    locked_right = auth.sign_in(user.email, user.password)
    locked_wrong = auth.sign_in(user.email, WRONG)
    unknown = auth.sign_in("nobody@example.com", WRONG)
    bodies = {
        CSRF_FIELD.sub(b"", r.data).replace(b"nobody@example.com", user.email.encode())
        for r in (*responses, locked_right, locked_wrong, unknown)
    }
    assert len(bodies) == 1
    assert {r.status_code for r in (*responses, locked_right, unknown)} == {422}
    assert INCORRECT in locked_right.get_data(as_text=True)
    assert "locked" not in locked_right.get_data(as_text=True).lower()


def test_while_locked_the_password_is_not_checked_and_attempts_still_count(
    app, auth, user, monkeypatch
):
    from terminus_hub import passwords

    _fail(auth, user.email, 5)
    checked = []
    real = passwords.verify_password
    monkeypatch.setattr(
        "terminus_hub.core.signin.verify_password", lambda *a: checked.append(1) or real(*a)
    )
    auth.sign_in(user.email, user.password)
    assert checked == []
    assert _row(app, user.id).failed_attempts == 6


def test_more_failures_while_locked_send_no_more_mail(auth, user, outbox):
    _fail(auth, user.email, 25)
    assert len(_unlock_mails(outbox, user.email)) == 1


def test_a_success_resets_the_count(auth, user):
    _fail(auth, user.email, 4)
    assert auth.sign_in(user.email, user.password).status_code == 303
    auth.sign_out()
    _fail(auth, user.email, 4)
    assert auth.sign_in(user.email, user.password).status_code == 303


def test_the_lock_ends_by_itself(auth, user):
    start = datetime.now(UTC)
    _fail(auth, user.email, 5)
    with freeze_time(start + timedelta(minutes=14)):
        assert auth.sign_in(user.email, user.password).status_code == 422
    with freeze_time(start + timedelta(minutes=30)):
        assert auth.sign_in(user.email, user.password).status_code == 303


def test_after_the_lock_ends_the_count_starts_again(app, auth, user, outbox):
    start = datetime.now(UTC)
    _fail(auth, user.email, 5)
    with freeze_time(start + timedelta(minutes=16)):
        _fail(auth, user.email, 4)
        assert _row(app, user.id).locked_until is None
        assert auth.sign_in(user.email, user.password).status_code == 303


@pytest.mark.app_config(TERMINUS_LOCKOUT_MAX_ATTEMPTS=3, TERMINUS_LOCKOUT_MINUTES=1)
def test_lockout_settings_are_honoured(app, auth, user):
    start = datetime.now(UTC)
    _fail(auth, user.email, 3)
    assert auth.sign_in(user.email, user.password).status_code == 422
    with freeze_time(start + timedelta(minutes=2)):
        assert auth.sign_in(user.email, user.password).status_code == 303


def test_unknown_emails_create_no_rows_or_locks(app, auth):
    for n in range(20):
        auth.sign_in(f"ghost{n}@example.com", WRONG)
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


def test_unlock_link_get_changes_nothing(app, auth, client, user, outbox):
    _fail(auth, user.email, 5)
    link = outbox.last_link(user.email)
    assert link.startswith("/unlock/")
    page = client.get(link)
    assert page.status_code == 200 and "Unlock my account" in page.get_data(as_text=True)
    assert _row(app, user.id).locked_until is not None


def test_unlock_link_post_unlocks_without_signing_in(app, auth, client, user, outbox):
    _fail(auth, user.email, 5)
    response = client.post(outbox.last_link(user.email))
    assert response.status_code == 303 and response.location == "/sign_in"
    assert UNLOCKED in client.get("/sign_in").get_data(as_text=True)
    assert client.get("/accounts").status_code == 302
    row = _row(app, user.id)
    assert row.failed_attempts == 0 and row.locked_until is None
    assert auth.sign_in(user.email, user.password).status_code == 303


def test_unlock_link_works_once(auth, client, user, outbox):
    _fail(auth, user.email, 5)
    link = outbox.last_link(user.email)
    client.post(link)
    again = client.post(link)
    assert again.status_code == 400
    assert INVALID_LINK in again.get_data(as_text=True)


def test_unlock_link_is_bound_to_its_lock(auth, client, user, outbox):
    start = datetime.now(UTC)
    _fail(auth, user.email, 5)
    first = outbox.last_link(user.email)
    with freeze_time(start + timedelta(minutes=20)):
        _fail(auth, user.email, 5)  # a new lock after the first ran out
        second = outbox.last_link(user.email)
        assert first != second
        assert client.post(first).status_code == 400
        assert client.post(second).status_code == 303


@pytest.mark.parametrize("token", ["junk", "x" * 5000, "' OR 1=1--"])
def test_tampered_unlock_links_are_refused(client, token):
    response = client.post(f"/unlock/{token}")
    assert response.status_code == 400
    assert INVALID_LINK in response.get_data(as_text=True)


def test_operator_can_unlock_from_the_command_line(app, auth, runner, user):
    _fail(auth, user.email, 5)
    result = runner.invoke(args=["users", "unlock", user.email.upper()])
    assert result.exit_code == 0, result.output
    assert f"Unlocked {user.email}." in result.output
    assert auth.sign_in(user.email, user.password).status_code == 303


def test_unlock_command_refuses_unknown_users(runner):
    result = runner.invoke(args=["users", "unlock", "nobody@example.com"])
    assert result.exit_code != 0
    assert "No user has the email nobody@example.com." in result.stderr
    assert "Traceback" not in result.output


def test_counter_is_per_account_not_per_address(auth, client, user):
    for n in range(5):
        client.post(
            "/sign_in/password",
            data={"email": user.email, "password": WRONG},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},
        )
    assert auth.sign_in(user.email, user.password).status_code == 422
