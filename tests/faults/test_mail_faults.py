"""Mail server down, stalling or refusing: the screen never changes, the outbox keeps the mail."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub.models import OutboxMessage
from terminus_hub.models import User
from terminus_hub.models import utcnow
from tests.faults.conftest import MAIL_TIMEOUT
from tests.faults.conftest import Cluster
from tests.faults.conftest import page_text
from tests.faults.conftest import wait_for
from tests.processes import BIN
from tests.processes import REPO

pytestmark = pytest.mark.faults

REFUSAL = "550 5.1.1 No such mailbox here"
CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/confirm/\S+)")


def break_mail(cluster: Cluster, mode: str) -> None:
    if mode == "down":
        cluster.mail.stop()  # the port refuses connections
    elif mode == "stalling":
        cluster.mail.data_delay = MAIL_TIMEOUT + 7  # accepts, then never answers DATA in time
    elif mode == "refusing":
        cluster.mail.refuse_rcpt = REFUSAL  # a permanent refusal: the mailbox does not exist


def mend_mail(cluster: Cluster) -> None:
    cluster.mail.data_delay = 0
    cluster.mail.refuse_rcpt = None
    cluster.mail.start()


def outbox_row(cluster: Cluster, email: str, template: str) -> OutboxMessage | None:
    return cluster.scalar(
        select(OutboxMessage).where(
            OutboxMessage.recipient == email, OutboxMessage.template == template
        )
    )


def delivered(cluster: Cluster, email: str) -> list[Any]:
    return [m for m in cluster.mail.received if m.rcpt_tos == [email]]


def screen(browser, response, email: str) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    """What the person saw: status, where it sent them, and that next page (address blanked)."""
    location = response.headers.get("Location")
    following = browser.get(location) if location else response
    return (
        response.status_code,
        location,
        following.status_code,
        page_text(following).replace(email, "EMAIL"),
    )


def send_pending_twice_at_once(cluster: Cluster) -> list[str]:
    """Run `flask mail send-pending` from two processes at once, as cron on two instances."""
    args = [str(BIN / "flask"), "--app", "terminus_hub", "mail", "send-pending"]
    procs = [
        subprocess.Popen(
            args,
            cwd=REPO,
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, output
        outputs.append(output)
    return outputs


def test_mail_down_stalling_or_refusing_changes_nothing_the_user_sees(cluster, browsers):
    """Broke: the SMTP server, in turn: down (its port refused connections), stalling
    (accepted the mail, then never answered DATA), refusing the recipient with a permanent
    550; then it recovered.

    Saw: sign-up (and forgot-password with the server down) answered exactly as when mail
    works: the same status, the same redirect, the same next page, each in under two seconds,
    since mail goes out after the response; the worker that tried to send was free again
    within MAIL_TIMEOUT (3 s here). /healthz stayed 200 and showed the 550 mail as failed (a
    warning). After recovery, `flask mail send-pending`, run from two processes at once,
    delivered each kept mail exactly once, and the late confirmation link worked.

    Lost: nothing. The outbox kept every mail (pending, with the error and a later retry
    time); the 550 mail was marked failed after one attempt and never retried.
    """
    instances = list(cluster.instances)
    forgetful = cluster.person()  # asks for a reset while the server is down
    baseline_person = cluster.person()
    screens: dict[str, tuple[Any, ...]] = {}
    forgot_screens = {}
    emails = {
        mode: f"mail-{mode}@example.com" for mode in ("working", "down", "stalling", "refusing")
    }
    failed_before = browsers(cluster.a.url).health().json()["checks"]["mail_outbox"]["failed"]

    for n, (mode, email) in enumerate(emails.items()):
        break_mail(cluster, mode)
        try:
            browser = browsers(instances[n % 2].url)
            token = browser.csrf_token("/sign_up")
            data = {
                "name": "Mail Tester",
                "email": email,
                "password": "correct horse battery staple",
            }
            started = time.monotonic()
            response = browser.post("/sign_up", data={**data, "csrf_token": token})
            answered = time.monotonic()
            assert answered - started < 2, mode
            screens[mode] = screen(browser, response, email)
            mails = [(email, "confirm")]
            if mode in ("working", "down"):
                person = baseline_person if mode == "working" else forgetful
                forgot = browsers(instances[n % 2].url)
                csrf = forgot.csrf_token("/password/forgot")
                reply = forgot.post(
                    "/password/forgot", data={"email": person.email, "csrf_token": csrf}
                )
                forgot_screens[mode] = screen(forgot, reply, person.email)
                mails.append((person.email, "reset"))
            # The after-response attempts: done (or given up) within MAIL_TIMEOUT, before the
            # server changes again.
            for to, template in mails:
                attempted = wait_for(
                    lambda to=to, template=template: getattr(
                        outbox_row(cluster, to, template), "attempts", 0
                    ),
                    MAIL_TIMEOUT + 5,
                )
                assert attempted == 1, (mode, template)
            assert time.monotonic() - answered < MAIL_TIMEOUT + 3, mode
        finally:
            mend_mail(cluster)

    assert screens["down"] == screens["working"]
    assert screens["stalling"] == screens["working"]
    assert screens["refusing"] == screens["working"]
    assert screens["working"][:2] == (303, "/sign_up/check_email")
    assert forgot_screens["down"] == forgot_screens["working"]

    now = utcnow()
    for mode in ("down", "stalling"):
        row = outbox_row(cluster, emails[mode], "confirm")
        state = (row.sent_at, row.failed_at, row.attempts, row.last_error)
        assert state[:3] == (None, None, 1), (mode, state)
        assert row.last_error
        assert row.next_attempt_at > now  # a retry later, with back-off
    reset = outbox_row(cluster, forgetful.email, "reset")
    assert (reset.sent_at, reset.failed_at, reset.attempts) == (None, None, 1)
    refused = outbox_row(cluster, emails["refusing"], "confirm")
    assert refused.failed_at is not None
    assert refused.attempts == 1
    assert "550" in refused.last_error
    assert len(delivered(cluster, emails["working"])) == 1
    assert len(delivered(cluster, baseline_person.email)) == 1
    for email in (emails["down"], emails["stalling"], emails["refusing"], forgetful.email):
        assert delivered(cluster, email) == []

    health = browsers(cluster.b.url).health()
    assert health.status_code == 200
    assert health.json()["checks"]["mail_outbox"]["failed"] == failed_before + 1
    assert health.json()["checks"]["mail_outbox"]["status"] == "warning"

    # Recovery. Time passing makes the kept mail due (the first retry waits 30 s).
    kept = [emails["down"], emails["stalling"], emails["refusing"], forgetful.email]
    cluster.execute(
        update(OutboxMessage)
        .where(OutboxMessage.recipient.in_(kept))
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    outputs = send_pending_twice_at_once(cluster)
    assert all(output.strip().startswith("Sent ") for output in outputs), outputs

    for email in (emails["working"], emails["down"], emails["stalling"], forgetful.email):
        assert len(delivered(cluster, email)) == 1, email
    assert delivered(cluster, emails["refusing"]) == []
    for email, template in [
        (emails["down"], "confirm"),
        (emails["stalling"], "confirm"),
        (forgetful.email, "reset"),
    ]:
        row = outbox_row(cluster, email, template)
        assert row.sent_at is not None
        assert row.attempts == 2
    refused = outbox_row(cluster, emails["refusing"], "confirm")
    assert (refused.sent_at, refused.attempts) == (None, 1)
    assert refused.failed_at is not None

    # The late mail still works: its confirmation link confirms the address.
    body = delivered(cluster, emails["down"])[0].message.get_body(("plain",)).get_content()
    link = CONFIRM_LINK.search(body).group(1)
    person = browsers(cluster.b.url)
    confirmed = person.post(link, data={"csrf_token": person.csrf_token(link)})
    assert confirmed.status_code == 303
    user = cluster.scalar(select(User).where(User.email == emails["down"]))
    assert user.confirmed_at is not None
