"""Mail end to end: sign-up mail through a real SMTP server, a server down, slow or refusing."""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import update
from werkzeug.test import TestResponse

from terminus_hub.addresses import INVALID_EMAIL
from terminus_hub.extensions import db
from terminus_hub.forms import NAME_INVALID
from terminus_hub.models import OutboxMessage
from terminus_hub.models import utcnow
from terminus_hub.outbox import SUBJECTS
from tests import factories
from tests.smtp_sink import SmtpSink
from tests.smtp_sink import smtp_sink  # noqa: F401 (the fixture)

EMAIL = "ada@example.com"
CONFIRM_LINK = re.compile(r"http://localhost/confirm/[\w.-]+")
CSRF_META = re.compile(r'<meta name="csrf-token" content="[^"]*">')


def sign_up(client: FlaskClient, email: str = EMAIL, name: str = "Ada Lovelace") -> TestResponse:
    """Post the sign-up form and close the response, which runs the after-response mail."""
    data = {"name": name, "email": email, "password": factories.PASSWORD}
    with client.post("/sign_up", data=data) as response:
        response.get_data()
    return response


def check_email_page(client: FlaskClient) -> str:
    with client.get("/sign_up/check_email") as response:
        assert response.status_code == 200
        return CSRF_META.sub("", response.get_data(as_text=True))


def make_due_now(app: Flask) -> None:
    """Move every pending mail's next attempt into the past, as time passing would."""
    with app.app_context():
        db.session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()


def send_pending(runner: FlaskCliRunner) -> str:
    result = runner.invoke(args=["mail", "send-pending"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def mail_server_down(smtp_sink: SmtpSink) -> SmtpSink:  # noqa: F811 (the imported fixture)
    """The app's mail server, stopped: its port refuses connections until start()."""
    smtp_sink.stop()
    return smtp_sink


def test_sign_up_mails_one_confirmation_to_that_address(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
) -> None:
    response = sign_up(client)

    assert response.status_code == 303
    assert len(smtp_sink.received) == 1
    received = smtp_sink.received[0]
    assert received.rcpt_tos == [EMAIL]
    assert received.message["To"] == EMAIL
    assert received.message["Subject"] == SUBJECTS["confirm"]


def test_confirmation_mail_has_text_and_html_with_absolute_confirm_link(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
) -> None:
    sign_up(client)

    message = smtp_sink.received[0].message
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    text_links = CONFIRM_LINK.findall(text.get_content())
    html_links = CONFIRM_LINK.findall(html.get_content())
    assert len(set(text_links)) == 1
    assert set(html_links) == set(text_links)


def test_confirmation_link_opens_the_confirm_page(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
) -> None:
    sign_up(client)

    body = smtp_sink.received[0].message.get_body(preferencelist=("plain",)).get_content()
    path = CONFIRM_LINK.search(body).group(0).removeprefix("http://localhost")
    with client.get(path) as response:
        assert response.status_code == 200


@pytest.mark.app_config(MAIL_TIMEOUT=1)
def test_sign_up_answers_the_same_when_mail_server_is_down(
    smtp_sink: SmtpSink,  # noqa: F811
    app: Flask,
    client: FlaskClient,
) -> None:
    working = sign_up(client, "ada@example.com")
    working_page = check_email_page(client)
    smtp_sink.stop()
    other = app.test_client()

    down = sign_up(other, "grace@example.com")
    down_page = check_email_page(other)

    assert (down.status_code, down.location) == (303, "/sign_up/check_email")
    assert (down.status_code, down.location) == (working.status_code, working.location)
    assert down.get_data() == working.get_data()
    assert down_page.replace("grace@example.com", "ada@example.com") == working_page


@pytest.mark.app_config(MAIL_TIMEOUT=1)
def test_mail_server_down_keeps_mail_for_a_later_attempt(
    mail_server_down: SmtpSink,
    client: FlaskClient,
    outbox,
) -> None:
    sign_up(client)

    [message] = outbox.messages(EMAIL)
    assert message.attempts == 1
    assert message.sent_at is None
    assert message.failed_at is None
    assert message.next_attempt_at > utcnow()
    assert message.last_error


@pytest.mark.app_config(MAIL_TIMEOUT=1)
def test_send_pending_delivers_kept_mail_exactly_once_when_server_is_back(
    mail_server_down: SmtpSink,
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
) -> None:
    sign_up(client)
    mail_server_down.start()
    make_due_now(app)

    first = send_pending(runner)
    second = send_pending(runner)

    assert first.startswith("Sent 1 ")
    assert second.startswith("Sent 0 ")
    assert [r.rcpt_tos for r in mail_server_down.received] == [[EMAIL]]


@pytest.mark.app_config(MAIL_TIMEOUT=1)
def test_slow_mail_server_costs_the_request_at_most_mail_timeout(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
    outbox,
) -> None:
    smtp_sink.data_delay = 10
    started = time.monotonic()

    response = sign_up(client)

    assert time.monotonic() - started < 3
    assert (response.status_code, response.location) == (303, "/sign_up/check_email")
    [message] = outbox.messages(EMAIL)
    assert message.sent_at is None and message.failed_at is None
    assert message.next_attempt_at > utcnow()


@pytest.mark.parametrize(
    ("stage", "reply"),
    [("rcpt", "550 5.1.1 No such user here"), ("data", "554 5.7.1 Message rejected")],
)
def test_permanent_refusal_marks_mail_failed(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
    outbox,
    stage: str,
    reply: str,
) -> None:
    setattr(smtp_sink, f"refuse_{stage}", reply)

    response = sign_up(client)

    assert response.status_code == 303
    [message] = outbox.messages(EMAIL)
    assert message.failed_at is not None
    assert message.sent_at is None
    assert message.attempts == 1
    assert smtp_sink.received == []


def test_send_pending_does_not_retry_failed_mail(
    smtp_sink: SmtpSink,  # noqa: F811
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    outbox,
) -> None:
    smtp_sink.refuse_rcpt = "550 5.1.1 No such user here"
    sign_up(client)
    smtp_sink.refuse_rcpt = None
    make_due_now(app)

    output = send_pending(runner)

    assert output.startswith("Sent 0 ")
    assert smtp_sink.received == []
    assert outbox.messages(EMAIL)[0].attempts == 1


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("data", "451 4.3.0 Try again later"),
        ("rcpt", "450 4.2.0 Greylisted, try again later"),
    ],
)
def test_temporary_refusal_keeps_mail_for_a_later_attempt(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
    outbox,
    stage: str,
    reply: str,
) -> None:
    setattr(smtp_sink, f"refuse_{stage}", reply)

    sign_up(client)

    [message] = outbox.messages(EMAIL)
    assert message.failed_at is None
    assert message.sent_at is None
    assert message.attempts == 1
    assert message.next_attempt_at > utcnow()


