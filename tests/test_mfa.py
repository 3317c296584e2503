"""Authenticator apps, recovery codes and the second-factor sign-in step, as people use them."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.accounts import mfa_views
from terminus_hub.auth import mfa_views as sign_in_views
from terminus_hub.core import mfa
from terminus_hub.core import signin
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import AuditEvent
from terminus_hub.models import RecoveryCode
from terminus_hub.models import TotpFactor
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import utcnow
from tests import factories
from tests.conftest import Outbox
from tests.factories import Person
from tests.factories import key_form

SECRET_FIELD = re.compile(r'id="totp-secret"[^>]*value="([A-Z2-7]+)"')
CODE_ITEM = re.compile(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>")


def code_at(secret: str, moment_offset: int = 0) -> str:
    """The code an authenticator app shows now (or that many 30-second steps away)."""
    totp = pyotp.TOTP(secret)
    return totp.at(utcnow().timestamp() + moment_offset * 30)


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Turn on an authenticator app through the pages; return its secret and recovery codes."""
    page = client.get("/settings/mfa/totp")
    assert page.status_code == 200, page.location
    secret = SECRET_FIELD.search(page.get_data(as_text=True))
    assert secret is not None
    done = client.post("/settings/mfa/totp", data={"code": code_at(secret.group(1))})
    assert done.status_code == 200, done.get_data(as_text=True)[:300]
    codes = CODE_ITEM.findall(done.get_data(as_text=True))
    return secret.group(1), codes


def signed_in(app: Flask, person: Person, secret: str | None = None) -> FlaskClient:
    """A client signed in with the password (and, for a person with an app, its code)."""
    client = app.test_client()
    if secret is None:
        factories.sign_in(client, person.email)
        return client
    assert password_step(client, person).location == "/sign_in/mfa"
    done = client.post("/sign_in/mfa", data={"code": code_at(secret)})
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    return client


def enrolled(app: Flask, person: Person) -> tuple[str, list[str]]:
    """Enrol at a moment already in the past, so the code used to enrol is spent by then;
    signed out again afterwards."""
    with freeze_time(utcnow() - timedelta(minutes=2)):
        client = signed_in(app, person)
        secret, codes = enrol(client)
        assert client.post("/sign_out").status_code == 303
        return secret, codes


def redirected(response, to: str) -> bool:  # type: ignore[no-untyped-def]
    """A redirect (302 from the sign-in guard, 303 from the app's own) whose target starts so."""
    return response.status_code in (302, 303) and response.location.startswith(to)


def password_step(client: FlaskClient, person: Person, next_path: str = "") -> object:
    data = {"email": person.email, "password": person.password, "next": next_path}
    return client.post("/sign_in/password", data=data)


def sessions_of(app: Flask, person: Person) -> int:
    with app.app_context():
        query = (
            select(func.count()).select_from(UserSession).where(UserSession.user_id == person.id)
        )
        return db.session.scalar(query) or 0


def failed_attempts(app: Flask, person: Person) -> int:
    with app.app_context():
        return db.session.get_one(User, person.id).failed_attempts


def last_sign_in(app: Flask) -> dict[str, object]:
    """The detail of the newest sign_in.succeeded event."""
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.kind == "sign_in.succeeded")
            .order_by(AuditEvent.created_at.desc())
        ).first()
        assert event is not None
        return dict(event.detail)


def kinds(app: Flask, person: Person) -> list[str]:
    with app.app_context():
        query = select(AuditEvent.kind).where(AuditEvent.user_id == person.id)
        return list(db.session.scalars(query.order_by(AuditEvent.created_at)))


