"""Python load generators for what wrk cannot drive well: SSO round trips (the IdP runs here),
one-at-a-time sign-ins for timing equality, and raw bcrypt on the same cores.
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import re
import statistics
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

from tests.stats import mann_whitney_p

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    seconds: float


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection (gunicorn's sync workers close each one anyway)."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    seconds = time.perf_counter() - began
    cookies: dict[str, str] = {}
    for value in response.headers.get_all("Set-Cookie") or []:
        jar = SimpleCookie()
        jar.load(value)
        cookies.update({name: morsel.value for name, morsel in jar.items()})
    return Answer(response.status, dict(response.headers.items()), cookies, data, seconds)


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def form_session(port: int) -> tuple[str, str]:
    """A fresh pre-sign-in session: its Cookie header and the CSRF token bound to it."""
    answer = request(port, "GET", "/sign_in")
    match = _CSRF_META.search(answer.body.decode("utf-8", "replace"))
    if answer.status != 200 or match is None or not answer.cookies:
        raise RuntimeError(f"GET /sign_in answered {answer.status} without a CSRF token")
    return cookie_header(answer.cookies), match.group(1)


def post_form(port: int, path: str, fields: dict[str, str], cookie: str, csrf_token: str) -> Answer:
    body = urlencode({**fields, "csrf_token": csrf_token}).encode()
    return request(
        port,
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )


def summarize(seconds: list[float]) -> dict[str, float]:
    """Median, spread (p10–p90, IQR, stdev) and tails in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    quantiles = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "n": len(ms),
        "median": statistics.median(ms),
        "p10": quantiles[9],
        "p25": quantiles[24],
        "p75": quantiles[74],
        "p90": quantiles[89],
        "p99": quantiles[98],
        "stdev": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "min": ms[0],
        "max": ms[-1],
    }


# -- timing equality -------------------------------------------------------------------------


def timing_equality(
    port: int, samples: int, wrong_password_emails: list[str], locked_email: str
) -> dict[str, Any]:
    """Unknown email, wrong password, locked user: one sign-in at a time, kinds interleaved.

    Each wrong-password sample uses another user (fewer failures than the lockout threshold),
    so none of them locks; the locked user has been locked from the start.
    """
    cookie, token = form_session(port)
    kinds = ["unknown_email", "wrong_password", "locked_user"] * samples
    random.Random(8).shuffle(kinds)  # noqa: S311 (an order, not a secret)
    times: dict[str, list[float]] = {"unknown_email": [], "wrong_password": [], "locked_user": []}
    wrong = iter(wrong_password_emails)
    statuses: set[int] = set()
    for i, kind in enumerate(kinds):
        if kind == "unknown_email":
            email = f"nobody{i}@unknown.example"
        elif kind == "wrong_password":
            email = next(wrong)
        else:
            email = locked_email
        answer = post_form(
            port,
            "/sign_in/password",
            {"email": email, "password": f"not the password {i}"},
            cookie,
            token,
        )
        statuses.add(answer.status)
        times[kind].append(answer.seconds)
    result: dict[str, Any] = {kind: summarize(values) for kind, values in times.items()}
    result["statuses"] = sorted(statuses)
    wrong_median = result["wrong_password"]["median"]
    result["unknown_over_wrong"] = result["unknown_email"]["median"] / wrong_median
    result["locked_over_wrong"] = result["locked_user"]["median"] / wrong_median
    # Does a rank test tell the kinds apart? (small p: yes; the test suite asks the same at
    # cost 4, tests/test_sign_in_timing.py)
    result["unknown_vs_wrong_p"] = mann_whitney_p(times["unknown_email"], times["wrong_password"])
    result["locked_vs_wrong_p"] = mann_whitney_p(times["locked_user"], times["wrong_password"])
    return result


# -- SSO round trips -------------------------------------------------------------------------


def sso_round_trips(port: int, idp: Any, slug: str, email: str, seconds: float) -> dict[str, Any]:
    """Sign in through the IdP again and again for `seconds`: SP login, IdP, SP assertion.

    The IdP (pysaml2, signing with xmlsec1) runs in this process on the same cores, so the
    round trips per second include its work; the SP's own time is reported apart.
    """
    login_times: list[float] = []
    acs_times: list[float] = []
    sp_times: list[float] = []
    failures = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        login = request(port, "GET", f"/sso/{slug}/login")
        location = login.headers.get("Location", "")
        parsed = idp.parse_request(location)
        saml_response = idp.respond(parsed, email)
        fields = {"SAMLResponse": saml_response}
        if parsed.relay_state is not None:
            fields["RelayState"] = parsed.relay_state
        acs = request(
            port,
            "POST",
            urlsplit(parsed.acs_url).path,
            body=urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if login.status != 303 or acs.status != 303:
            failures += 1
        login_times.append(login.seconds)
        acs_times.append(acs.seconds)
        sp_times.append(login.seconds + acs.seconds)
    elapsed = time.perf_counter() - began
    return {
        "round_trips": len(sp_times),
        "per_second": len(sp_times) / elapsed,
        "failures": failures,
        "sp": summarize(sp_times),
        "login": summarize(login_times),
        "acs": summarize(acs_times),
    }


# -- raw bcrypt ------------------------------------------------------------------------------


def _bcrypt_worker(args: tuple[bytes, bytes, float]) -> tuple[int, float]:
    import bcrypt

    secret, hashed, seconds = args
    count = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        bcrypt.checkpw(secret, hashed)
        count += 1
    return count, time.perf_counter() - began


def raw_bcrypt(hashed: bytes, processes: int, seconds: float) -> dict[str, float]:
    """bcrypt.checkpw per second at the stored hash's cost, in `processes` processes."""
    secret = b"0" * 64  # the product checks a 64-byte hex SHA-256 of the password
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        done = pool.map(_bcrypt_worker, [(secret, hashed, seconds)] * processes)
    elapsed = time.perf_counter() - began
    # Each process's checks over its own time (the last check ends after `seconds`); the
    # pool's start-up is not the checks' cost.
    return {
        "checks": sum(count for count, _ in done),
        "per_second": sum(count / took for count, took in done),
        "wall_seconds": elapsed,
    }
