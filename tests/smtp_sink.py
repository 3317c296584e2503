"""A real SMTP server (aiosmtpd) on 127.0.0.1 for end-to-end mail tests.

Use it from a test module with ``from tests.smtp_sink import smtp_sink  # noqa: F401``.
The ``smtp_sink`` fixture points the test's app at the sink (MAIL_SERVER, MAIL_PORT,
MAIL_SUPPRESS_SEND=False) through the ``app_config`` marker, so an ``app_config`` on the
test itself still wins (a smaller MAIL_TIMEOUT, say).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.ports import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One mail the sink accepted: its envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpSink:
    """Accept mail on a fixed port and keep it; refuse or stall on demand.

    ``refuse_rcpt`` / ``refuse_data`` hold an SMTP reply (``"550 5.1.1 No such user"``,
    ``"451 4.3.0 Try again later"``) given instead of accepting RCPT or DATA;
    ``data_delay`` is how many seconds DATA waits before it answers (a slow server).
    ``stop()`` then ``start()`` takes the server down and brings it back on the same port.
    """

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.refuse_rcpt: str | None = None
        self.refuse_data: str | None = None
        self.data_delay: float = 0
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        """Return a copy of the mail accepted so far, oldest first."""
        with self._lock:
            return list(self._received)

    @property
    def running(self) -> bool:
        return self._controller is not None

    def app_config(self) -> dict[str, Any]:
        """Return the settings that make an app send its mail here."""
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_SUPPRESS_SEND": False}

    def start(self) -> None:
        """Listen on the sink's port (a fresh controller each time: a stopped one is spent)."""
        if self._controller is not None:
            return
        controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=5)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening; connections to the port are refused until start()."""
        if self._controller is None:
            return
        controller, self._controller = self._controller, None
        controller.stop()

    # aiosmtpd handler hooks, called in the controller's thread.

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.refuse_data:
            return self.refuse_data
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self._received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink(request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """A running SMTP sink that this test's app sends its mail to."""
    sink = SmtpSink()
    sink.start()
    try:
        request.node.add_marker(pytest.mark.app_config(**sink.app_config()))
        if "app" in request.fixturenames:
            # Build the app now, so it is made with the sink's settings whatever the order
            # of the test's arguments; an app made before the sink cannot be re-pointed.
            app = request.getfixturevalue("app")
            if app.config["MAIL_PORT"] != sink.port:
                raise RuntimeError("request smtp_sink before app, client or runner")
        yield sink
    finally:
        sink.stop()
