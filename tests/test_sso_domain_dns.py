"""Verifying SSO domains against a real DNS server on 127.0.0.1 (docs/authentication.md).

The app asks ``tests.dns_server`` (dnslib, authoritative for whatever the test publishes)
through dnspython, exactly as it asks a real resolver in production.
"""

from __future__ import annotations

import html
import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import AuditEvent
from terminus_hub.models import SsoConnection
from terminus_hub.models import SsoDomain
from tests import factories
from tests.conftest import Outbox
from tests.factories import sign_in
from tests.saml_signer import Signer

DOMAIN = "acme.example"
RECORD = f"_terminus-hub.{DOMAIN}"


@pytest.fixture(autouse=True)
def _dns(app: Flask, dns_server: Any, shared_sp_key: None) -> None:
    """The app asks the test's DNS server, with a short timeout."""
    app.config["TERMINUS_DNS_NAMESERVERS"] = [dns_server.address]
    app.config["TERMINUS_DNS_TIMEOUT"] = 1


def claimed(app: Flask, client: FlaskClient, signer: Signer, owner: str, name: str) -> str:
    """An account whose signed-in owner claimed DOMAIN from the settings page; its slug."""
    factories.make_user(app, email=owner)
    slug = factories.make_account(app, owner, name=name)
    sign_in(client, owner)
    response = client.post(
        f"/a/{slug}/sso",
        data={"domains": DOMAIN, "metadata": (io.BytesIO(signer.metadata().encode()), "i.xml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return slug


def claim_of(app: Flask, slug: str) -> SsoDomain | None:
    with app.app_context():
        row = db.session.scalar(
            select(SsoDomain)
            .join(SsoConnection, SsoConnection.id == SsoDomain.connection_id)
            .join(Account, Account.id == SsoConnection.account_id)
            .where(Account.slug == slug, SsoDomain.domain == DOMAIN)
        )
        if row is not None:
            db.session.expunge(row)
        return row


def verify(client: FlaskClient, slug: str, domain: str = DOMAIN) -> Any:
    return client.post(f"/a/{slug}/sso/domains/{domain}/verify")


def result_line(response: Any) -> str:
    page = response.get_data(as_text=True)
    start = page.index('id="domain-check"')
    return html.unescape(page[start : page.index("</p>", start)])


@pytest.fixture
def acme(app: Flask, client: FlaskClient, signer: Signer) -> str:
    return claimed(app, client, signer, f"owner@{DOMAIN}", "Acme")


# -- the settings page ----------------------------------------------------------------------


def test_the_page_shows_the_record_to_publish(app, client, acme):
    page = client.get(f"/a/{acme}/sso").get_data(as_text=True)
    token = claim_of(app, acme).verification_token

    assert RECORD in page
    assert f"terminus-hub-verification={token}" in page
    assert "Unverified." in page
    assert f'action="/a/{acme}/sso/domains/{DOMAIN}/verify"' in page  # a plain form: no JS


def test_publishing_the_record_and_pressing_verify_verifies(app, client, acme, dns_server):
    token = claim_of(app, acme).verification_token
    dns_server.set_txt(RECORD, f"terminus-hub-verification={token}")

    response = verify(client, acme)

    assert response.status_code == 200
    assert "the domain is verified" in result_line(response)
    assert "Verified</strong> by DNS" in response.get_data(as_text=True)
    row = claim_of(app, acme)
    assert row.is_verified and row.verified_by == "dns"
    with app.app_context():
        kinds = db.session.scalars(select(AuditEvent.kind)).all()
    assert "sso.domain_verified" in kinds


@pytest.mark.parametrize(
    ("publish", "expected"),
    [
        (None, "no DNS record named _terminus-hub.acme.example (NXDOMAIN)"),
        (("terminus-hub-verification=someone-elses",), "not this account’s token"),
        (("v=spf1 -all",), "has TXT records, but none is"),
    ],
)
def test_a_missing_or_wrong_record_says_what_dns_answered(
    app, client, acme, dns_server, publish, expected
):
    if publish:
        dns_server.set_txt(RECORD, *publish)

    response = verify(client, acme)

    assert response.status_code == 200
    assert expected in result_line(response)
    assert not claim_of(app, acme).is_verified


def test_dns_that_does_not_answer_is_a_clear_message(app, client, acme, dns_server):
    dns_server.silent(RECORD)

    response = verify(client, acme)

    assert "did not answer" in result_line(response)
    assert not claim_of(app, acme).is_verified


def test_only_the_accounts_owners_and_admins_may_verify(app, client, acme, dns_server):
    token = claim_of(app, acme).verification_token
    dns_server.set_txt(RECORD, f"terminus-hub-verification={token}")
    factories.make_user(app, email=f"member@{DOMAIN}")
    factories.make_membership(app, acme, f"member@{DOMAIN}", "member")
    factories.make_person(app, email="stranger@other.example")
    member, stranger, anonymous = app.test_client(), app.test_client(), app.test_client()
    sign_in(member, f"member@{DOMAIN}")
    sign_in(stranger, "stranger@other.example")

    assert verify(member, acme).status_code == 403
    assert verify(stranger, acme).status_code == 404
    assert verify(anonymous, acme).status_code == 302
    assert verify(client, acme, "other.example").status_code == 404
    assert not claim_of(app, acme).is_verified


def test_the_verifier_wins_a_contested_domain(app, client, signer, acme, dns_server):
    squatter = app.test_client()
    eve = claimed(app, squatter, Signer("https://idp.eve.example/"), f"eve@{DOMAIN}", "Eve")
    token = claim_of(app, acme).verification_token
    dns_server.set_txt(RECORD, f"terminus-hub-verification={token}")

    assert "the domain is verified" in result_line(verify(client, acme))
    eves_try = verify(squatter, eve)

    assert claim_of(app, eve) is None  # dropped when Acme verified
    assert eves_try.status_code == 404
    reclaim = squatter.post(f"/a/{eve}/sso", data={"domains": DOMAIN})
    assert "is verified by another account" in reclaim.get_data(as_text=True)


# -- the command line -------------------------------------------------------------------------


def test_the_cli_verifies(app, runner, acme, dns_server):
    token = claim_of(app, acme).verification_token
    dns_server.set_txt(RECORD, ("terminus-hub-verification=", token))  # split in two strings

    result = runner.invoke(args=["sso", "verify-domain", acme, DOMAIN.upper()])

    assert result.exit_code == 0, result.output
    assert f"{DOMAIN} is verified for {acme}." in result.output
    assert claim_of(app, acme).is_verified


def test_the_cli_says_why_a_domain_is_not_verified(app, runner, acme):
    result = runner.invoke(args=["sso", "verify-domain", acme, DOMAIN])

    assert result.exit_code == 1
    assert "NXDOMAIN" in result.stderr
    assert "Traceback" not in result.output


def test_the_cli_refuses_an_unclaimed_domain(app, runner, acme):
    result = runner.invoke(args=["sso", "verify-domain", acme, "beta.example"])

    assert result.exit_code == 1
    assert "has not claimed the domain beta.example" in result.stderr


# -- the daily re-check -------------------------------------------------------------------------


@pytest.fixture
def verified(app, client, acme, dns_server) -> str:
    token = claim_of(app, acme).verification_token
    dns_server.set_txt(RECORD, f"terminus-hub-verification={token}")
    assert "the domain is verified" in result_line(verify(client, acme))
    return acme


def recheck(runner) -> str:
    result = runner.invoke(args=["sso", "recheck-domains"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_record_still_there_keeps_the_domain(app, runner, verified):
    assert "1 still verified" in recheck(runner)
    assert claim_of(app, verified).is_verified


def test_a_record_gone_twice_unverifies_and_mails_the_owners(
    app, client, runner, verified, dns_server
):
    dns_server.remove(RECORD)

    first = recheck(runner)
    warned = client.get(f"/a/{verified}/sso").get_data(as_text=True)
    assert "1 failed once" in first
    assert claim_of(app, verified).is_verified
    assert "the last re-check failed" in warned
    second = recheck(runner)

    assert "1 unverified now" in second
    assert not claim_of(app, verified).is_verified
    [mail] = Outbox(app).messages(f"owner@{DOMAIN}")
    assert DOMAIN in mail.subject or DOMAIN in mail.text_body
    assert RECORD in mail.text_body
    with app.app_context():
        kinds = db.session.scalars(select(AuditEvent.kind)).all()
    assert "sso.domain_unverified" in kinds
    step = app.test_client().post("/sign_in/email", data={"email": f"ana@{DOMAIN}"})
    assert step.status_code == 200  # no longer routed


def test_a_restored_record_resets_the_count(app, runner, verified, dns_server):
    token = claim_of(app, verified).verification_token
    dns_server.remove(RECORD)
    recheck(runner)
    dns_server.set_txt(RECORD, f"terminus-hub-verification={token}")
    recheck(runner)
    dns_server.remove(RECORD)

    recheck(runner)

    assert claim_of(app, verified).is_verified  # one failure, not two in a row


@pytest.mark.parametrize("fault", ["servfail", "silent"])
def test_dns_that_cannot_answer_counts_for_nothing(app, runner, verified, dns_server, fault):
    getattr(dns_server, fault)(RECORD)

    outputs = [recheck(runner) for _ in range(3)]

    assert all("1 could not be checked" in out for out in outputs)
    row = claim_of(app, verified)
    assert row.is_verified and row.check_failures == 0


def test_operator_vouched_domains_are_not_rechecked(app, client, runner, signer):
    factories.make_user(app, email=f"boss@{DOMAIN}")
    slug = factories.make_account(app, f"boss@{DOMAIN}", name="Acme")
    path = f"{app.instance_path}.idp.xml"
    with open(path, "w") as f:
        f.write(signer.metadata())
    args = ["sso", "configure", slug, "--domain", DOMAIN, "--metadata", path, "--verified"]
    assert runner.invoke(args=args).exit_code == 0

    assert "0 still verified" in recheck(runner)
    assert claim_of(app, slug).is_verified


def test_vouching_for_a_dns_verified_domain_stops_its_recheck(app, runner, verified, dns_server):
    vouched = runner.invoke(args=["sso", "configure", verified, "--domain", DOMAIN, "--verified"])
    assert vouched.exit_code == 0, vouched.output
    dns_server.remove(RECORD)

    outputs = [recheck(runner) for _ in range(2)]

    assert all("0 still verified" in out for out in outputs)
    assert claim_of(app, verified).verified_by == "operator"
    assert claim_of(app, verified).is_verified
