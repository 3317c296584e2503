"""The audit log as people read it: one sentence per event, the rest as labelled details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from terminus_hub.models import AuditEvent

# {actor}: who did it; {person}: whom it is about; other fields come from the event's detail.
SENTENCES: dict[str, str] = {
    "sign_in.succeeded": "{person} signed in",
    "sign_in.failed": "A sign-in as {person} failed",
    "sign_in.second_factor_required": "{person} gave the right password; a second factor was asked",
    "reauthentication.succeeded": "{person} confirmed it was them",
    "reauthentication.failed": "{person} could not confirm it was them",
    "account.locked": "{person} was locked out after too many failed sign-ins",
    "account.unlocked": "{person} was unlocked",
    "account.unconfirmed_claim_cleared": "An unconfirmed sign-up with {person}’s address ended",
    "password.reset_requested": "A password reset was asked for {person}",
    "password.changed": "{person} changed their password",
    "email.change_requested": "{person} asked to change their email address",
    "email.changed": "{person} changed their email address",
    "user.renamed": "{person} changed their name",
    "mfa.totp_enabled": "{person} turned on an authenticator app",
    "mfa.totp_disabled": "{person} turned off their authenticator app",
    "mfa.recovery_codes_generated": "{person} made new recovery codes",
    "mfa.recovery_code_used": "{person} signed in with a recovery code",
    "mfa.reset": "{person}’s second factors were reset",
    "passkey.registered": "{person} added a passkey",
    "passkey.renamed": "{person} renamed a passkey",
    "passkey.deleted": "{person} removed a passkey",
    "passkey.refused": "A passkey was refused for {person}",
    "passkey.counter_regressed": "A passkey of {person} went back in its count (it may be a copy)",
    "sso.sign_in_succeeded": "{person} signed in through the identity provider",
    "sso.sign_in_failed": "A sign-in through the identity provider failed",
    "sso.settings_changed": "{actor} changed the single sign-on settings",
    "sso.domain_verified": "The domain {domain} was verified",
    "sso.domain_unverified": "The domain {domain} lost its verification",
    "sso.metadata_expired": "The identity provider’s metadata expired",
    "api_key.created": "{actor} created the API key “{name}”",
    "api_key.revoked": "{actor} revoked the API key “{name}”",
    "api_key.rolled": "{actor} rolled the API key “{name}”",
    "member.invited": "{actor} invited {email} as {role}",
    "member.invitation_revoked": "{actor} withdrew the invitation of {email}",
    "member.joined": "{person} joined as {role}",
    "member.role_changed": "{actor} made {person} {to}",
    "member.removed": "{actor} removed {person}",
    "account.renamed": "{actor} renamed the account to “{to}”",
    "account.mfa_policy_changed": "{actor} changed the second-factor rule for owners and admins",
    "session.revoked": "{person} signed out a session",
}
# The same events, told differently when their detail says so.
_VARIANTS: dict[tuple[str, str, Any], str] = {
    ("member.removed", "left", True): "{person} left the account",
    ("session.revoked", "which", "others"): "{person} signed out every other session",
    ("account.mfa_policy_changed", "required", True): (
        "{actor} required a second factor for owners and admins"
    ),
    ("account.mfa_policy_changed", "required", False): (
        "{actor} stopped requiring a second factor for owners and admins"
    ),
}
ACTORS = {"operator": "An operator", "anonymous": "Someone"}


@dataclass(frozen=True)
class Told:
    """An event as the page shows it."""

    sentence: str
    details: list[tuple[str, str]]


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "—"


def tell(event: AuditEvent, people: Mapping[str, str]) -> Told:
    """Say what happened, naming people as ``people`` gives them (see ``person_label``); keep
    every detail field the sentence does not say."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    fields = _Fields({k: _text(v) for k, v in detail.items() if isinstance(k, str)})
    fields["person"] = people.get(event.user_id or "", "someone") if event.user_id else "someone"
    fields["actor"] = _actor(event, people)
    template = SENTENCES.get(event.kind)
    said: set[str] = set()
    for (kind, key, value), variant in _VARIANTS.items():
        if kind == event.kind and detail.get(key) == value:
            template, said = variant, {key}
    if template is None:
        sentence = event.kind
    else:
        sentence = Formatter().vformat(template, (), fields)
        said |= {name for _, name, _, _ in Formatter().parse(template) if name}
        # A sentence that opens with a person keeps their name or address as it is written.
        if not template.startswith("{") or sentence.startswith("someone"):
            sentence = sentence[:1].upper() + sentence[1:]
    details = [(_label(k), _text(v)) for k, v in detail.items() if k not in said]
    if event.actor_type == "api_key" and event.actor_id:
        details.append(("API key", event.actor_id))
    if event.ip_address:
        details.append(("From", event.ip_address))
    details.append(("Event", event.kind))
    return Told(sentence=sentence, details=details)


def person_label(name: str | None, email: str) -> str:
    """How the log names a person: their name with their address, which is theirs alone (a name
    is whatever they chose, and may be someone else's), or the address alone."""
    return f"{name} ({email})" if name and name != email else email


def _actor(event: AuditEvent, people: Mapping[str, str]) -> str:
    if event.actor_type == "user" and event.actor_id:
        return people.get(event.actor_id, "someone")
    if event.actor_type == "api_key":
        return "An API key"
    return ACTORS.get(event.actor_type, "Someone")


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{_label(str(k))}: {_text(v)}" for k, v in value.items()) or "none"
    return "—" if value is None else str(value)


_WORDS = {"api": "API", "sso": "SSO", "mfa": "second factor", "totp": "authenticator app"}


def kind_label(kind: str) -> str:
    """An event kind as a filter option reads it: "api_key.created" is "API key created"."""
    words = [_WORDS.get(w, w) for w in kind.replace(".", " ").replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]
