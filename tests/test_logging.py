"""Nothing logs a password or a token (with a real mail server, so mail is not logged)."""

from __future__ import annotations

import logging
import uuid

from tests.smtp_sink import SmtpSink
from tests.smtp_sink import smtp_sink  # noqa: F401 (the fixture)


def test_passwords_and_link_tokens_never_reach_the_log(
    smtp_sink: SmtpSink,  # noqa: F811 (the imported fixture)
    client,
    outbox,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    canary = f"Canary-{uuid.uuid4()} horse"
    with client.post(
        "/sign_up", data={"name": "Ada", "email": "ada@example.com", "password": canary}
    ):
        pass
    confirm = outbox.last_link("ada@example.com")
    client.post(confirm)
    wrong = {"email": "ada@example.com", "password": "wrong " + canary}
    client.post("/sign_in/password", data=wrong)
    client.post("/sign_in/password", data={"email": "x@y.z\r\nINFO fake", "password": canary})
    client.post("/sign_in/password", data={"email": "ada@example.com", "password": canary})
    client.post("/sign_out")
    with client.post("/password/forgot", data={"email": "ada@example.com"}):
        pass
    reset = outbox.last_link("ada@example.com")
    client.post(reset, data={"password": "second " + canary})
    assert len(smtp_sink.received) >= 2  # the mail really went out by SMTP
    # aiosmtpd's own debug log ("mail.log") is the receiving server's, not ours.
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith("mail.log")
    )
    assert canary not in logged
    for link in (confirm, reset):
        assert link.rsplit("/", 1)[1] not in logged
