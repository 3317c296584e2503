"""A Python client generated from the served OpenAPI document (openapi-python-client) runs the
documented workflow against a live server: if the document and the API disagree, this fails.

The server is the real thing under gunicorn; the account and its first key come from the
operator's commands, the rest goes through the generated code only (a browser-like sign-in
gives the session that manages keys).
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests import processes
from tests.ports import free_port
from tests.processes import Gunicorn

PASSWORD = "generated client pass 7"
OWNER = "owner@client.example"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Live:
    def __init__(self, server: Gunicorn, token: str, client: ModuleType) -> None:
        self.server = server
        self.token = token
        self.client = client

    @property
    def api(self) -> str:
        return f"{self.server.url}/api/v1"

    def module(self, name: str) -> Any:
        return importlib.import_module(f"thub_client.{name}")


def _flask(env: dict[str, str], *args: str) -> str:
    done = processes.flask(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("generated-client")
    with processes.fresh_database(workdir, "thub_client") as database_url:
        yield from _serve(workdir, database_url)


def _serve(workdir: Path, database_url: str) -> Iterator[Live]:
    port = free_port()
    env = processes.one_host_environment(
        workdir,
        DATABASE_URL=database_url,
        FLASK_TERMINUS_BASE_URL=f"http://{processes.HOST}:{port}",
        FLASK_SESSION_COOKIE_SECURE="false",
    )
    if os.environ.get("TEST_REDIS_URL"):
        env["FLASK_RATELIMIT_STORAGE_URI"] = f'"{os.environ["TEST_REDIS_URL"]}"'
        env["FLASK_RATELIMIT_KEY_PREFIX"] = f'"thub-client-{secrets.token_hex(4)}"'
    _flask(env, "db", "upgrade")
    _flask(env, "users", "create", OWNER, "--password", PASSWORD, "--confirmed")
    _flask(env, "accounts", "create", "Acme", "--owner", OWNER)
    token = _flask(env, "keys", "create", "acme", "Generated client").strip().splitlines()[-1]
    server = Gunicorn("hub", env, workdir, workers=1, port=port)
    server.start()
    try:
        server.wait_ready(ready=lambda status: status in (200, 503))
        document = workdir / "openapi.json"
        served = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10)
        assert served.status_code == 200
        document.write_bytes(served.content)
        package = _generate(document, workdir)
        sys.path.insert(0, str(package.parent))
        try:
            yield Live(server, token, importlib.import_module("thub_client"))
        finally:
            sys.path.remove(str(package.parent))
            for name in [name for name in sys.modules if name.startswith("thub_client")]:
                del sys.modules[name]
    finally:
        server.stop()


def _generate(document: Path, workdir: Path) -> Path:
    config = workdir / "client.yml"
    config.write_text(
        "package_name_override: thub_client\nproject_name_override: thub-client\npost_hooks: []\n"
    )
    output = workdir / "client" / "thub_client"
    generated = subprocess.run(
        [
            str(processes.BIN / "openapi-python-client"),
            *("generate", "--path", str(document), "--config", str(config)),
            *("--meta", "none", "--output-path", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # The generator says "Warning" for anything of the document it could not turn into code.
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout
    return output


def _session(live: Live) -> Any:
    """Sign in as the owner the way a browser does; a generated Client with that session."""
    with httpx.Client(base_url=live.server.url, timeout=10) as browser:
        form = browser.get("/sign_in/password").text
        csrf = CSRF_META.search(form).group(1)
        signed_in = browser.post(
            "/sign_in/password",
            data={"csrf_token": csrf, "email": OWNER, "password": PASSWORD},
        )
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get("/a/acme/").text
        csrf = CSRF_META.search(page).group(1)
        cookies = {"thub_session": browser.cookies["thub_session"]}
    return live.client.Client(
        base_url=live.api, cookies=cookies, headers={"X-CSRFToken": csrf}, timeout=10
    )


def _code(error: Any) -> str:
    code = error.error.code
    return code if isinstance(code, str) else code.value


def test_the_documented_workflow_runs_through_the_generated_client(live: Live) -> None:
    models = live.module("models")
    account_api = live.module("api.account.get_account")
    workspaces = live.module("api.workspaces")
    records = live.module("api.records")
    client = live.client.AuthenticatedClient(base_url=live.api, token=live.token, timeout=10)

    account = account_api.sync(client=client)
    assert isinstance(account, models.Account)
    assert account.slug == "acme"
    assert account.auth == models.AccountAuthType0.API_KEY

    main = importlib.import_module(f"{workspaces.__name__}.list_workspaces").sync(client=client)
    assert [w.name for w in main.data] == ["Main"] and main.has_more is False

    create_workspace = importlib.import_module(f"{workspaces.__name__}.create_workspace")
    made = create_workspace.sync_detailed(
        client=client, body=models.WorkspaceInput(name="Ops"), idempotency_key="ws-ops-1"
    )
    assert made.status_code == 201
    ops = made.parsed
    assert made.headers["Location"] == f"/api/v1/workspaces/{ops.id}"
    again = create_workspace.sync_detailed(
        client=client, body=models.WorkspaceInput(name="Ops"), idempotency_key="ws-ops-1"
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.id == ops.id

    create_record = importlib.import_module(f"{records.__name__}.create_record")
    ids = []
    for number in range(5):
        record = create_record.sync(
            client=client,
            body=models.RecordInput(
                workspace_id=ops.id,
                title=f"Invoice {number}",
                data=models.RecordInputData.from_dict({"total": number * 10}),
            ),
        )
        assert isinstance(record, models.Record), record
        ids.append(record.id)

    list_records = importlib.import_module(f"{records.__name__}.list_records")
    seen, cursor, pages = [], None, 0
    while True:
        kwargs = {"cursor": cursor} if cursor else {}
        page = list_records.sync(client=client, workspace_id=ops.id, limit=2, **kwargs)
        pages += 1
        seen += [record.id for record in page.data]
        if not page.has_more:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert seen == ids and pages == 3

    update_record = importlib.import_module(f"{records.__name__}.update_record")
    changed = update_record.sync(
        client=client, record_id=ids[0], body=models.RecordPatch(title="Invoice 0, paid")
    )
    assert changed.title == "Invoice 0, paid"
    assert changed.data.to_dict() == {"total": 0}
    delete_record = importlib.import_module(f"{records.__name__}.delete_record")
    assert delete_record.sync_detailed(client=client, record_id=ids[1]).status_code == 204

    # Errors arrive as the documented Error model.
    get_record = importlib.import_module(f"{records.__name__}.get_record")
    missing = get_record.sync_detailed(client=client, record_id=ids[1])
    assert missing.status_code == 404 and _code(missing.parsed) == "not_found"
    bad = create_workspace.sync_detailed(client=client, body=models.WorkspaceInput(name=""))
    assert bad.status_code == 422 and _code(bad.parsed) == "validation_error"
    assert "name" in bad.parsed.error.fields.to_dict()


def test_keys_are_managed_with_a_session_through_the_generated_client(live: Live) -> None:
    models = live.module("models")
    keys = live.module("api.api_keys")
    session = _session(live)

    create_api_key = importlib.import_module(f"{keys.__name__}.create_api_key")
    answer = create_api_key.sync_detailed(
        client=session,
        body=models.ApiKeyInput(
            name="Reports",
            scopes=[models.ApiKeyInputScopesItem("records:read")],
            expires_in_days=30,
        ),
    )
    assert answer.status_code == 201, answer.content
    reports = answer.parsed
    assert isinstance(reports, models.NewApiKey)
    assert reports.key.startswith("thub_") and reports.expires_at is not None
    assert [scope.value for scope in reports.scopes] == ["records:read"]

    reader = live.client.AuthenticatedClient(base_url=live.api, token=reports.key, timeout=10)
    list_records = live.module("api.records.list_records")
    assert list_records.sync_detailed(client=reader).status_code == 200
    create_workspace = live.module("api.workspaces.create_workspace")
    refused = create_workspace.sync_detailed(client=reader, body=models.WorkspaceInput(name="X"))
    assert refused.status_code == 403 and _code(refused.parsed) == "insufficient_scope"
    assert 'scope="workspaces:write"' in refused.headers["WWW-Authenticate"]

    roll = importlib.import_module(f"{keys.__name__}.roll_api_key")
    rolled = roll.sync_detailed(
        client=session, key_id=reports.id, body=models.ApiKeyRoll(expires_in_hours=0)
    )
    assert rolled.status_code == 201, rolled.content
    assert rolled.parsed.name == "Reports" and rolled.parsed.id != reports.id
    get_account = live.module("api.account.get_account")
    expired = get_account.sync_detailed(client=reader)
    assert expired.status_code == 401 and "expired" in expired.parsed.error.message

    list_api_keys = importlib.import_module(f"{keys.__name__}.list_api_keys")
    listed = {key.id: key for key in list_api_keys.sync(client=session).data}
    assert {reports.id, rolled.parsed.id} <= set(listed)
    delete_api_key = importlib.import_module(f"{keys.__name__}.delete_api_key")
    assert delete_api_key.sync_detailed(client=session, key_id=reports.id).status_code == 204
    assert reports.id not in {key.id for key in list_api_keys.sync(client=session).data}

    # A key cannot manage keys, whatever its scopes.
    owner_key = live.client.AuthenticatedClient(base_url=live.api, token=live.token, timeout=10)
    denied = create_api_key.sync_detailed(client=owner_key, body=models.ApiKeyInput(name="No"))
    assert denied.status_code == 403 and _code(denied.parsed) == "admin_only"
