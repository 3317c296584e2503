"""Operator commands: users create, accounts create, accounts add-member, mail send-pending."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from terminus_hub.addresses import INVALID_EMAIL
from terminus_hub.core.membership import FIRST_WORKSPACE
from terminus_hub.core.signin import UNCONFIRMED
from terminus_hub.extensions import db
from terminus_hub.outbox import send_email
from terminus_hub.passwords import TOO_SHORT
from terminus_hub.passwords import TOO_WEAK
from tests import factories
from tests.conftest import AuthActions

EMAIL = "ada@example.com"
PASSWORD = factories.PASSWORD


def assert_clear_error(result: Result, message: str) -> None:
    """A failed command: non-zero exit, one error line saying why on stderr, no traceback."""
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert message in errors[0]
    assert result.stdout == ""
    assert "Traceback" not in result.output


def create_user(runner: FlaskCliRunner, *options: str, email: str = EMAIL) -> Result:
    args = ["users", "create", email, "--password", PASSWORD, "--name", "Ada", *options]
    return runner.invoke(args=args)


# users create


def test_users_create_confirmed_user_can_sign_in(runner: FlaskCliRunner, auth: AuthActions) -> None:
    result = create_user(runner, "--confirmed")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Created user {EMAIL} ")
    with auth.sign_in(EMAIL, PASSWORD) as response:
        assert response.status_code == 303


def test_users_create_without_confirmed_makes_an_unconfirmed_user(
    runner: FlaskCliRunner, auth: AuthActions
) -> None:
    result = create_user(runner)

    assert result.exit_code == 0, result.output
    assert "unconfirmed" in result.stdout
    with auth.sign_in(EMAIL, PASSWORD) as response:
        assert response.status_code == 403
        assert UNCONFIRMED in response.get_data(as_text=True)


def test_users_create_prompts_for_the_password_without_echoing_it(
    runner: FlaskCliRunner, auth: AuthActions
) -> None:
    args = ["users", "create", EMAIL, "--confirmed"]

    result = runner.invoke(args=args, input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with auth.sign_in(EMAIL, PASSWORD) as response:
        assert response.status_code == 303


@pytest.mark.parametrize(
    ("email", "password", "name", "message"),
    [
        ("not-an-email", PASSWORD, "Ada", INVALID_EMAIL),
        ("taken@example.com", PASSWORD, "Ada", "already exists"),
        (EMAIL, "password1234", "Ada", TOO_WEAK),
        (EMAIL, "Tr0ub4dor&3", "Ada", TOO_SHORT.format(min=12)),
        (EMAIL, PASSWORD, "Ada\x1b[2J\x00Lovelace", "printable"),
    ],
    ids=["malformed-email", "duplicate-email", "weak-password", "short-password", "control-name"],
)
def test_users_create_refuses_bad_input(
    app: Flask,
    runner: FlaskCliRunner,
    email: str,
    password: str,
    name: str,
    message: str,
) -> None:
    factories.make_user(app, email="taken@example.com")

    result = runner.invoke(
        args=["users", "create", email, "--password", password, "--name", name, "--confirmed"]
    )

    assert_clear_error(result, message)


def test_users_create_says_the_email_is_taken_before_asking_for_a_password(
    app: Flask, runner: FlaskCliRunner
) -> None:
    factories.make_user(app, email=EMAIL)
    result = runner.invoke(args=["users", "create", EMAIL], input="")
    assert_clear_error(result, "already exists")
    assert "Password" not in result.output


def test_a_weak_prompted_password_is_called_the_password_not_an_option(
    runner: FlaskCliRunner,
) -> None:
    result = runner.invoke(args=["users", "create", EMAIL], input="password1234\npassword1234\n")
    assert result.exit_code != 0
    assert f"Error: Password: {TOO_WEAK}" in result.stderr
    assert "--password" not in result.stderr


# accounts create


def test_accounts_create_makes_account_with_workspace_main(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, auth: AuthActions
) -> None:
    factories.make_user(app, email=EMAIL)

    result = runner.invoke(args=["accounts", "create", "Acme Corp", "--owner", EMAIL])

    assert result.exit_code == 0, result.output
    slug = re.match(r"Created account (\S+) ", result.stdout).group(1)
    with auth.sign_in(EMAIL, PASSWORD) as response:
        assert (response.status_code, response.location) == (303, f"/a/{slug}/")
    with client.get(f"/a/{slug}/") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Acme Corp" in page
    assert f">{FIRST_WORKSPACE}</a>" in page


@pytest.mark.parametrize(
    ("name", "owner", "message"),
    [
        ("Acme Corp", "nobody@example.com", "No user has the email nobody@example.com."),
        ("Acme Corp", "not-an-email", INVALID_EMAIL),
        ("   ", EMAIL, "printable"),
        ("Acme\x07Corp", EMAIL, "printable"),
    ],
    ids=["unknown-owner", "malformed-owner", "blank-name", "control-name"],
)
def test_accounts_create_refuses_bad_input(
    app: Flask, runner: FlaskCliRunner, name: str, owner: str, message: str
) -> None:
    factories.make_user(app, email=EMAIL)

    result = runner.invoke(args=["accounts", "create", name, "--owner", owner])

    assert_clear_error(result, message)


# accounts add-member


def test_accounts_create_twice_with_one_name_needs_allow_duplicate_name(
    app: Flask, runner: FlaskCliRunner
) -> None:
    factories.make_user(app, email=EMAIL)
    first = runner.invoke(args=["accounts", "create", "Acme Corp", "--owner", EMAIL])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["accounts", "create", "acme  corp", "--owner", EMAIL])
    assert_clear_error(again, "already belongs to an account named 'Acme Corp'")
    allowed = runner.invoke(
        args=["accounts", "create", "Acme Corp", "--owner", EMAIL, "--allow-duplicate-name"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.startswith("Created account acme-corp-")


def test_db_upgrade_to_an_unknown_revision_is_one_error_line(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["db", "upgrade", "bogusrev"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["Error: Can't locate revision identified by 'bogusrev'"], result.output


def test_accounts_add_member_gives_the_role(
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    auth: AuthActions,
    user: factories.Person,
) -> None:
    factories.make_user(app, email=EMAIL)

    result = runner.invoke(
        args=["accounts", "add-member", user.account_slug, EMAIL, "--role", "admin"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Added {EMAIL} to {user.account_slug} as admin."
    auth.sign_in(EMAIL, PASSWORD).close()
    with client.get(f"/a/{user.account_slug}/") as response:
        assert response.status_code == 200
        assert "Account · Admin" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("slug", "email", "role", "message"),
    [
        ("no-such-account", EMAIL, "admin", "No account has the slug no-such-account."),
        ("{slug}", "nobody@example.com", "admin", "No user has the email nobody@example.com."),
        ("{slug}", EMAIL, "superuser", "--role must be one of: owner, admin, member."),
        ("{slug}", "{owner}", "admin", "is already a member of"),
    ],
    ids=["unknown-slug", "unknown-email", "bad-role", "already-member"],
)
def test_accounts_add_member_refuses_bad_input(
    app: Flask,
    runner: FlaskCliRunner,
    user: factories.Person,
    slug: str,
    email: str,
    role: str,
    message: str,
) -> None:
    factories.make_user(app, email=EMAIL)
    known = {"slug": user.account_slug, "owner": user.email}

    result = runner.invoke(
        args=[
            "accounts",
            "add-member",
            slug.format(**known),
            email.format(**known),
            "--role",
            role,
        ]
    )

    assert_clear_error(result, message)


# mail send-pending


def test_mail_send_pending_prints_how_many_it_sent(app: Flask, runner: FlaskCliRunner) -> None:
    # Inside a request, as the app writes mail (the templates' context processor reads
    # current_user, which needs one); no response is made, so the mail stays pending.
    with app.test_request_context():
        person = SimpleNamespace(name="Ada")
        send_email(EMAIL, "confirm", user=person, url="http://localhost/confirm/x")
        send_email(EMAIL, "confirm", user=person, url="http://localhost/confirm/y")
        db.session.commit()

    first = runner.invoke(args=["mail", "send-pending"])
    second = runner.invoke(args=["mail", "send-pending"])

    assert (first.exit_code, first.stdout) == (0, "Sent 2 mail(s); gave up on 0.\n")
    assert (second.exit_code, second.stdout) == (0, "Sent 0 mail(s); gave up on 0.\n")
