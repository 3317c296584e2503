"""API key tokens (docs/api-keys.md, the thub_ format): shape, checksum, storage."""

from __future__ import annotations

import hashlib
import re
import string
import zlib
from collections import Counter

import pytest

from terminus_hub import api_tokens

TOKEN = re.compile(r"^thub_[0-9A-Za-z]{32}$")
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def base62(number: int, width: int) -> str:
    """Independent base62 (digits, upper, lower), most significant digit first."""
    digits = ""
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits = BASE62[remainder] + digits
    assert number == 0, "does not fit"
    return digits


@pytest.fixture(scope="module")
def many_tokens() -> list[str]:
    return [api_tokens.generate() for _ in range(10_000)]


def test_a_token_is_thub_and_32_base62_characters() -> None:
    token = api_tokens.generate()
    assert TOKEN.fullmatch(token)
    assert len(token) == 37


def test_the_last_six_characters_are_the_base62_crc32_of_the_body() -> None:
    token = api_tokens.generate()
    body, check = token[5:31], token[31:]
    assert len(body) == 26
    assert check == base62(zlib.crc32(body.encode("ascii")), 6)


def test_a_token_made_by_hand_with_a_correct_checksum_is_well_formed() -> None:
    body = "A" * 26
    assert api_tokens.is_well_formed("thub_" + body + base62(zlib.crc32(body.encode()), 6))


def test_generated_tokens_are_well_formed(many_tokens: list[str]) -> None:
    assert all(TOKEN.fullmatch(t) and api_tokens.is_well_formed(t) for t in many_tokens)


def test_generated_tokens_are_unique(many_tokens: list[str]) -> None:
    assert len(set(many_tokens)) == len(many_tokens)
    assert len({t[5:31] for t in many_tokens}) == len(many_tokens)


def test_token_bodies_use_the_whole_alphabet_evenly(many_tokens: list[str]) -> None:
    # Chi-square over the 62 symbols of 260,000 body characters (61 degrees of freedom);
    # 140 is far in the tail (p < 1e-7), so a fair generator practically never fails.
    counts = Counter("".join(t[5:31] for t in many_tokens))
    assert set(counts) == set(BASE62)
    total = sum(counts.values())
    expected = total / 62
    chi_square = sum((counts[c] - expected) ** 2 / expected for c in BASE62)
    assert chi_square < 140


def test_every_one_character_change_fails_the_check() -> None:
    token = api_tokens.generate()
    candidates = BASE62 + "_-+/=.é0"
    changed = 0
    for position in range(len(token)):
        for replacement in candidates:
            if replacement == token[position]:
                continue
            mutated = token[:position] + replacement + token[position + 1 :]
            assert not api_tokens.is_well_formed(mutated), (position, replacement)
            changed += 1
    assert changed > 37 * 60


def test_every_dropped_or_added_character_fails_the_check() -> None:
    token = api_tokens.generate()
    for position in range(len(token) + 1):
        assert not api_tokens.is_well_formed(token[:position] + "A" + token[position:])
        if position < len(token):
            assert not api_tokens.is_well_formed(token[:position] + token[position + 1 :])


def test_swapping_two_neighbouring_body_characters_fails_the_check() -> None:
    token = api_tokens.generate()
    for position in range(5, 30):
        a, b = token[position], token[position + 1]
        if a != b:
            swapped = token[:position] + b + a + token[position + 2 :]
            assert not api_tokens.is_well_formed(swapped)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "thub_",
        "thub_" + "a" * 31,
        "thub_" + "a" * 33,
        "THUB_" + "a" * 32,
        "ghp_" + "a" * 33,
        "thub-" + "a" * 32,
        " thub_" + "a" * 31,
        "thub_" + "а" * 32,  # Cyrillic а: a look-alike of Latin a
        "thub_" + "a" * 31 + "\x00",
    ],
)
def test_malformed_tokens_are_not_well_formed(token: str) -> None:
    assert not api_tokens.is_well_formed(token)


def test_a_token_with_a_wrong_case_in_its_checksum_fails() -> None:
    token = api_tokens.generate()
    flipped = token[:-1] + token[-1].swapcase()
    if flipped != token:
        assert not api_tokens.is_well_formed(flipped)


def test_display_prefix_is_thub_and_six_characters_of_the_token() -> None:
    token = api_tokens.generate()
    prefix = api_tokens.display_prefix(token)
    assert prefix == token[:11]
    assert prefix.startswith("thub_") and len(prefix) == 11
    # The prefix shows only the start of the random body, never the checksum.
    assert token[31:] not in prefix


def test_hash_is_the_sha256_hex_digest_of_the_token() -> None:
    token = api_tokens.generate()
    digest = api_tokens.token_hash(token)
    assert digest == hashlib.sha256(token.encode("ascii")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert token not in digest


def test_different_tokens_have_different_hashes() -> None:
    first, second = api_tokens.generate(), api_tokens.generate()
    assert api_tokens.token_hash(first) != api_tokens.token_hash(second)
