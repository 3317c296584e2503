"""The SSO settings page /a/<slug>/sso and `sso configure` (issue 5, docs/authentication.md).

An upload is checked on the spot (one IdP, a signing certificate, a redirect SSO URL) and a bad
one leaves the old configuration alone. From the web an admin may claim only the domain of their
own confirmed email, and may enforce only after a test sign-in through the IdP succeeded; the
operator's command may do both at once.
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.core.idp_metadata import BAD_CERT
from terminus_hub.core.idp_metadata import NO_REDIRECT_SSO
from terminus_hub.core.idp_metadata import NO_SIGNING_CERT
from terminus_hub.core.idp_metadata import NOT_METADATA
from terminus_hub.core.idp_metadata import NOT_ONE_IDP
from terminus_hub.core.idp_metadata import NOT_UTF8
from terminus_hub.core.sso_connections import ENFORCE_NEEDS_TEST
from terminus_hub.core.sso_domains import PUBLIC_DOMAIN
from terminus_hub.core.sso_domains import VERIFIED_ELSEWHERE
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import SamlRequest
from terminus_hub.models import SsoConnection
from terminus_hub.sso.views import SAVED
from terminus_hub.sso.views import TEST_SUCCEEDED
from tests import factories
from tests.factories import sign_in
from tests.saml_idp import TestIdp
from tests.test_sso import configure_sso
from tests.test_sso import post_acs
from tests.test_sso import sp_urls
from tests.test_sso import start_login
from tests.test_sso import trust

DOMAIN = "acme.example"
OWNER = f"owner@{DOMAIN}"


# -- the identity provider and the SP key, shared by the module (as in test_sso.py) -----------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> TestIdp:
    return TestIdp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(autouse=True)
def _shared_sp_key(shared_sp_key: None) -> None:
    """Every test here uses the run's SP key pair."""


# -- helpers ----------------------------------------------------------------------------------


def make_account(app: Flask, owner_email: str = OWNER) -> str:
    """An account named Acme (slug acme) owned by a confirmed person with that email."""
    factories.make_user(app, email=owner_email)
    return factories.make_account(app, owner_email, name="Acme")


@pytest.fixture
def owner(app: Flask, client: FlaskClient) -> str:
    """The signed-in owner of account ``acme``; returns the slug."""
    slug = make_account(app)
    sign_in(client, OWNER)
    return slug


def upload(
    client: FlaskClient,
    slug: str,
    metadata: str | bytes | None = None,
    *,
    domains: str = DOMAIN,
    enforced: bool = False,
    **fields: str,
) -> Any:
    data: dict[str, Any] = {"domains": domains, **fields}
    if metadata is not None:
        raw = metadata.encode() if isinstance(metadata, str) else metadata
        data["metadata"] = (io.BytesIO(raw), "idp.xml")
    if enforced:
        data["enforced"] = "y"
    response = client.post(f"/a/{slug}/sso", data=data, content_type="multipart/form-data")
    # The test client spools a large body to a temporary file, closed only with follow_redirects.
    response.request.input_stream.close()
    return response


def field_error(response: Any, field: str) -> str:
    """The error shown under a form field (the page must be a 422)."""
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page[:300]
    match = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    assert match, f"no error under {field}"
    return html.unescape(match.group(1))


def connection_state(app: Flask, slug: str) -> tuple[str, list[str], bool, int] | None:
    """What is stored for the account: metadata, domains, enforced, metadata version."""
    with app.app_context():
        connection = db.session.scalar(
            select(SsoConnection).join(Account).where(Account.slug == slug)
        )
        if connection is None:
            return None
        return (
            connection.idp_metadata_xml,
            [d.domain for d in connection.domains],
            connection.enforced,
            connection.metadata_version,
        )


def without_signing_key(metadata_xml: str) -> str:
    stripped = re.sub(r"<(\w+:)?KeyDescriptor\b.*?</(\w+:)?KeyDescriptor>", "", metadata_xml)
    assert "X509Certificate" not in stripped
    return stripped