def test_without_mail_server_mail_and_link_go_to_the_log(
    client: FlaskClient,
    outbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="terminus_hub.outbox"):
        sign_up(client)

    [message] = outbox.messages(EMAIL)
    assert message.sent_at is not None
    assert EMAIL in caplog.text
    assert SUBJECTS["confirm"] in caplog.text
    assert CONFIRM_LINK.findall(caplog.text) == CONFIRM_LINK.findall(message.text_body)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "Eve\r\nBcc: attacker@evil.example", NAME_INVALID),
        ("email", f"{EMAIL}\r\nBcc: attacker@evil.example", INVALID_EMAIL),
    ],
    ids=["name", "email"],
)
def test_header_injection_at_sign_up_reaches_no_other_recipient(
    smtp_sink: SmtpSink,  # noqa: F811
    client: FlaskClient,
    field: str,
    value: str,
    error: str,
) -> None:
    data = {"name": "Eve", "email": EMAIL, "password": factories.PASSWORD, field: value}
    with client.post("/sign_up", data=data) as response:
        page = response.get_data(as_text=True)

    if response.status_code == 303:
        [received] = smtp_sink.received
        assert received.rcpt_tos == [EMAIL]
        assert received.message["Bcc"] is None
        assert received.message.get_all("To") == [EMAIL]
    else:
        assert response.status_code == 422
        assert error in page
        assert smtp_sink.received == []
    assert not any("evil.example" in "".join(r.rcpt_tos) for r in smtp_sink.received)
