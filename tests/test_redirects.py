"""safe_next keeps redirects on this site."""

from __future__ import annotations

import pytest

from terminus_hub.redirects import safe_next


@pytest.mark.parametrize("target", ["/accounts", "/a/acme/", "/a/acme/?tab=keys#x"])
def test_local_paths_are_kept(target):
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        " /accounts",
        "\t//evil.example",
        "https://evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "accounts",
        "/" + "a" * 3000,
        "/ok\r\nSet-Cookie: x=y",
    ],
)
def test_anything_else_is_dropped(target):
    assert safe_next(target) is None