def two_idps(idp: TestIdp) -> str:
    body = re.sub(r"^<\?xml[^>]*\?>", "", idp.metadata_xml)
    other = body.replace(idp.entity_id, "https://second-idp.example.test/metadata")
    return (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{body}{other}</md:EntitiesDescriptor>"
    )


# -- who may see the page ---------------------------------------------------------------------


def test_owner_sees_what_to_give_the_idp(app, client, owner):
    response = client.get(f"/a/{owner}/sso")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    entity_id, acs_url = sp_urls(owner)
    assert entity_id in page and acs_url in page
    assert 'enctype="multipart/form-data"' in page
    assert 'name="metadata"' in page and 'name="domains"' in page and 'name="enforced"' in page


def test_the_page_leads_with_setup_then_with_the_connections_state(app, client, idp, owner):
    """Before a connection: what to give the IdP, then the form. After: its status and
    domains first, the form next, what the IdP was given last."""

    def order(page: str) -> list[str]:
        return re.findall(r'<section class="card" id="([^"]+)"', page)

    assert order(client.get(f"/a/{owner}/sso").get_data(as_text=True)) == ["sp-details", "sso-form"]
    upload(client, owner, idp.metadata_xml)
    page = client.get(f"/a/{owner}/sso").get_data(as_text=True)
    assert order(page) == ["sso-status", "sso-domains", "sso-form", "sp-details"]


def test_admin_may_open_the_page(app, client):
    slug = make_account(app)
    factories.make_user(app, email=f"adm@{DOMAIN}")
    factories.make_membership(app, slug, f"adm@{DOMAIN}", "admin")
    sign_in(client, f"adm@{DOMAIN}")

    assert client.get(f"/a/{slug}/sso").status_code == 200


def test_member_gets_403_and_cannot_post(app, client, idp):
    slug = make_account(app)
    factories.make_user(app, email=f"mem@{DOMAIN}")
    factories.make_membership(app, slug, f"mem@{DOMAIN}", "member")
    sign_in(client, f"mem@{DOMAIN}")

    assert client.get(f"/a/{slug}/sso").status_code == 403
    assert upload(client, slug, idp.metadata_xml).status_code == 403
    assert connection_state(app, slug) is None


def test_non_member_gets_404(app, client, idp):
    slug = make_account(app)
    stranger = factories.make_person(app, email="stranger@elsewhere.example")
    sign_in(client, stranger.email)

    assert client.get(f"/a/{slug}/sso").status_code == 404
    assert upload(client, slug, idp.metadata_xml).status_code == 404
    assert client.get("/a/no-such-account/sso").status_code == 404


def test_anonymous_is_sent_to_sign_in(app, client):
    slug = make_account(app)

    response = client.get(f"/a/{slug}/sso")

    assert response.status_code == 302
    assert response.location.startswith("/sign_in")


# -- uploads ----------------------------------------------------------------------------------


def test_good_metadata_is_saved(app, client, idp, owner):
    response = upload(client, owner, idp.metadata_xml)

    assert response.status_code == 303
    assert response.location == f"/a/{owner}/sso"
    assert connection_state(app, owner) == (idp.metadata_xml, [DOMAIN], False, 1)
    page = client.get(response.location).get_data(as_text=True)
    assert SAVED in page
    assert f'action="/sso/{owner}/login?test=1"' in page  # the test sign-in button (a POST)


def test_saved_metadata_sends_people_to_that_idp(app, client, idp, owner):
    upload(client, owner, idp.metadata_xml)
    trust(client, idp, owner)

    request = start_login(client, idp, owner, test="1")

    assert request.acs_url == sp_urls(owner)[1]


