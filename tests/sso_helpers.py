"""An account whose SSO trusts an independent signer, and how a browser drives its ACS."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.core.sso_connections import configure
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import AuditEvent
from terminus_hub.models import UserSession
from terminus_hub.sso.views import SSO_FAILED
from tests import factories
from tests.saml_signer import Signer
from tests.saml_signer import encode
from tests.saml_signer import request_id_from

DOMAIN = "acme.example"
OWNER = f"owner@{DOMAIN}"
SECURITY_LOG = "terminus_hub.security"


@dataclass
class Sso:
    """An account (``slug``) whose connection trusts ``signer``; ``client`` is a browser."""

    app: Flask
    client: FlaskClient
    signer: Signer
    slug: str

    @property
    def acs_url(self) -> str:
        return f"http://localhost/sso/{self.slug}/acs"

    @property
    def entity_id(self) -> str:
        return f"http://localhost/sso/{self.slug}/metadata"

    def start(self, client: FlaskClient | None = None, **query: str) -> str:
        """Start a sign-in in this (or another) browser; return the AuthnRequest id."""
        return request_id_from(go_to_idp(client or self.client, self.slug, **query).location)

    def respond(self, request_id: str | None, email: str, **kwargs: Any) -> bytes:
        """A response the signer writes for ``email``, addressed to this account's ACS."""
        return self.signer.response(
            request_id, acs_url=self.acs_url, audience=self.entity_id, email=email, **kwargs
        )

    def post(self, xml: bytes | str, client: FlaskClient | None = None) -> Any:
        return (client or self.client).post(
            f"/sso/{self.slug}/acs", data={"SAMLResponse": encode(xml)}
        )


def go_to_idp(client: FlaskClient, slug: str, **query: str) -> Any:
    """Start a sign-in as a browser would, answered by a 303 to the IdP: GET /sso/<slug>/login,
    or for the settings page's test sign-in (``test="1"``) its form's POST."""
    send = client.post if query.get("test") == "1" else client.get
    response = send(f"/sso/{slug}/login", query_string=query)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response


def vouch(app: Flask, slug: str, *domains: str) -> None:
    """Make the account's claims on these domains verified, as an operator's --verified does."""
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        configure(account, metadata_xml=None, by_operator=True, add=list(domains), vouch=True)
        db.session.commit()


def make_sso(
    app: Flask,
    client: FlaskClient,
    signer: Signer,
    *,
    metadata: str | None = None,
    domains: tuple[str, ...] = (DOMAIN,),
    verified: bool = True,
) -> Sso:
    """An account owned by OWNER with SSO through ``signer`` (or the given metadata); its
    domains verified (as an operator's --verified does) unless told otherwise."""
    factories.make_user(app, email=OWNER)
    slug = factories.make_account(app, OWNER, name="Acme")
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        configure(
            account,
            metadata_xml=metadata or signer.metadata(),
            by_operator=True,
            add=list(domains),
            enforce=False,
            vouch=verified,
        )
        db.session.commit()
    return Sso(app=app, client=client, signer=signer, slug=slug)


def signed_in_emails(app: Flask) -> list[str]:
    """The email of each person with a live session (tests use one browser at a time)."""
    with app.app_context():
        return [row.user.email for row in db.session.scalars(select(UserSession))]


def count_sessions(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession))


def failure_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "sso.sign_in_failed")
        ).all()
        for event in events:
            db.session.expunge(event)
        return list(events)


def sso_failure_reasons(caplog: Any) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == SECURITY_LOG
        and r.levelno == logging.WARNING
        and "authn_login_fail method=saml" in r.getMessage()
    ]


def assert_refused(sso: Sso, response: Any, caplog: Any, reason: str | None = None) -> str:
    """The generic failure page, nobody signed in, a logged reason and an audit event."""
    page = response.get_data(as_text=True)
    assert response.status_code == 403, page[:500]
    assert SSO_FAILED in page
    assert "Traceback" not in page
    assert count_sessions(sso.app) == 0
    assert sso.client.get("/accounts").status_code == 302  # not signed in
    reasons = sso_failure_reasons(caplog)
    assert len(reasons) == 1, reasons
    if reason is not None:
        assert reason in reasons[0], reasons[0]
    assert len(failure_events(sso.app)) == 1
    return reasons[0]
