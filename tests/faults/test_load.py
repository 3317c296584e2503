"""Load: dozens of clients at once on both instances, for a few seconds, and not one 5xx."""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

from tests import factories
from tests.faults.conftest import CSRF_META
from tests.faults.conftest import HOST
from tests.faults.conftest import next_address

pytestmark = pytest.mark.faults

CLIENTS = 32
DURATION = 6.0  # seconds of traffic
REQUEST_TIMEOUT = 15.0


class Client:
    """A browser-ish client on http.client: one cookie, the page's CSRF token, an address."""

    def __init__(self, port: int, address: str | None) -> None:
        self.port = port
        self.fixed_address = address  # None: a new address for every request (many people)
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, body: str | None = None, **headers: str) -> int:
        headers["X-Forwarded-For"] = self.fixed_address or next_address()
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("thub_session="):
                self.cookie = value.split(";", 1)[0]
        if method == "GET" and response.status == 200:
            match = CSRF_META.search(data)
            if match:
                self.csrf = match.group(1)
        return response.status

    def sign_in(self, email: str, password: str) -> int:
        if not self.csrf:
            self.cookie = ""
            self.request("GET", "/sign_in/password")
        form = urlencode({"email": email, "password": password, "csrf_token": self.csrf})
        status = self.request("POST", "/sign_in/password", form)
        if status == 303:  # signed in: a new session, whose form needs a fresh page
            self.csrf = ""
        return status


def test_many_clients_on_both_instances_get_no_5xx(cluster):
    """Broke: nothing; 32 clients at once for 6 seconds over both instances (two workers
    each): the sign-in page, wrong passwords for unknown addresses, right passwords, and API
    calls with keys. Half the clients shared two addresses (an abuser's pace), the other half
    came from a new address for every request (many people).

    Saw: not one 5xx and not one failed connection or timeout; answers were 200, 303, 422
    and 429 (the shared-address clients ran into the sign-in limit, as they should). Both
    instances answered /healthz 200 after, with the same workers.

    Lost: nothing: every right password signed in (303) unless the sign-in limit refused it.
    """
    people = [cluster.person() for _ in range(4)]
    tokens = [cluster.api_key(person.account_slug)[1] for person in people]
    workers = {instance.name: instance.worker_pids() for instance in cluster.instances}
    ports = [urlsplit(instance.url).port for instance in cluster.instances]
    statuses: Counter[tuple[str, int]] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION

    abusers = [next_address(), next_address()]

    def run(n: int) -> None:
        # Odd clients: one of two shared addresses (an abuser's pace); even: many people.
        client = Client(ports[n % 2], abusers[n % 4 // 2] if n % 2 else None)
        person = people[n % len(people)]
        bearer = f"Bearer {tokens[n % len(tokens)]}"
        actions = itertools.cycle(["page", "wrong", "api", "right", "wrong", "api"])
        while time.monotonic() < deadline:
            action = next(actions)
            try:
                if action == "page":
                    status = client.request("GET", "/sign_in")
                elif action == "wrong":
                    status = client.sign_in(f"nobody{n}@example.com", "wrong password")
                elif action == "right":
                    status = client.sign_in(person.email, factories.PASSWORD)
                else:
                    status = client.request("GET", "/api/v1/account", Authorization=bearer)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{action}: {exc!r}")
                continue
            with lock:
                statuses[(action, status)] += 1

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION + REQUEST_TIMEOUT + 5)
    assert not [thread for thread in threads if thread.is_alive()], "a client hung"

    summary = dict(sorted(statuses.items()))
    print(f"\nload: {sum(statuses.values())} answers in {DURATION} s: {summary}")
    assert errors == [], errors[:5]
    assert [key for key in statuses if key[1] >= 500] == [], summary
    allowed = {"page": {200}, "wrong": {422, 429}, "right": {303, 429}, "api": {200, 429}}
    assert all(status in allowed[action] for action, status in statuses), summary
    assert statuses[("right", 303)] > 0
    assert statuses[("wrong", 422)] > 0
    assert statuses[("api", 200)] > 0
    assert statuses[("page", 200)] > 0
    assert statuses[("wrong", 429)] + statuses[("right", 429)] > 0  # the limit held
    for port in ports:
        assert Client(port, None).request("GET", "/healthz") == 200
    for instance in cluster.instances:
        assert instance.worker_pids() == workers[instance.name]
