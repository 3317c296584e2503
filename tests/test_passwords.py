"""Password hashing: every character counts, normalised, one check for unknown users."""

from __future__ import annotations

import pytest

from terminus_hub import passwords
from terminus_hub.passwords import hash_password
from terminus_hub.passwords import verify_password


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def test_characters_past_72_bytes_count(ctx):
    password = "p" * 80
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert not verify_password(password[:72], stored)


def test_a_1024_character_password_round_trips(ctx):
    password = "ab1-" * 256
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert not verify_password(password[:-1] + "x", stored)


def test_unicode_is_normalised_at_set_and_verify(ctx):
    stored = hash_password("caf\u00e9 au lait, s'il vous plaît")
    assert verify_password("cafe\u0301 au lait, s'il vous plaît", stored)


def test_hashes_are_salted_and_use_the_configured_cost(ctx, app):
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second
    assert first.startswith("bcrypt_sha256$$2b$04$")


def test_missing_hash_still_pays_for_one_check(ctx, monkeypatch):
    calls = []
    real = passwords.bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    assert not verify_password("anything", None)
    assert calls == [1]


def test_unknown_email_and_wrong_password_each_check_once(app, auth, user, monkeypatch):
    calls = []
    real = passwords.bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    auth.sign_in("nobody@example.com", "wrong password here")
    auth.sign_in(user.email, "wrong password here")
    assert calls == [1, 1]


def test_a_locked_user_still_pays_for_exactly_one_check(app, auth, user, monkeypatch):
    for _ in range(5):
        auth.sign_in(user.email, "wrong password here")
    calls = []
    real = passwords.bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    auth.sign_in(user.email, user.password)
    assert calls == [1]
