"""Sign-up: user, owned account, workspace Main, confirmation mail; no second account."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import User
from terminus_hub.passwords import AVOID_CONTEXT
from terminus_hub.passwords import TOO_WEAK
from tests import factories

GOOD = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": "correct horse battery staple",
}


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_sign_up_page_has_the_three_fields(client):
    page = client.get("/sign_up").get_data(as_text=True)
    for name in ("name", "email", "password"):
        assert f'name="{name}"' in page
    assert 'autocomplete="new-password"' in page


def test_sign_up_creates_unconfirmed_user_owned_account_and_main(app, client, outbox):
    response = client.post("/sign_up", data=GOOD)
    assert response.status_code == 303
    assert response.location == "/sign_up/check_email"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        assert user.confirmed_at is None
        [membership] = user.memberships
        assert membership.role == "owner"
        assert [w.name for w in membership.account.workspaces] == ["Main"]
    [mail] = outbox.messages("ada@example.com")
    assert "/confirm/" in mail.text_body and "/confirm/" in mail.html_body


def test_mail_to_an_unconfirmed_address_carries_no_text_the_visitor_typed(app, client, outbox):
    # Otherwise sign-up sends our mail, with any words in it, to any address anyone types.
    spam = "Win a prize at prize.example"
    client.post("/sign_up", data={**GOOD, "name": spam})
    client.post("/confirm/resend", data={"email": GOOD["email"]})
    client.post("/password/forgot", data={"email": GOOD["email"]})
    mails = outbox.messages(GOOD["email"])
    assert mails
    for mail in mails:
        assert "prize" not in mail.subject + mail.text_body + mail.html_body
    assert mails[0].text_body.startswith("Hello,")


def test_a_confirmed_persons_mail_greets_them_by_name(app, outbox):
    person = factories.make_user(app, name="Ada Lovelace")
    app.test_client().post("/password/forgot", data={"email": person.email})
    assert outbox.messages(person.email)[-1].text_body.startswith("Hello Ada Lovelace,")


def test_sign_up_stores_the_email_in_canonical_form(app, client):
    client.post("/sign_up", data={**GOOD, "email": "  Ada@EXAMPLE.com "})
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "ada@example.com"


def test_sign_up_with_htmx_redirects_with_hx_redirect(client, hx):
    response = client.post("/sign_up", data=GOOD, headers=hx)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/sign_up/check_email"


@pytest.mark.parametrize("variant", ["ada@example.com", "ADA@Example.COM", " ada@example.com "])
def test_existing_email_gets_the_same_screen_and_a_notice(app, client, outbox, variant):
    factories.make_person(app, email="ada@example.com")
    accounts_before = _count(app, Account)
    response = client.post("/sign_up", data={**GOOD, "email": variant})
    assert response.status_code == 303
    assert response.location == "/sign_up/check_email"
    assert _count(app, User) == 1
    assert _count(app, Account) == accounts_before
    [mail] = outbox.messages("ada@example.com")
    assert "already has one" in mail.text_body
    assert "/confirm/" not in mail.text_body


def test_check_email_page_offers_resend_for_the_address_just_used(client):
    client.post("/sign_up", data=GOOD)
    page = client.get("/sign_up/check_email").get_data(as_text=True)
    assert "Check your email" in page
    assert 'action="/confirm/resend"' in page
    assert 'value="ada@example.com"' in page


def test_sign_up_ignores_extra_fields(app, client):
    victim = factories.make_person(app)
    client.post(
        "/sign_up",
        data={**GOOD, "confirmed": "true", "role": "owner", "account_id": victim.account_slug},
    )
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        assert user.confirmed_at is None
        assert [m.account.slug for m in user.memberships] != [victim.account_slug]
        assert len(user.memberships) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter your name."),
        ("name", "   ", "Enter your name."),
        ("name", "x" * 121, "Use letters, spaces and punctuation only"),
        ("name", "Eve\r\nBcc: attacker@evil.example", None),
        ("email", "", "Enter your email address."),
        ("email", "not-an-email", "Enter an email address like name@example.com."),
        ("email", "a@example.com\r\nBcc: x@evil.example", "Enter an email address"),
        ("email", "ü@example.com", "Enter an email address like name@example.com."),
        ("password", "", "Enter your password."),
        ("password", "short pw", "Use at least 12 characters."),
        ("password", "x" * 1025, "Use at most 1024 characters."),
        ("password", "password1234", TOO_WEAK),
        ("password", "qwertyuiopas", TOO_WEAK),
        ("password", "Terminus Hub 2025!", AVOID_CONTEXT),
        ("password", "terminushub123", AVOID_CONTEXT),
        ("password", "adaadaadaadaada", TOO_WEAK),
    ],
)
def test_bad_sign_up_input_is_shown_next_to_its_field(app, client, field, value, message):
    data = {**GOOD, field: value}
    response = client.post("/sign_up", data=data)
    page = response.get_data(as_text=True)
    if message is None:  # a CR/LF name is folded onto one line, never put into a header
        with app.app_context():
            name = db.session.scalar(select(User.name))
        assert name is None or ("\r" not in name and "\n" not in name)
        return
    assert response.status_code == 422
    assert message in page
    assert f'id="{field}-error"' in page
    assert _count(app, User) == 0


def test_bad_input_keeps_everything_typed_except_the_password(client):
    response = client.post("/sign_up", data={**GOOD, "password": "short pw"})
    page = response.get_data(as_text=True)
    assert 'value="Ada Lovelace"' in page
    assert 'value="ada@example.com"' in page
    assert "short pw" not in page


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "y" * 40 + " unrelated words follow " + "z" * 37,  # 100 characters
        "Ünïcødé pässwörds wörk tøø, 日本語も",
        "🦄 rainbow unicorn 🌈 over the hills",
        "plain words without digits or symbols",
        "".join(f"{n:04x}-w{n % 7}rd " for n in range(103))[:1024],  # 1,024 characters
    ],
)
def test_accepted_passwords_sign_in_afterwards(app, client, auth, password):
    response = client.post("/sign_up", data={**GOOD, "password": password})
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User))
        user.confirmed_at = user.created_at
        db.session.commit()
    assert auth.sign_in("ada@example.com", password).status_code == 303