@pytest.mark.parametrize(
    ("case", "metadata", "message"),
    [
        ("malformed XML", "<md:EntityDescriptor entityID='x'><unclosed>", NOT_METADATA),
        ("not XML at all", "just some text", NOT_METADATA),
        ("XML that is not metadata", "<note><to>Ana</to><body>hi</body></note>", NOT_METADATA),
        (
            "metadata without a signing certificate",
            lambda idp: without_signing_key(idp.metadata_xml),
            NO_SIGNING_CERT,
        ),
        ("metadata with two IdPs", two_idps, NOT_ONE_IDP),
        (
            "metadata with an entity expansion",
            '<!DOCTYPE md [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            'entityID="&b;"/>',
            NOT_METADATA,
        ),
    ],
)
def test_bad_upload_gets_a_field_error_and_keeps_the_old_configuration(
    app, client, idp, owner, case, metadata, message
):
    assert upload(client, owner, idp.metadata_xml).status_code == 303
    before = connection_state(app, owner)
    xml = metadata(idp) if callable(metadata) else metadata

    response = upload(client, owner, xml, domains=f"{DOMAIN} beta.example")

    assert field_error(response, "metadata") == message
    assert connection_state(app, owner) == before


def post_binding_only(metadata_xml: str) -> str:
    """IdP metadata whose only SSO URL takes HTTP-POST: the app sends people by redirect."""
    changed = metadata_xml.replace("bindings:HTTP-Redirect", "bindings:HTTP-POST")
    assert changed != metadata_xml
    return changed


def test_metadata_without_a_redirect_sso_url_gets_a_field_error(app, client, idp, owner):
    assert upload(client, owner, idp.metadata_xml).status_code == 303
    before = connection_state(app, owner)

    response = upload(client, owner, post_binding_only(idp.metadata_xml))

    assert field_error(response, "metadata") == NO_REDIRECT_SSO
    assert connection_state(app, owner) == before


def test_bad_first_upload_saves_nothing(app, client, idp, owner):
    response = upload(client, owner, "<html><body>not metadata</body></html>")

    assert field_error(response, "metadata") == NOT_METADATA
    assert connection_state(app, owner) is None


def test_non_utf8_upload_gets_a_field_error(app, client, owner):
    response = upload(client, owner, b"\xff\xfe<\x00x\x00/\x00>\x00")

    assert "UTF-8" in field_error(response, "metadata")
    assert connection_state(app, owner) is None


def test_oversized_upload_gets_a_field_error(app, client, idp, owner):
    padding = "<!--" + "x" * (600 * 1024) + "-->"

    response = upload(client, owner, idp.metadata_xml + padding)

    assert "too large" in field_error(response, "metadata")
    assert connection_state(app, owner) is None


def test_first_save_needs_metadata(app, client, owner):
    response = upload(client, owner)

    assert "metadata" in field_error(response, "metadata")
    assert connection_state(app, owner) is None


def test_three_fields_instead_of_a_file(app, client, idp, owner):
    response = upload(
        client,
        owner,
        entity_id=idp.entity_id,
        sso_url=idp.sso_url,
        certificate=idp.cert_pem,
    )

    assert response.status_code == 303
    metadata_xml, domains, enforced, _ = connection_state(app, owner)
    assert domains == [DOMAIN] and not enforced
    assert idp.entity_id in metadata_xml and idp.sso_url in metadata_xml
    trust(client, idp, owner)
    request = start_login(client, idp, owner, test="1")  # the built metadata works
    assert post_acs(client, owner, idp.respond(request, OWNER)).status_code == 303


def test_three_fields_with_a_bad_certificate(app, client, idp, owner):
    response = upload(
        client,
        owner,
        entity_id=idp.entity_id,
        sso_url=idp.sso_url,
        certificate="-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----",
    )

    assert field_error(response, "certificate") == BAD_CERT
    assert connection_state(app, owner) is None


def test_three_fields_need_all_three(app, client, idp, owner):
    response = upload(client, owner, entity_id=idp.entity_id, sso_url=idp.sso_url)

    assert "together" in field_error(response, "entity_id")
    assert connection_state(app, owner) is None


def test_domains_keep_what_is_saved_when_no_new_metadata_is_given(app, client, idp, owner):
    upload(client, owner, idp.metadata_xml)

    response = upload(client, owner, domains=f"  {DOMAIN.upper()}, ")

    assert response.status_code == 303
    assert connection_state(app, owner) == (idp.metadata_xml, [DOMAIN], False, 1)


