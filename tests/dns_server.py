"""A real authoritative DNS server on 127.0.0.1 for tests (dnslib), and its pytest fixture.

Tests publish records at run time; the app reaches the server through dnspython once a test
sets ``app.config["TERMINUS_DNS_NAMESERVERS"] = [dns_server.address]``. Names nobody set
answer NXDOMAIN. UDP and TCP both listen on the same port (dnspython retries over TCP when a
UDP answer is truncated).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from dnslib import QTYPE
from dnslib import RCODE
from dnslib import RR
from dnslib import TXT
from dnslib import A
from dnslib import DNSError
from dnslib import DNSRecord
from dnslib.server import BaseResolver
from dnslib.server import DNSLogger
from dnslib.server import DNSServer

TxtValue = str | tuple[str, ...] | list[str]


@dataclass
class _Name:
    behaviour: str = "answer"  # answer, servfail, refuse, silent
    txt: list[tuple[str, ...]] = field(default_factory=list)
    a: list[str] = field(default_factory=list)


def _key(name: str) -> str:
    return name.strip().lower().rstrip(".")


class _Zone(BaseResolver):  # type: ignore[misc]
    """What the server answers, per name; changed by the test while the server runs."""

    def __init__(self) -> None:
        self.names: dict[str, _Name] = {}
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = request.q.qname
        with self.lock:
            entry = self.names.get(_key(str(qname)))
            entry = _Name(entry.behaviour, list(entry.txt), list(entry.a)) if entry else None
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif entry.behaviour == "silent":
            raise DNSError("silent name: no answer is sent")  # the handler drops the request
        elif entry.behaviour == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
        elif entry.behaviour == "refuse":
            reply.header.rcode = RCODE.REFUSED
        elif request.q.qtype == QTYPE.TXT:
            for strings in entry.txt:
                reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(list(strings)), ttl=60))
        elif request.q.qtype == QTYPE.A:
            for address in entry.a:
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=60))
        return reply


class DnsServer:
    """An authoritative server for whatever the test publishes."""

    def __init__(self) -> None:
        self._zone = _Zone()
        self.port = _free_port()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=_drop)
        self._servers = [
            DNSServer(self._zone, address="127.0.0.1", port=self.port, logger=quiet),
            DNSServer(self._zone, address="127.0.0.1", port=self.port, tcp=True, logger=quiet),
        ]

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, the form TERMINUS_DNS_NAMESERVERS takes."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        for server in self._servers:
            server.start_thread()

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()

    def clear(self) -> None:
        """Forget every name: everything answers NXDOMAIN."""
        with self._zone.lock:
            self._zone.names.clear()

    def set_txt(self, name: str, *values: TxtValue) -> None:
        """Publish TXT records at a name (replacing its others); a tuple is one split record."""
        records = [(v,) if isinstance(v, str) else tuple(v) for v in values]
        self._set(name, _Name(txt=records))

    def set_a(self, name: str, address: str) -> None:
        """Make the name exist with an A record and no TXT (a TXT query gets no answer)."""
        self._set(name, _Name(a=[address]))

    def remove(self, name: str) -> None:
        """Delete the name: NXDOMAIN from now on."""
        with self._zone.lock:
            self._zone.names.pop(_key(name), None)

    def servfail(self, name: str) -> None:
        self._set(name, _Name(behaviour="servfail"))

    def refuse(self, name: str) -> None:
        self._set(name, _Name(behaviour="refuse"))

    def silent(self, name: str) -> None:
        """Never answer queries for the name: the asker times out."""
        self._set(name, _Name(behaviour="silent"))

    def _set(self, name: str, entry: _Name) -> None:
        with self._zone.lock:
            self._zone.names[_key(name)] = entry


def _drop(_message: str) -> None:
    """dnslib's log sink: tests do not print queries."""


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)


@pytest.fixture(scope="session")
def _dns_server_running() -> Iterator[DnsServer]:
    server = DnsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns_server(_dns_server_running: DnsServer) -> Iterator[DnsServer]:
    """The run's DNS server, empty at the start of each test."""
    _dns_server_running.clear()
    yield _dns_server_running
    _dns_server_running.clear()