# Enrolment ----------------------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_and_the_key_then_a_right_code_turns_it_on(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    client = signed_in(app, user)
    page = client.get("/settings/mfa/totp").get_data(as_text=True)
    assert "<svg" in page and "QR code to scan" in page
    secret = SECRET_FIELD.search(page)
    assert secret is not None and len(secret.group(1)) == 32

    wrong = client.post("/settings/mfa/totp", data={"code": "000000"})
    assert wrong.status_code == 422 and mfa_views.WRONG_CODE in wrong.get_data(as_text=True)
    not_digits = client.post("/settings/mfa/totp", data={"code": "12ab56"})
    assert not_digits.status_code == 422 and mfa_views.NOT_A_CODE in not_digits.get_data(True)
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is None

    done = client.post("/settings/mfa/totp", data={"code": code_at(secret.group(1))})
    assert done.status_code == 200
    codes = CODE_ITEM.findall(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "only time they are shown" in done.get_data(as_text=True)
    assert (
        done.headers["Cache-Control"].startswith("no-store")
        or "no-store" in (done.headers["Cache-Control"])
    )
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is not None
    assert "mfa.totp_enabled" in kinds(app, user)
    notice = outbox.messages(user.email)[-1]
    assert notice.template == "second_factor_changed"
    assert "authenticator app was set up" in notice.text_body

    settings = client.get("/settings").get_data(as_text=True)
    assert "Recovery codes left: <strong>10</strong>" in settings
    again = client.get("/settings/mfa/totp")
    assert again.status_code == 303 and again.location.endswith("/settings#second-factor")


def test_a_database_copy_holds_neither_the_secret_nor_the_recovery_codes(
    app: Flask, user: Person
) -> None:
    secret, codes = enrolled(app, user)
    with app.app_context():
        stored = db.session.scalars(select(TotpFactor.secret)).one()
        hashes = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert secret not in stored and stored.startswith("gAAAAA")  # a Fernet token
    plain = {code.replace("-", "") for code in codes}
    assert not hashes & {hashlib.sha256(c.encode()).hexdigest() for c in plain}
    assert not hashes & plain


def test_two_tabs_enrol_one_secret_and_an_abandoned_one_starts_again(
    app: Flask, user: Person
) -> None:
    client = signed_in(app, user)
    first = SECRET_FIELD.search(client.get("/settings/mfa/totp").get_data(as_text=True))
    second = SECRET_FIELD.search(client.get("/settings/mfa/totp").get_data(as_text=True))
    assert first and second and first.group(1) == second.group(1)

    with freeze_time(utcnow() + timedelta(minutes=mfa.PENDING_MINUTES, seconds=5)):
        # A fresh proof in the same session; the setup itself has expired.
        assert client.post("/reauth", data={"password": user.password}).status_code == 303
        late = client.post("/settings/mfa/totp", data={"code": code_at(first.group(1))})
        assert late.status_code == 422 and "timed out" in late.get_data(as_text=True)
        renewed = SECRET_FIELD.search(late.get_data(as_text=True))
        assert renewed and renewed.group(1) != first.group(1)
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is None


def test_a_secret_is_confirmed_only_by_the_session_it_was_shown_to(
    app: Flask, user: Person
) -> None:
    """A copied session cookie (or another browser) viewing the page gets its own secret, and
    the secret it saw before the person's own visit no longer confirms anything."""
    person = signed_in(app, user)
    other = signed_in(app, user)
    seen = SECRET_FIELD.search(other.get("/settings/mfa/totp").get_data(as_text=True))
    shown = SECRET_FIELD.search(person.get("/settings/mfa/totp").get_data(as_text=True))
    assert seen and shown and seen.group(1) != shown.group(1)
    late = other.post("/settings/mfa/totp", data={"code": code_at(seen.group(1))})
    assert late.status_code == 422 and "no longer in progress" in late.get_data(as_text=True)
    assert (
        person.post("/settings/mfa/totp", data={"code": code_at(seen.group(1))}).status_code == 422
    )
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is None


def test_the_enrolment_page_itself_needs_a_recent_proof(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    with freeze_time(utcnow() + timedelta(minutes=11)):
        page = client.get("/settings/mfa/totp")
        assert page.status_code == 303 and page.location == "/reauth?next=/settings/mfa/totp"
        assert client.head("/settings/mfa/totp").status_code == 303
        posted = client.post("/settings/mfa/totp", data={"code": "123456"})
        assert posted.status_code == 303 and posted.location.startswith("/reauth")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TotpFactor)) == 0


# The sign-in step ---------------------------------------------------------------------------


