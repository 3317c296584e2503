"""An account keeps one workspace even when its last two are deleted at once (PostgreSQL:
real threads, real connections; SQLite serialises writers)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from terminus_hub.api import workspaces
from tests import factories
from tests.factories import Person

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
    ),
    pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 5, "max_overflow": 5}),
]


def test_two_deletes_of_the_last_two_workspaces_keep_one(
    app: Flask, user: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each delete dawdles after finding its workspace, so both are surely in flight together
    # when they count what is left.
    found = workspaces.in_account

    def slow_in_account(*args: Any) -> Any:
        row = found(*args)
        time.sleep(0.3)
        return row

    monkeypatch.setattr(workspaces, "in_account", slow_in_account)
    assert user.account_slug
    _, token = factories.make_api_key(app, user.account_slug)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    second = client.post("/api/v1/workspaces", json={"name": "Second"}, headers=headers)
    ids = [w["id"] for w in client.get("/api/v1/workspaces", headers=headers).get_json()["data"]]
    assert second.status_code == 201 and len(ids) == 2
    barrier = threading.Barrier(2)

    def delete(workspace_id: str) -> int:
        barrier.wait(timeout=30)
        path = f"/api/v1/workspaces/{workspace_id}"
        return app.test_client().delete(path, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(delete, ids, timeout=60))
    assert statuses == [204, 409]
    assert len(client.get("/api/v1/workspaces", headers=headers).get_json()["data"]) == 1