@pytest.mark.parametrize("domains", ["", "not a domain", "acme", "-acme.example", "a@acme.example"])
def test_invalid_domains_get_a_field_error(app, client, idp, owner, domains):
    response = upload(client, owner, idp.metadata_xml, domains=domains)

    assert field_error(response, "domains")
    assert connection_state(app, owner) is None


# -- which domains an admin may claim ---------------------------------------------------------


def test_admin_may_claim_any_domain_but_only_as_an_unverified_claim(app, client, idp):
    slug = make_account(app, owner_email="owner@elsewhere.example")
    factories.make_user(app, email=f"adm@{DOMAIN}")
    factories.make_membership(app, slug, f"adm@{DOMAIN}", "admin")
    sign_in(client, f"adm@{DOMAIN}")

    response = upload(client, slug, idp.metadata_xml, domains=f"{DOMAIN} beta.example")

    assert response.status_code == 303
    assert connection_state(app, slug)[1] == [DOMAIN, "beta.example"]
    page = client.get(f"/a/{slug}/sso").get_data(as_text=True)
    assert page.count("Unverified.") == 2
    assert "_terminus-hub.beta.example" in page and "terminus-hub-verification=" in page


@pytest.mark.parametrize("domains", ["gmail.com", f"{DOMAIN} outlook.com", "mail.yahoo.com"])
def test_public_mail_domains_cannot_be_claimed(app, client, idp, owner, domains):
    response = upload(client, owner, idp.metadata_xml, domains=domains)

    assert "belongs to a public email provider" in field_error(response, "domains")
    assert connection_state(app, owner) is None


@pytest.mark.app_config(TERMINUS_PUBLIC_EMAIL_DOMAINS=["Mail.Example"])
def test_the_setting_extends_the_public_mail_domains(app, client, idp, owner):
    response = upload(client, owner, idp.metadata_xml, domains="mail.example")

    assert field_error(response, "domains") == PUBLIC_DOMAIN.format(domain="mail.example")


def test_domain_verified_by_another_account_cannot_be_claimed(app, client, idp, owner):
    configure_sso(app, client, idp, domains=(DOMAIN,), name="Other")  # the operator vouched

    response = upload(client, owner, idp.metadata_xml)

    assert field_error(response, "domains") == VERIFIED_ELSEWHERE.format(domain=DOMAIN)
    assert connection_state(app, owner) is None
    assert connection_state(app, "other")[1] == [DOMAIN]


def test_domains_the_operator_gave_stay_savable_from_the_web(app, client, runner, idp, tmp_path):
    slug = make_account(app)
    metadata_file = tmp_path / "idp.xml"
    metadata_file.write_text(idp.metadata_xml)
    args = ["sso", "configure", slug, "--domain", DOMAIN, "--domain", "beta.example"]
    assert runner.invoke(args=[*args, "--metadata", str(metadata_file)]).exit_code == 0
    sign_in(client, OWNER)

    response = upload(client, slug, domains=f"{DOMAIN} beta.example")

    assert response.status_code == 303
    assert connection_state(app, slug)[1] == ["acme.example", "beta.example"]


# -- enforcement needs a test sign-in ---------------------------------------------------------


def test_enforce_before_a_test_sign_in_is_refused(app, client, idp, owner):
    response = upload(client, owner, idp.metadata_xml, enforced=True)

    assert field_error(response, "enforced") == ENFORCE_NEEDS_TEST
    assert connection_state(app, owner) is None


def test_enforce_after_a_successful_test_sign_in(app, client, runner, idp, owner):
    assert upload(client, owner, idp.metadata_xml).status_code == 303
    assert field_error(upload(client, owner, enforced=True), "enforced") == ENFORCE_NEEDS_TEST
    trust(client, idp, owner)

    request = start_login(client, idp, owner, test="1")
    tested = post_acs(client, owner, idp.respond(request, OWNER))

    assert tested.status_code == 303
    assert tested.location == f"/a/{owner}/sso"
    assert "Last successful test sign-in" in client.get(tested.location).get_data(as_text=True)
    response = upload(client, owner, enforced=True)
    assert response.status_code == 303
    assert connection_state(app, owner)[2] is True
    # The email step sends the domain to the IdP only once the domain is verified.
    client.post("/sign_out")
    step = client.post("/sign_in/email", data={"email": f"someone@{DOMAIN}"})
    assert step.status_code == 200
    assert sso_configure(runner, owner, "--domain", DOMAIN, "--verified").exit_code == 0
    step = client.post("/sign_in/email", data={"email": f"someone@{DOMAIN}"})
    assert step.status_code == 303 and step.location.startswith(f"/sso/{owner}/login")


