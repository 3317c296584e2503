"""The TXT lookup behind domain verification, against the test DNS server (dns_proof)."""

from __future__ import annotations

import socket
import time

import pytest
from flask import Flask

from terminus_hub.core import dns_proof
from terminus_hub.core.dns_proof import NameserverSettingError
from terminus_hub.core.dns_proof import Outcome
from terminus_hub.core.dns_proof import parse_nameservers

NAME = "_terminus-hub.acme.example"
RIGHT = "terminus-hub-verification=tok3n"


@pytest.fixture
def lookup(app: Flask, dns_server):  # type: ignore[no-untyped-def]
    app.config["TERMINUS_DNS_NAMESERVERS"] = [dns_server.address]
    app.config["TERMINUS_DNS_TIMEOUT"] = 0.5

    def run(domain: str = "acme.example", token: str = "tok3n") -> dns_proof.Check:
        with app.app_context():
            return dns_proof.check(domain, token)

    return run


@pytest.mark.parametrize(
    "records",
    [
        (RIGHT,),
        (("terminus-hub-verification=", "tok3n"),),  # one record in two strings
        ("v=spf1 -all", RIGHT, "google-site-verification=x"),
        (f"  {RIGHT}  ",),
    ],
)
def test_the_right_record_verifies(lookup, dns_server, records):
    dns_server.set_txt(NAME, *records)

    result = lookup()

    assert result.outcome is Outcome.VERIFIED
    assert NAME in result.message


def test_the_domain_is_looked_up_without_regard_to_case(lookup, dns_server):
    dns_server.set_txt(NAME, RIGHT)

    assert lookup("ACME.Example").verified


@pytest.mark.parametrize(
    ("setup", "outcome", "words"),
    [
        (lambda s: None, Outcome.MISSING, "NXDOMAIN"),
        (lambda s: s.set_a(NAME, "192.0.2.1"), Outcome.MISSING, "has no TXT record"),
        (
            lambda s: s.set_txt(NAME, "terminus-hub-verification=other"),
            Outcome.WRONG_VALUE,
            "not this account’s token",
        ),
        (lambda s: s.set_txt(NAME, "something else"), Outcome.WRONG_VALUE, "none is " + RIGHT),
        (lambda s: s.servfail(NAME), Outcome.UNREACHABLE, "SERVFAIL"),
        (lambda s: s.refuse(NAME), Outcome.UNREACHABLE, "SERVFAIL or refused"),
    ],
)
def test_each_answer_has_a_clear_result(lookup, dns_server, setup, outcome, words):
    setup(dns_server)

    result = lookup()

    assert result.outcome is outcome
    assert words in result.message
    assert result.message.endswith(".")


def test_a_server_that_never_answers_times_out_within_the_setting(lookup, dns_server):
    dns_server.silent(NAME)
    started = time.monotonic()

    result = lookup()

    assert result.outcome is Outcome.UNREACHABLE
    assert "within 0.5 seconds" in result.message
    assert time.monotonic() - started < 3  # bounded by the setting, not hanging


def test_a_removed_record_is_noticed_at_once(lookup, dns_server):
    dns_server.set_txt(NAME, RIGHT)
    assert lookup().verified

    dns_server.remove(NAME)

    assert lookup().outcome is Outcome.MISSING


def test_nothing_listening_is_unreachable(app):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config["TERMINUS_DNS_NAMESERVERS"] = [f"127.0.0.1:{port}"]
    app.config["TERMINUS_DNS_TIMEOUT"] = 0.5

    with app.app_context():
        result = dns_proof.check("acme.example", "tok3n")

    assert result.outcome is Outcome.UNREACHABLE


def test_a_bad_nameserver_setting_is_a_clear_result_not_a_crash(app):
    app.config["TERMINUS_DNS_NAMESERVERS"] = ["dns.example"]

    with app.app_context():
        result = dns_proof.check("acme.example", "tok3n")

    assert result.outcome is Outcome.UNREACHABLE
    assert "misconfigured" in result.message


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (["1.2.3.4"], [("1.2.3.4", 53)]),
        (["1.2.3.4:5353"], [("1.2.3.4", 5353)]),
        (["[::1]:5353", "::1"], [("::1", 5353), ("::1", 53)]),
        ("9.9.9.9, 1.1.1.1:53", [("9.9.9.9", 53), ("1.1.1.1", 53)]),
    ],
)
def test_nameserver_settings(setting, expected):
    servers = parse_nameservers(setting)

    assert [(s.address, s.port) for s in servers] == expected


@pytest.mark.parametrize("setting", [["dns.example"], ["1.2.3.4:0"], ["1.2.3.4:99999"], 42])
def test_bad_nameserver_settings(setting):
    with pytest.raises(NameserverSettingError):
        parse_nameservers(setting)


def test_a_dead_first_nameserver_leaves_time_for_the_next(app, dns_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        dead.bind(("127.0.0.1", 0))  # bound, never answers
        app.config["TERMINUS_DNS_NAMESERVERS"] = [
            f"127.0.0.1:{dead.getsockname()[1]}",
            dns_server.address,
        ]
        app.config["TERMINUS_DNS_TIMEOUT"] = 1
        dns_server.set_txt(NAME, RIGHT)

        with app.app_context():
            result = dns_proof.check("acme.example", "tok3n")

    assert result.outcome is Outcome.VERIFIED


@pytest.mark.parametrize("timeout", ["soon", 0, -1])
def test_a_bad_timeout_setting_is_a_clear_result_not_a_crash(app, timeout):
    app.config["TERMINUS_DNS_TIMEOUT"] = timeout

    with app.app_context():
        result = dns_proof.check("acme.example", "tok3n")

    assert result.outcome is Outcome.UNREACHABLE
    assert "TERMINUS_DNS_TIMEOUT" in result.message
