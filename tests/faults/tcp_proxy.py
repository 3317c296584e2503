"""A TCP proxy on 127.0.0.1 that a test can cut, restore, slow down, stall or trip on a pattern.

Put it between the app and PostgreSQL (``DATABASE_URL`` pointing at the proxy's port):

- ``cut()`` closes every connection and stops listening, so new connections are refused (the
  database host is down); ``restore()`` listens again on the same port. While cut, the port
  stays bound (``PortHold``), so no other program on the machine is given it meanwhile.
- ``drop_connections()`` closes every open connection but keeps accepting (a database restart
  or a failover, as pooled connections see it).
- ``latency`` adds that many seconds before each chunk from the server is passed on (a slow
  network or an overloaded server); ``stall()`` holds all traffic until ``unstall()`` (a hung
  server: TCP is up, nothing answers).
- ``trip_on(pattern, direction)`` closes the one connection whose traffic first carries the
  pattern, without passing that chunk on: a connection lost at a precise point of a
  transaction (``b"INSERT INTO accounts"`` going up, ``b"COMMIT\\x00"`` coming back).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field

from tests.processes import PortHold

HOST = "127.0.0.1"
UP = "up"  # client to server
DOWN = "down"  # server to client
_CHUNK = 65536
_POLL = 0.05


@dataclass
class Trip:
    """A one-shot trigger: the connection carrying ``pattern`` in ``direction`` is closed."""

    pattern: bytes
    direction: str
    fired: threading.Event = field(default_factory=threading.Event)


class _Link:
    """One proxied connection: the client's socket, the server's socket and two pumps."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._pump, args=(client, server, UP), daemon=True),
            threading.Thread(target=self._pump, args=(server, client, DOWN), daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.proxy._forget(self)

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        tail = b""
        try:
            while not self.closed.is_set():
                readable, _, _ = select.select([source], [], [], _POLL)
                if not readable:
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                # Patterns may straddle two chunks; only a match ending in new data counts.
                window = tail + data
                start = len(tail)
                tail = window[-64:]
                if self.proxy._tripped(window, start, direction):
                    break
                self.proxy._wait_while_stalled(self)
                if self.closed.is_set():
                    break
                if direction == DOWN and self.proxy.latency:
                    time.sleep(self.proxy.latency)
                sink.sendall(data)
        except (OSError, ValueError):  # the other pump or a test closed the sockets
            pass
        finally:
            self.close()


class TcpProxy:
    """Forward 127.0.0.1:<port> to an upstream address, with faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.latency = 0.0
        self.accepted = 0  # connections accepted so far (a reconnect shows here)
        self._links: set[_Link] = set()
        self._trips: list[Trip] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._port_hold: PortHold | None = None

    # Controls

    def start(self) -> None:
        """Listen (again) on the proxy's port."""
        if self._listener is not None:
            return
        if self._port_hold is not None:
            self._port_hold.release()
            self._port_hold = None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(128)
        listener.settimeout(_POLL)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    restore = start

    def cut(self, hold: bool = True) -> None:
        """Refuse new connections and close every open one: the database is gone."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)  # its wait on the listener ends within _POLL
            self._acceptor = None
        self.drop_connections()
        if hold and listener is not None:
            self._port_hold = PortHold(self.port)

    def drop_connections(self) -> None:
        """Close every open connection; new ones are still accepted."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    def stall(self) -> None:
        """Hold every byte in both directions until unstall(): a hung server."""
        self._flowing.clear()

    def unstall(self) -> None:
        """Let held traffic through."""
        self._flowing.set()

    def trip_on(self, pattern: bytes, direction: str = UP) -> Trip:
        """Close the first connection whose traffic in ``direction`` carries ``pattern``."""
        trip = Trip(pattern, direction)
        with self._lock:
            self._trips.append(trip)
        return trip

    def reset(self) -> None:
        """Back to a plain, fast, listening proxy with no triggers armed."""
        self.latency = 0.0
        with self._lock:
            self._trips.clear()
        self.unstall()
        self.start()

    def close(self) -> None:
        """Stop for good: no listener, no connections, no threads left running."""
        self.unstall()
        self.cut(hold=False)
        if self._port_hold is not None:
            self._port_hold.release()
            self._port_hold = None

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    # Internals

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self._links.add(link)
                self.accepted += 1
            link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _tripped(self, window: bytes, start: int, direction: str) -> bool:
        with self._lock:
            for trip in self._trips:
                if trip.direction != direction:
                    continue
                found = window.find(trip.pattern, max(0, start - len(trip.pattern) + 1))
                if found != -1:
                    self._trips.remove(trip)
                    trip.fired.set()
                    return True
        return False

    def _wait_while_stalled(self, link: _Link) -> None:
        while not self._flowing.wait(_POLL):
            if link.closed.is_set():
                return