def test_successful_test_sign_in_says_so_on_the_settings_page(app, client, idp, owner):
    upload(client, owner, idp.metadata_xml)
    trust(client, idp, owner)
    request = start_login(client, idp, owner, test="1")

    tested = post_acs(client, owner, idp.respond(request, OWNER))

    assert TEST_SUCCEEDED in client.get(tested.location).get_data(as_text=True)


def test_failed_test_sign_in_does_not_allow_enforcing(app, client, idp, owner):
    upload(client, owner, idp.metadata_xml)
    trust(client, idp, owner)
    request = start_login(client, idp, owner, test="1")

    failed = post_acs(client, owner, idp.respond(request, "owner@other.example"))

    assert failed.status_code == 403
    sign_in(client, OWNER)
    assert field_error(upload(client, owner, enforced=True), "enforced") == ENFORCE_NEEDS_TEST


@pytest.mark.parametrize("who", [None, f"member@{DOMAIN}", "owner@other.example"])
def test_only_the_accounts_owners_and_admins_may_run_a_test_sign_in(app, client, idp, who):
    slug = configure_sso(app, client, idp, owner_email=OWNER)
    if who is not None:
        factories.make_user(app, email=who)
        if who.endswith(DOMAIN):
            factories.make_membership(app, slug, who, "member")
        else:
            factories.make_account(app, who, name="Other")
        sign_in(client, who)

    response = client.post(f"/sso/{slug}/login?test=1")

    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SamlRequest)) == 0
    sign_in(client, OWNER)
    assert field_error(upload(client, slug, enforced=True), "enforced") == ENFORCE_NEEDS_TEST


def test_new_metadata_needs_a_new_test_sign_in(app, client, idp, owner, tmp_path):
    upload(client, owner, idp.metadata_xml)
    trust(client, idp, owner)
    request = start_login(client, idp, owner, test="1")
    assert post_acs(client, owner, idp.respond(request, OWNER)).status_code == 303
    other_idp = TestIdp(tmp_path, entity_id="https://other-idp.example.test/metadata")

    response = upload(client, owner, other_idp.metadata_xml, enforced=True)

    assert field_error(response, "enforced") == ENFORCE_NEEDS_TEST
    assert connection_state(app, owner)[0] == idp.metadata_xml
    assert upload(client, owner, other_idp.metadata_xml).status_code == 303
    assert connection_state(app, owner)[3] == 2
    assert field_error(upload(client, owner, enforced=True), "enforced") == ENFORCE_NEEDS_TEST


def test_enforcement_can_be_switched_off_from_the_web(app, client, idp):
    slug = configure_sso(app, client, idp, enforce=True, owner_email=OWNER)
    sign_in(client, OWNER)  # owners keep their password

    page = client.get(f"/a/{slug}/sso").get_data(as_text=True)
    response = upload(client, slug)

    assert re.search(r'<input[^>]*checked[^>]*name="enforced"|name="enforced"[^>]*checked', page)
    assert response.status_code == 303
    assert connection_state(app, slug)[2] is False


# -- the command line -------------------------------------------------------------------------


def assert_clear_error(result: Result, text: str) -> None:
    """Non-zero exit, one `Error:` line on stderr saying why, nothing on stdout, no traceback."""
    assert result.exit_code not in (0, None), result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert text in errors[0], errors[0]
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def metadata_file(tmp_path, idp):
    path = tmp_path / "idp.xml"
    path.write_text(idp.metadata_xml)
    return path


