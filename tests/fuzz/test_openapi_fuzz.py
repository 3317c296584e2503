"""Schema-driven fuzzing: schemathesis sends generated requests to every documented operation.

Runs alone (`make fuzz`, tox env `fuzz`): every answer must be a documented status with a body
matching its schema, and never a server error.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings

from terminus_hub import create_app
from terminus_hub.core.keyring import create_key
from terminus_hub.extensions import db
from terminus_hub.models import Account
from tests.conftest import BASE_CONFIG
from tests.factories import CSRF_META
from tests.factories import make_person
from tests.factories import sign_in

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://"},
        instance_path=str(tmp_path_factory.mktemp("instance")),
    )
    with app.app_context():
        db.create_all()
    person = make_person(app)
    with app.app_context():
        account = db.session.query(Account).filter_by(slug=person.account_slug).one()
        _, token = create_key(account, "fuzz", creator=None)
        db.session.commit()
    app.config["FUZZ_TOKEN"] = token
    yield app
    with app.app_context():
        db.engine.dispose()


def test_every_operation_answers_as_documented(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            # Opaque cursors and ids of objects that do not exist are valid by the schema yet
            # rightly refused (422, 404), so "valid data must be accepted" cannot hold here.
            case.call_and_validate(
                headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance]
            )

        fuzz()


def test_every_owner_operation_answers_as_documented(fuzz_app):
    """The admin-only operations (members, invitations, audit log, key management) refuse keys,
    so they are fuzzed with an owner's session: its cookie and the page's CSRF token."""
    person = make_person(fuzz_app)
    browser = fuzz_app.test_client()
    sign_in(browser, person.email)
    page = browser.get(f"/a/{person.account_slug}/").get_data(as_text=True)
    csrf = CSRF_META.search(page).group(1)
    cookie = browser.get_cookie(fuzz_app.config["SESSION_COOKIE_NAME"])
    headers = {"X-CSRFToken": csrf}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    owner_only = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if "x-required-scope" not in operation.definition.raw
        and operation.definition.raw.get("security") != []
    ]
    assert len(owner_only) >= 10

    for operation in owner_only:

        @given(case=operation.as_strategy())
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            # Schemathesis sends cookies it is given this way (a Cookie header is replaced).
            case.cookies = {**(case.cookies or {}), cookie.key: cookie.value}
            # Every case carries the real session, so "bad credentials are refused" is for the
            # key run and the authentication tests, not this one.
            case.call_and_validate(
                headers=headers,
                excluded_checks=[
                    schemathesis.checks.positive_data_acceptance,
                    schemathesis.checks.ignored_auth,
                ],
            )

        fuzz()
    # The session survived every request it made.
    assert browser.get("/api/v1/account").status_code == 200