def test_a_right_password_leads_to_the_code_step_and_nothing_is_signed_in_yet(
    app: Flask, user: Person
) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    step = password_step(client, user, next_path="/settings")
    assert step.status_code == 303 and step.location == "/sign_in/mfa"
    assert sessions_of(app, user) == 0
    assert client.get("/accounts").status_code == 302  # to sign in: no session
    assert client.get(f"/a/{user.account_slug}/").status_code == 302
    assert client.get("/api/v1/account").status_code == 401
    page = client.get("/sign_in/mfa").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page

    done = client.post("/sign_in/mfa", data={"code": code_at(secret)})
    assert done.status_code == 303 and done.location == "/settings"
    assert sessions_of(app, user) == 1
    assert client.get("/settings").status_code == 200
    assert kinds(app, user)[-2:] == ["sign_in.second_factor_required", "sign_in.succeeded"]
    assert last_sign_in(app) == {"method": "password", "second_factor": "totp"}


def test_a_code_works_once_and_only_one_step_of_drift_is_accepted(app: Flask, user: Person) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    assert client.post("/sign_in/mfa", data={"code": code_at(secret, -1)}).status_code == 303

    replay = app.test_client()
    password_step(replay, user)
    again = replay.post("/sign_in/mfa", data={"code": code_at(secret, -1)})
    assert again.status_code == 422 and signin.WRONG_CODE in again.get_data(as_text=True)
    for far in (-2, 2):
        refused = replay.post("/sign_in/mfa", data={"code": code_at(secret, far)})
        assert refused.status_code == 422
    assert replay.post("/sign_in/mfa", data={"code": code_at(secret, 1)}).status_code == 303


def test_an_older_code_than_the_last_one_used_is_refused(app: Flask, user: Person) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    assert client.post("/sign_in/mfa", data={"code": code_at(secret, 0)}).status_code == 303
    other = app.test_client()
    password_step(other, user)
    assert other.post("/sign_in/mfa", data={"code": code_at(secret, -1)}).status_code == 422


