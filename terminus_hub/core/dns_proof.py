"""Proving control of an email domain with a DNS TXT record (dnspython).

The record lives at ``_terminus-hub.<domain>`` and holds ``terminus-hub-verification=<token>``.
Each lookup asks the configured nameservers (``TERMINUS_DNS_NAMESERVERS``, else the system
resolver) afresh, within ``TERMINUS_DNS_TIMEOUT`` seconds in all.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

# dnspython is imported by the functions that use it: a worker that never checks a domain
# never loads it.
if TYPE_CHECKING:
    import dns.nameserver
    import dns.resolver

RECORD_PREFIX = "_terminus-hub"
VALUE_PREFIX = "terminus-hub-verification="


class Outcome(enum.Enum):
    """What a lookup found: proof, a definite absence, or no answer at all."""

    VERIFIED = "verified"
    MISSING = "missing"  # no such name, or no TXT record there
    WRONG_VALUE = "wrong_value"  # TXT records, none with this account's token
    UNREACHABLE = "unreachable"  # timeout, SERVFAIL, refused: DNS could not say either way


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    message: str

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED

    @property
    def conclusive(self) -> bool:
        """Say whether DNS answered (so a failure says the record is not there)."""
        return self.outcome is not Outcome.UNREACHABLE


class NameserverSettingError(ValueError):
    """TERMINUS_DNS_NAMESERVERS holds something that is not an address or address:port."""


def record_name(domain: str) -> str:
    """Return the name the TXT record must be published at."""
    return f"{RECORD_PREFIX}.{domain}"


def record_value(token: str) -> str:
    """Return the TXT value that proves the claim holding this token."""
    return f"{VALUE_PREFIX}{token}"


def parse_nameservers(entries: object) -> list[dns.nameserver.Do53Nameserver]:
    """Read ``["ip", "ip:port", "[v6]:port", …]`` into nameservers; raise on anything else."""
    if isinstance(entries, str):
        entries = [e for e in entries.replace(",", " ").split() if e]
    if not isinstance(entries, list | tuple):
        raise NameserverSettingError("TERMINUS_DNS_NAMESERVERS must be a list of addresses.")
    import dns.nameserver

    servers = []
    for entry in entries:
        host, port = _host_port(str(entry).strip())
        servers.append(dns.nameserver.Do53Nameserver(host, port))
    return servers


def _host_port(entry: str) -> tuple[str, int]:
    host, port = entry, "53"
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise NameserverSettingError(
            f"TERMINUS_DNS_NAMESERVERS: {entry[:60]!r} is not an IP address or address:port."
        ) from None
    if not 0 < number < 65536:
        raise NameserverSettingError(f"TERMINUS_DNS_NAMESERVERS: bad port in {entry[:60]!r}.")
    return host, number


def _resolver() -> dns.resolver.Resolver:
    import dns.resolver

    config = current_app.config
    nameservers = config.get("TERMINUS_DNS_NAMESERVERS")
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = parse_nameservers(nameservers)
    timeout = _timeout()
    resolver.lifetime = timeout  # the whole lookup
    # Each try gets its share, so a dead first nameserver leaves time to ask the next.
    resolver.timeout = timeout / max(1, len(resolver.nameservers))
    resolver.cache = None  # a removed record must be noticed at once
    return resolver


def _timeout() -> float:
    try:
        timeout = float(current_app.config["TERMINUS_DNS_TIMEOUT"])
    except (TypeError, ValueError):
        raise NameserverSettingError("TERMINUS_DNS_TIMEOUT must be a number of seconds.") from None
    if not 0 < timeout <= 60:
        raise NameserverSettingError("TERMINUS_DNS_TIMEOUT must be between 0 and 60 seconds.")
    return timeout


def check(domain: str, token: str) -> Check:
    """Look up the domain's TXT record now and say whether it carries this token."""
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.resolver

    name = record_name(domain)
    wanted = record_value(token)
    try:
        answer = _resolver().resolve(
            dns.name.from_text(name), dns.rdatatype.TXT, search=False, raise_on_no_answer=True
        )
    except dns.resolver.NXDOMAIN:
        return Check(Outcome.MISSING, f"There is no DNS record named {name} (NXDOMAIN).")
    except dns.resolver.NoAnswer:
        return Check(Outcome.MISSING, f"{name} exists but has no TXT record.")
    except dns.resolver.LifetimeTimeout:
        return Check(
            Outcome.UNREACHABLE,
            f"DNS did not answer for {name} within {_timeout():g} seconds. Try again later.",
        )
    except dns.resolver.NoNameservers:
        return Check(
            Outcome.UNREACHABLE,
            f"The DNS servers for {name} failed to answer (SERVFAIL or refused). Try again later.",
        )
    except NameserverSettingError as exc:
        return Check(Outcome.UNREACHABLE, f"DNS is misconfigured on this server: {exc}")
    except (dns.exception.DNSException, OSError) as exc:
        return Check(
            Outcome.UNREACHABLE,
            f"DNS lookup of {name} failed ({type(exc).__name__}). Try again later.",
        )
    # A TXT record may be split into several strings of up to 255 bytes: join them.
    values = [
        b"".join(rdata.strings).decode("utf-8", "replace").strip()
        for rdata in answer
        if rdata.rdtype == dns.rdatatype.TXT
    ]
    if wanted in values:
        return Check(Outcome.VERIFIED, f"Found {wanted} at {name}: the domain is verified.")
    ours = [v for v in values if v.startswith(VALUE_PREFIX)]
    if ours:
        return Check(
            Outcome.WRONG_VALUE,
            f"{name} holds a verification record, but not this account’s token. Publish {wanted}.",
        )
    return Check(Outcome.WRONG_VALUE, f"{name} has TXT records, but none is {wanted}.")
