"""/settings: a signed-in person changes their name and password."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from terminus_hub.accounts.settings_views import PASSWORD_CHANGED
from terminus_hub.accounts.settings_views import WRONG_CURRENT
from terminus_hub.extensions import db
from terminus_hub.models import AuditEvent
from terminus_hub.models import User
from terminus_hub.passwords import TOO_WEAK
from terminus_hub.passwords import verify_password
from tests import factories
from tests.conftest import Outbox
from tests.factories import Person

NEW = "a brand new passphrase, please"


def _signed_in(app: Flask, person: Person) -> FlaskClient:
    client = app.test_client()
    factories.sign_in(client, person.email)
    return client


def _stored_hash(app: Flask, person: Person) -> str | None:
    with app.app_context():
        return db.session.get_one(User, person.id).password_hash


def test_the_page_shows_name_and_password_forms(app: Flask, user: Person) -> None:
    page = _signed_in(app, user).get("/settings").get_data(as_text=True)
    for name in ('name="name"', 'name="current_password"', 'name="password"'):
        assert name in page
    assert 'autocomplete="current-password"' in page and 'autocomplete="new-password"' in page


def test_settings_need_a_signed_in_person(client: FlaskClient) -> None:
    assert client.get("/settings").status_code in (302, 303)
    assert client.post("/settings/password", data={"password": NEW}).status_code in (302, 303)


def test_a_name_is_changed_and_checked(app: Flask, user: Person) -> None:
    client = _signed_in(app, user)
    assert client.post("/settings/name", data={"name": "  Ada   King "}).status_code == 303
    with app.app_context():
        assert db.session.get_one(User, user.id).name == "Ada King"
    refused = client.post("/settings/name", data={"name": "Ada\x1b[2J"})
    assert refused.status_code == 422
    with app.app_context():
        assert db.session.get_one(User, user.id).name == "Ada King"


def test_a_password_change_ends_other_sessions_and_mails_a_notice(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    here, elsewhere = _signed_in(app, user), _signed_in(app, user)
    response = here.post(
        "/settings/password", data={"current_password": user.password, "password": NEW}
    )
    assert response.status_code == 303
    assert PASSWORD_CHANGED in here.get("/settings").get_data(as_text=True)
    assert verify_password(NEW, _stored_hash(app, user))
    assert elsewhere.get("/accounts").status_code in (302, 303)  # signed out
    assert here.get("/accounts").status_code == 200  # this browser stays
    [notice] = outbox.messages(user.email)
    assert notice.template == "password_changed"
    with app.app_context():
        kinds = set(db.session.scalars(select(AuditEvent.kind)))
    assert "password.changed" in kinds


def test_a_wrong_current_password_changes_nothing(app: Flask, user: Person, outbox) -> None:
    before = _stored_hash(app, user)
    client = _signed_in(app, user)
    response = client.post(
        "/settings/password", data={"current_password": "not it at all", "password": NEW}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and WRONG_CURRENT in page
    assert NEW not in page and "not it at all" not in page
    assert _stored_hash(app, user) == before
    assert outbox.messages(user.email) == []


def test_a_weak_new_password_is_refused_with_the_reason(app: Flask, user: Person) -> None:
    before = _stored_hash(app, user)
    client = _signed_in(app, user)
    response = client.post(
        "/settings/password", data={"current_password": user.password, "password": "password1234"}
    )
    assert response.status_code == 422 and TOO_WEAK in response.get_data(as_text=True)
    assert _stored_hash(app, user) == before


def test_a_person_without_a_password_is_told_their_idp_keeps_it(app: Flask) -> None:
    person = factories.make_person(app)
    client = _signed_in(app, person)
    with app.app_context():
        db.session.get_one(User, person.id).password_hash = None
        db.session.commit()
    page = client.get("/settings").get_data(as_text=True)
    assert "identity provider" in page and 'name="current_password"' not in page
    refused = client.post("/settings/password", data={"current_password": "", "password": NEW})
    assert refused.status_code == 403
    assert _stored_hash(app, person) is None


# -- email change ---------------------------------------------------------------------------------

NEW_EMAIL = "ada.new@example.com"


def _ask(client: FlaskClient, person: Person, email: str = NEW_EMAIL, password: str = "") -> object:
    return client.post(
        "/settings/email", data={"email": email, "current_password": password or person.password}
    )


def _email_of(app: Flask, person: Person) -> str:
    with app.app_context():
        return db.session.get_one(User, person.id).email


def test_an_email_changes_only_when_the_mailed_link_is_used(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    client = _signed_in(app, user)
    response = _ask(client, user, " Ada.New@EXAMPLE.com ")
    assert response.status_code == 303
    assert _email_of(app, user) == user.email  # not yet
    [notice] = outbox.messages(user.email)
    assert notice.template == "email_change_requested" and NEW_EMAIL in notice.text_body
    link = outbox.last_link(NEW_EMAIL)
    assert link.startswith("/settings/email/confirm/")

    stranger = app.test_client()  # the link works in any browser: it proves the address
    assert "Use this email" in stranger.get(link).get_data(as_text=True)
    assert _email_of(app, user) == user.email  # a GET (a mail scanner) changes nothing
    done = stranger.post(link)
    assert done.status_code == 303
    assert _email_of(app, user) == NEW_EMAIL
    changed = outbox.messages(user.email)[-1]
    assert changed.template == "email_changed" and NEW_EMAIL in changed.text_body
    assert stranger.post(link).status_code == 400  # once only
    factories.sign_in(app.test_client(), NEW_EMAIL)


def test_a_wrong_password_or_bad_address_sends_nothing(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    client = _signed_in(app, user)
    for email, password, status in (
        (NEW_EMAIL, "not my password", 422),
        ("not an email", "", 422),
        (user.email, "", 422),
    ):
        response = _ask(client, user, email, password)
        assert response.status_code == status
        assert "not my password" not in response.get_data(as_text=True)
    assert outbox.messages() == []
    assert _email_of(app, user) == user.email


def test_a_taken_address_gets_the_same_answer_and_its_owner_a_notice(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    other = factories.make_person(app, email="taken@example.com")
    client = _signed_in(app, user)
    taken = _ask(client, user, other.email)
    free = _ask(client, user, "free@example.com")
    assert taken.status_code == free.status_code == 303
    assert [m.template for m in outbox.messages(other.email)] == ["email_taken"]
    assert "/confirm/" not in outbox.messages(other.email)[0].text_body
    assert _email_of(app, user) == user.email


def test_a_link_to_an_address_taken_meanwhile_changes_nothing(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    client = _signed_in(app, user)
    _ask(client, user)
    link = outbox.last_link(NEW_EMAIL)
    factories.make_person(app, email=NEW_EMAIL)  # someone signs up with it first
    response = app.test_client().post(link)
    assert response.status_code == 409
    assert _email_of(app, user) == user.email


def test_an_address_at_a_proven_sso_domain_is_refused(app, client, signer, outbox) -> None:
    from tests.sso_helpers import DOMAIN
    from tests.sso_helpers import make_sso

    make_sso(app, client, signer)
    person = factories.make_person(app)
    response = _ask(_signed_in(app, person), person, f"someone@{DOMAIN}")
    assert response.status_code == 422
    assert "identity provider" in response.get_data(as_text=True)
    assert outbox.messages(f"someone@{DOMAIN}") == []


def test_a_forged_or_old_link_is_refused(app: Flask, user: Person, outbox: Outbox) -> None:
    client = _signed_in(app, user)
    _ask(client, user)
    link = outbox.last_link(NEW_EMAIL)
    assert app.test_client().post(link + "x").status_code == 400
    # A password change kills the link (it is bound to the password too).
    client.post("/settings/password", data={"current_password": user.password, "password": NEW})
    assert app.test_client().post(link).status_code == 400
    assert _email_of(app, user) == user.email


def test_a_link_is_dead_after_the_address_changes_away_and_back(
    app: Flask, user: Person, outbox: Outbox
) -> None:
    client = _signed_in(app, user)
    _ask(client, user, "c@example.com")
    old_link = outbox.last_link("c@example.com")
    _ask(client, user, "b@example.com")
    app.test_client().post(outbox.last_link("b@example.com"))  # A to B
    factories.sign_in(client, "b@example.com")
    _ask(client, user, user.email)
    app.test_client().post(outbox.last_link(user.email))  # and back to A
    assert _email_of(app, user) == user.email
    assert app.test_client().post(old_link).status_code == 400
    assert _email_of(app, user) == user.email


def test_a_link_cannot_take_a_person_out_of_sso_enforced_since(app, client, signer, outbox):
    from terminus_hub.models import SsoConnection
    from tests.sso_helpers import DOMAIN
    from tests.sso_helpers import make_sso

    make_sso(app, client, signer)
    vic = factories.make_person(app, email=f"vic@{DOMAIN}")
    _ask(_signed_in(app, vic), vic, "vic@elsewhere.example")
    link = outbox.last_link("vic@elsewhere.example")
    with app.app_context():
        db.session.execute(SsoConnection.__table__.update().values(enforced=True))
        db.session.commit()
    assert app.test_client().post(link).status_code == 409
    assert _email_of(app, vic) == vic.email


def test_every_id_on_the_page_is_unique_so_each_label_finds_its_field(
    app: Flask, user: Person
) -> None:
    page = _signed_in(app, user).get("/settings").get_data(as_text=True)
    ids = re.findall(r'\sid="([^"]+)"', page)
    repeated = {i for i in ids if ids.count(i) > 1} - {"csrf_token"}
    assert not repeated
    for label in re.findall(r'<label for="([^"]+)"', page):
        assert re.search(rf'<(input|select|textarea)[^>]*\sid="{label}"', page), label