def test_wrong_codes_count_toward_the_lockout_and_a_right_password_does_not_clear_them(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    enrolled(app, user)
    client = app.test_client()
    for wrong in range(4):
        assert password_step(client, user).location == "/sign_in/mfa"  # costs no attempt
        assert client.post("/sign_in/mfa", data={"code": f"00000{wrong}"}).status_code == 422
        assert failed_attempts(app, user) == wrong + 1  # and clears none
    password_step(client, user)
    locked = client.post("/sign_in/mfa", data={"code": "000009"})  # the fifth wrong code
    assert locked.status_code == 403 and signin.LOCKED_AT_CODE in locked.get_data(as_text=True)
    assert sessions_of(app, user) == 0
    unlock = [m for m in outbox.messages(user.email) if m.template == "unlock"]
    assert len(unlock) == 1 and "Your password was entered correctly" in unlock[0].text_body
    # Locked: the password step refuses, and the code step is gone.
    assert password_step(client, user).status_code == 422
    assert redirected(client.get("/sign_in/mfa"), "/sign_in")


def test_the_code_locks_at_the_threshold(app: Flask, user: Person) -> None:
    enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    statuses = [
        client.post("/sign_in/mfa", data={"code": f"00000{n}"}).status_code for n in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 403]
    with app.app_context():
        assert db.session.get_one(User, user.id).locked_until is not None


def test_the_right_password_on_the_last_try_still_leaves_the_code_its_attempt(
    app: Flask, user: Person
) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    for _ in range(4):
        wrong = client.post("/sign_in/password", data={"email": user.email, "password": "no"})
        assert wrong.status_code == 422
    assert password_step(client, user).location == "/sign_in/mfa"
    assert client.post("/sign_in/mfa", data={"code": code_at(secret)}).status_code == 303
    assert failed_attempts(app, user) == 0


def test_unlock_mail_is_capped_per_address_like_recovery_mail(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    enrolled(app, user)
    client = app.test_client()
    for _ in range(5):  # lock, unlock by link, lock again…
        password_step(client, user)
        for n in range(5):
            client.post("/sign_in/mfa", data={"code": f"00000{n}"})
        unlock = [m for m in outbox.messages(user.email) if m.template == "unlock"]
        if len(unlock) < app.config["TERMINUS_MAILS_PER_ADDRESS_PER_HOUR"]:
            assert client.post(outbox.last_link(user.email)).status_code == 303
        else:
            with app.app_context():  # the lock runs out instead
                db.session.get_one(User, user.id).locked_until = utcnow()
                db.session.commit()
    unlock = [m for m in outbox.messages(user.email) if m.template == "unlock"]
    assert len(unlock) == app.config["TERMINUS_MAILS_PER_ADDRESS_PER_HOUR"] == 3
    assert kinds(app, user).count("account.locked") == 5


def test_a_malformed_code_is_explained_and_not_counted(app: Flask, user: Person) -> None:
    enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    for code in ("12345", "1234567", "abc", "     "):
        response = client.post("/sign_in/mfa", data={"code": code})
        assert response.status_code == 422
        text = response.get_data(as_text=True)
        assert signin.MALFORMED_CODE in text or "Enter the code" in text
        assert code.strip() == "" or f'value="{code}"' not in text
    assert failed_attempts(app, user) == 0


def test_the_step_expires_after_five_minutes(app: Flask, user: Person) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    with freeze_time(utcnow() + timedelta(minutes=5, seconds=1)):
        late = client.post("/sign_in/mfa", data={"code": code_at(secret)})
        assert redirected(late, "/sign_in") and late.location == "/sign_in"
        assert sign_in_views.EXPIRED in client.get("/sign_in").get_data(as_text=True)
    assert sessions_of(app, user) == 0


def test_a_password_reset_between_the_steps_ends_the_step(app: Flask, user: Person) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    with app.app_context():
        person = db.session.get_one(User, user.id)
        person.password_hash = "$2b$04$" + "x" * 53
        db.session.commit()
    assert redirected(client.post("/sign_in/mfa", data={"code": code_at(secret)}), "/sign_in")
    assert sessions_of(app, user) == 0


def test_the_step_is_not_reachable_without_the_password(app: Flask, user: Person) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    assert redirected(client.get("/sign_in/mfa"), "/sign_in")
    assert redirected(client.post("/sign_in/mfa", data={"code": code_at(secret)}), "/sign_in")
    wrong = client.post("/sign_in/password", data={"email": user.email, "password": "nope"})
    assert wrong.status_code == 422
    assert redirected(client.post("/sign_in/mfa", data={"code": code_at(secret)}), "/sign_in")
    assert sessions_of(app, user) == 0


def test_the_unconfirmed_rule_still_comes_first(app: Flask) -> None:
    person = factories.make_person(app)
    enrolled(app, person)
    with app.app_context():
        db.session.get_one(User, person.id).confirmed_at = None
        db.session.commit()
    client = app.test_client()
    answer = password_step(client, person)
    assert answer.status_code == 403 and signin.UNCONFIRMED in answer.get_data(as_text=True)


# Recovery codes -----------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once_however_it_is_typed(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    _, codes = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    typed = " " + codes[0].upper().replace("-", " - ") + " "
    done = client.post("/sign_in/mfa", data={"code": typed}, follow_redirects=True)
    assert done.status_code == 200 and "9 left" in done.get_data(as_text=True)
    assert "mfa.recovery_code_used" in kinds(app, user)
    assert "recovery code was just used" in outbox.messages(user.email)[-1].text_body

    again = app.test_client()
    password_step(again, user)
    assert again.post("/sign_in/mfa", data={"code": codes[0]}).status_code == 422
    assert again.post("/sign_in/mfa", data={"code": codes[1]}).status_code == 303


def test_new_recovery_codes_replace_the_old_ones(app: Flask, user: Person, outbox: Outbox) -> None:
    secret, old = enrolled(app, user)
    client = signed_in(app, user, secret)
    made = client.post("/settings/mfa/recovery_codes")
    assert made.status_code == 200
    new = CODE_ITEM.findall(made.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert "New recovery codes were made" in outbox.messages(user.email)[-1].text_body

    trying = app.test_client()
    password_step(trying, user)
    assert trying.post("/sign_in/mfa", data={"code": old[0]}).status_code == 422
    assert trying.post("/sign_in/mfa", data={"code": new[0]}).status_code == 303


def test_recovery_codes_need_a_second_factor_and_a_recent_proof(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    refused = client.post("/settings/mfa/recovery_codes", follow_redirects=True)
    assert "Set up a second factor first" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    enrolled(app, user)
    with freeze_time(utcnow() + timedelta(minutes=11)):
        stale = client.post("/settings/mfa/recovery_codes")
        assert stale.status_code == 303 and stale.location.startswith("/reauth")


# Removing, re-authenticating, the operator ----------------------------------------------------


def test_removing_the_app_needs_a_recent_proof_and_then_sign_in_needs_only_the_password(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    secret, _ = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    client.post("/sign_in/mfa", data={"code": code_at(secret)})
    with freeze_time(utcnow() + timedelta(minutes=11)):
        stale = client.post("/settings/mfa/totp/disable")
        assert stale.status_code == 303 and stale.location.startswith("/reauth")
        # The app's code proves it is you, instead of the password.
        proved = client.post("/reauth", data={"code": code_at(secret, 1), "next": "/settings"})
        # The interrupted form is offered again, to send with one click.
        assert proved.status_code == 200 and "/settings/mfa/totp/disable" in proved.get_data(True)
        removed = client.post("/settings/mfa/totp/disable", follow_redirects=True)
        assert mfa_views.TOTP_REMOVED in removed.get_data(as_text=True)
    assert "authenticator app of your Terminus Hub account was removed" in (
        outbox.messages(user.email)[-1].text_body
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
        assert db.session.get_one(User, user.id).mfa_enabled_at is None
    fresh = app.test_client()
    answer = password_step(fresh, user)
    assert answer.status_code == 303 and answer.location != "/sign_in/mfa"


def test_reauth_with_a_wrong_code_is_refused_and_counted(app: Flask, user: Person) -> None:
    secret, codes = enrolled(app, user)
    client = app.test_client()
    password_step(client, user)
    client.post("/sign_in/mfa", data={"code": code_at(secret)})
    with freeze_time(utcnow() + timedelta(minutes=11)):
        page = client.get("/reauth?next=/settings").get_data(as_text=True)
        assert 'name="code"' in page
        wrong = client.post("/reauth", data={"code": "000000", "next": "/settings"})
        assert wrong.status_code == 422 and signin.WRONG_CODE in wrong.get_data(as_text=True)
        assert failed_attempts(app, user) == 1
        # Recovery codes are for signing in, not for re-authentication.
        spent = client.post("/reauth", data={"code": codes[0], "next": "/settings"})
        assert spent.status_code == 422
        assert client.post("/settings/mfa/totp/disable").status_code == 303
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is not None


def test_an_operator_resets_a_persons_second_factors(
    app: Flask, runner, user: Person, outbox: Outbox
) -> None:
    enrolled(app, user)
    result = runner.invoke(args=["users", "reset-mfa", user.email.upper()])
    assert result.exit_code == 0, result.output
    assert "Removed the second factors" in result.output
    assert "operator removed the second factors" in outbox.messages(user.email)[-1].text_body
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TotpFactor)) == 0
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.kind == "mfa.reset")).one()
        assert event.actor_type == "operator"
    again = runner.invoke(args=["users", "reset-mfa", user.email])
    assert again.exit_code == 0 and "nothing changed" in again.output
    unknown = runner.invoke(args=["users", "reset-mfa", "nobody@example.com"])
    assert unknown.exit_code != 0 and "Error:" in unknown.output
    client = app.test_client()
    assert password_step(client, user).location != "/sign_in/mfa"


# The policy ---------------------------------------------------------------------------------


def _admin_of(app: Flask, owner: Person) -> Person:
    admin = factories.make_user(app)
    assert owner.account_slug
    factories.make_membership(app, owner.account_slug, admin.email, "admin")
    return Person(admin.id, admin.email, factories.PASSWORD, owner.account_slug)


def test_an_owner_needs_a_second_factor_before_requiring_one(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    path = f"/a/{user.account_slug}/settings"
    refused = client.post(path, data={"require_mfa_for_managers": "y"})
    assert refused.status_code == 422 and "your own second factor" in refused.get_data(True)
    enrol(client)
    assert client.post(path, data={"require_mfa_for_managers": "y"}).status_code == 303
    assert "account.mfa_policy_changed" in _account_kinds(app)
    page = client.get(path).get_data(as_text=True)
    assert "checked" in page


def _account_kinds(app: Flask) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(select(AuditEvent.kind).where(AuditEvent.account_id.is_not(None)))
        )


def test_only_owners_see_the_account_settings(app: Flask, user: Person) -> None:
    admin = _admin_of(app, user)
    client = signed_in(app, admin)
    assert client.get(f"/a/{user.account_slug}/settings").status_code == 403


def test_the_policy_sends_an_admin_to_enrol_before_anything_else(app: Flask, user: Person) -> None:
    admin = _admin_of(app, user)
    member = factories.make_user(app)
    assert user.account_slug
    factories.make_membership(app, user.account_slug, member.email, "member")
    owner = signed_in(app, user)
    enrol(owner)
    owner.post(f"/a/{user.account_slug}/settings", data={"require_mfa_for_managers": "y"})

    client = app.test_client()
    landed = password_step(client, admin)
    assert landed.status_code == 303 and landed.location.startswith("/settings/mfa/totp?next=")
    for path in (f"/a/{user.account_slug}/", f"/a/{user.account_slug}/api_keys"):
        assert redirected(client.get(path), "/settings/mfa/totp?next=")
    api = client.get("/api/v1/account")
    assert api.status_code == 403 and api.get_json()["error"]["code"] == "second_factor_required"
    enrol(client)
    assert client.get(f"/a/{user.account_slug}/").status_code == 200
    # And then the last factor stays.
    kept = client.post("/settings/mfa/totp/disable", follow_redirects=True)
    assert mfa.POLICY_KEEPS_IT in kept.get_data(as_text=True)

    plain = app.test_client()
    factories.sign_in(plain, member.email)  # members are not asked
    assert plain.get(f"/a/{user.account_slug}/").status_code == 200


@pytest.mark.app_config(TERMINUS_REQUIRE_MFA_FOR_MANAGERS=True)
def test_the_installation_can_require_it_of_every_owner(app: Flask, user: Person) -> None:
    client = app.test_client()
    landed = password_step(client, user)
    assert landed.location.startswith("/settings/mfa/totp")
    assert redirected(client.get(f"/a/{user.account_slug}/"), "/settings/mfa/totp")
    page = client.get(landed.location).get_data(as_text=True)
    assert "asks its owners and admins" in page or "asks its owners" in page
    enrol(client)
    assert client.get(f"/a/{user.account_slug}/settings").status_code == 200
    assert "Required by this Terminus Hub installation" in client.get(
        f"/a/{user.account_slug}/settings"
    ).get_data(as_text=True)


def test_an_unfinished_setup_is_not_a_factor_to_reset(
    app: Flask, runner, user: Person, outbox: Outbox
) -> None:
    client = signed_in(app, user)
    assert client.get("/settings/mfa/totp").status_code == 200  # started, never finished
    mails = len(outbox.messages(user.email))
    result = runner.invoke(args=["users", "reset-mfa", user.email])
    assert result.exit_code == 0 and "nothing changed" in result.output
    assert len(outbox.messages(user.email)) == mails
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TotpFactor)) == 0


def test_a_blocked_form_post_returns_to_the_account_home_after_enrolment(
    app: Flask, user: Person
) -> None:
    admin = _admin_of(app, user)
    with app.app_context():
        db.session.scalars(select(Account)).one().require_mfa_for_managers = True
        db.session.commit()
    client = signed_in(app, admin)
    blocked = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("x"))
    assert redirected(blocked, f"/settings/mfa/totp?next=/a/{user.account_slug}/")
