"""Every example in docs/ runs against the app, so the documentation cannot rot."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from terminus_hub.api_tokens import generate
from terminus_hub.core.keyring import create_key
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Workspace
from terminus_hub.settings import DEFAULTS
from tests import factories

DOCS = Path(__file__).resolve().parent.parent / "docs"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
PY_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"^# → (\d{3})\s*(.*)$")


def _examples() -> list[tuple[str, str, int, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for block in SH_BLOCK.findall(page.read_text()):
            lines = block.replace("\\\n", " ").splitlines()
            for index, line in enumerate(lines):
                if not line.startswith("curl ") or index + 1 >= len(lines):
                    continue
                expected = EXPECT.match(lines[index + 1])
                if expected:
                    found.append((page.name, line, int(expected[1]), expected[2]))
    return found


EXAMPLES = _examples()


def _loose_json(text: str) -> Any:
    if not text:
        return None
    # "…" stands for any value: bare ones become null, lists of … become empty.
    text = re.sub(r"\[…\]", "[]", text)
    text = re.sub(r"(?<=[:\[,])\s*…", " null", text)
    return json.loads(text)


def _matches(expected: Any, actual: Any) -> bool:
    if expected is None or expected == "…":
        return True
    if isinstance(expected, str):
        prefix = expected.split("…")[0]
        return expected == actual or (
            "…" in expected and isinstance(actual, str) and actual.startswith(prefix)
        )
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            _matches(e, a) for e, a in zip(expected, actual, strict=False)
        )
    return expected == actual


@pytest.fixture
def world(app, auth, client):
    """An owner signed in (cookies.txt), a key ($THUB_KEY), Main's id, a key to revoke."""
    person = factories.make_person(app)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == person.account_slug))
        _, token = create_key(account, "docs", creator=None)
        doomed, _ = create_key(account, "doomed", creator=None)
        workspace = db.session.scalar(select(Workspace).where(Workspace.account_id == account.id))
        values = {"THUB_KEY": token, "WORKSPACE_ID": workspace.id, "KEY_ID": doomed.id}
        db.session.commit()
    auth.sign_in(person.email, person.password)
    page = client.get(f"/a/{person.account_slug}/").get_data(as_text=True)
    values["CSRF"] = re.search(r'name="csrf-token" content="([^"]+)"', page)[1]
    return values


def _run(app, client, command: str, values: dict[str, str]):
    for name, value in values.items():
        command = command.replace(f"${name}", value)
    words = shlex.split(command)[1:]
    method, headers, body, url, with_cookies = "GET", {}, None, None, False
    words_iter = iter(words)
    for word in words_iter:
        if word == "-X":
            method = next(words_iter)
        elif word == "-H":
            name, _, value = next(words_iter).partition(": ")
            headers[name] = value
        elif word == "-d":
            body = next(words_iter)
        elif word == "-b":
            next(words_iter)
            with_cookies = True
        else:
            url = word
    path = re.sub(r"^https?://[^/]+", "", url)
    caller = client if with_cookies else app.test_client()
    return caller.open(path, method=method, headers=headers, data=body)


@pytest.mark.parametrize(
    ("page", "command", "status", "body"),
    EXAMPLES,
    ids=[f"{page}:{command[:60]}" for page, command, _, _ in EXAMPLES],
)
def test_documented_curl_examples_answer_as_shown(app, client, world, page, command, status, body):
    response = _run(app, client, command, world)
    assert response.status_code == status, response.get_data(as_text=True)
    if body:
        assert _matches(_loose_json(body), response.get_json()), response.get_data(as_text=True)


def test_the_docs_have_examples_on_every_api_page():
    pages = {page for page, _, _, _ in EXAMPLES}
    assert {"api-overview.md", "api-authentication.md", "api-keys.md", "quickstart.md"} <= pages


def test_the_secret_scanner_snippet_tells_keys_from_typos():
    [snippet] = PY_BLOCK.findall((DOCS / "api-keys.md").read_text())
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # noqa: S102 (our own documentation)
    check = namespace["looks_like_a_terminus_key"]
    token = generate()
    assert check(token)
    assert not check(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not check("thub_" + "x" * 32)


def test_every_setting_is_in_the_configuration_reference():
    reference = (DOCS / "operations.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in reference]
    assert missing == []


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["users", "create"],
        ["users", "unlock"],
        ["accounts", "create"],
        ["accounts", "add-member"],
        ["sso", "configure"],
        ["keys", "list"],
        ["keys", "create"],
        ["keys", "revoke"],
        ["keys", "notify-expiring"],
        ["mail", "send-pending"],
        ["audit", "export"],
    ],
)
def test_every_documented_command_exists(runner, command):
    assert f"`{' '.join(command)}" in (DOCS / "operations.md").read_text()
    result = runner.invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