def sso_configure(runner: FlaskCliRunner, slug: str, *args: str) -> Result:
    return runner.invoke(args=["sso", "configure", slug, *args])


def test_cli_configures_and_enforces_in_one_line(app, client, runner, idp, metadata_file):
    slug = make_account(app)

    result = sso_configure(
        runner, slug, "--domain", DOMAIN, "--domain", "Beta.Example", "--metadata",
        str(metadata_file), "--enforce", "--verified",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"SSO for {slug}; enforced."
    assert connection_state(app, slug) == (idp.metadata_xml, [DOMAIN, "beta.example"], True, 1)
    assert "acme.example: verified (operator)" in result.stdout
    step = client.post("/sign_in/email", data={"email": f"ana@{DOMAIN}"})
    assert step.status_code == 303 and step.location.startswith(f"/sso/{slug}/login")


def test_cli_no_enforce_switches_enforcement_off(app, runner, metadata_file):
    slug = make_account(app)
    base = ["--domain", DOMAIN, "--metadata", str(metadata_file)]
    assert sso_configure(runner, slug, *base, "--enforce").exit_code == 0

    result = sso_configure(runner, slug, *base, "--no-enforce")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"SSO for {slug}; not enforced."
    assert connection_state(app, slug)[2] is False


def test_cli_may_claim_any_domain(app, runner, metadata_file):
    slug = make_account(app, owner_email="owner@elsewhere.example")

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(metadata_file))

    assert result.exit_code == 0, result.output
    assert connection_state(app, slug)[1] == [DOMAIN]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<note>not metadata</note>", NOT_METADATA),
        ("<unclosed", NOT_METADATA),
        ("", NOT_METADATA),
        (b"\xff\xfe\x00garbage", f"--metadata: {NOT_UTF8}"),
    ],
)
def test_cli_bad_metadata_file(app, runner, tmp_path, content, message):
    slug = make_account(app)
    path = tmp_path / "bad.xml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(path))

    assert_clear_error(result, message)
    assert connection_state(app, slug) is None


def test_cli_metadata_without_a_signing_certificate(app, runner, tmp_path, idp):
    slug = make_account(app)
    path = tmp_path / "nokey.xml"
    path.write_text(without_signing_key(idp.metadata_xml))

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(path))

    assert_clear_error(result, f"--metadata: {NO_SIGNING_CERT}")


def test_cli_metadata_without_a_redirect_sso_url(app, runner, tmp_path, idp):
    slug = make_account(app)
    path = tmp_path / "post-only.xml"
    path.write_text(post_binding_only(idp.metadata_xml))

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(path))

    assert_clear_error(result, f"--metadata: {NO_REDIRECT_SSO}")


def test_cli_missing_metadata_file(app, runner, tmp_path):
    slug = make_account(app)

    result = sso_configure(
        runner, slug, "--domain", DOMAIN, "--metadata", str(tmp_path / "nowhere.xml")
    )

    assert_clear_error(result, "--metadata: cannot read")
    assert connection_state(app, slug) is None


@pytest.mark.parametrize("domain", ["not a domain", "acme", "ana@acme.example", "x" * 300])
def test_cli_invalid_domain(app, runner, metadata_file, domain):
    slug = make_account(app)

    result = sso_configure(runner, slug, "--domain", domain, "--metadata", str(metadata_file))

    assert_clear_error(result, "--domain:")
    assert "is not a domain name" in result.stderr
    assert connection_state(app, slug) is None


def test_cli_domain_of_another_account(app, client, runner, idp, metadata_file):
    configure_sso(app, client, idp, domains=(DOMAIN,), name="Other")
    slug = make_account(app)

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(metadata_file))

    assert_clear_error(result, f"--domain: {VERIFIED_ELSEWHERE.format(domain=DOMAIN)}")
    assert connection_state(app, slug) is None
    assert connection_state(app, "other")[1] == [DOMAIN]


def test_cli_unknown_account(runner, metadata_file):
    result = sso_configure(runner, "no-such", "--domain", DOMAIN, "--metadata", str(metadata_file))

    assert_clear_error(result, "no-such")
