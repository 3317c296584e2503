"""gunicorn.conf.py: settings that two instances on one host must not share."""

from __future__ import annotations

import os
import runpy
import shutil
from typing import Any

import pytest

from tests.processes import REPO


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("BIND", "GUNICORN_CONTROL_SOCKET", "PROMETHEUS_MULTIPROC_DIR"):
        # setenv first, so the teardown puts back what was there (gunicorn.conf.py sets one).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    settings["metrics_folder"] = folder
    if os.path.basename(folder).startswith("terminus-hub-metrics-"):  # one the file made
        shutil.rmtree(folder, ignore_errors=True)
    return settings


def test_each_bind_address_gets_its_own_control_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    first = _settings(monkeypatch, BIND="127.0.0.1:8000")["control_socket"]
    second = _settings(monkeypatch, BIND="127.0.0.1:8001")["control_socket"]
    unix = _settings(monkeypatch, BIND="unix:/run/hub/a.sock")["control_socket"]
    assert len({first, second, unix}) == 3
    assert all(path.endswith(".ctl") and "/run/hub/" not in path for path in (first, unix))
    chosen = _settings(monkeypatch, GUNICORN_CONTROL_SOCKET="/run/hub.ctl")["control_socket"]
    assert chosen == "/run/hub.ctl"


def test_each_master_counts_metrics_in_a_folder_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    one = _settings(monkeypatch)["metrics_folder"]
    two = _settings(monkeypatch)["metrics_folder"]
    assert one != two and "terminus-hub-metrics-" in one
    assert _settings(monkeypatch, PROMETHEUS_MULTIPROC_DIR="/srv/m")["metrics_folder"] == "/srv/m"


def test_what_the_master_imported_is_frozen_before_each_fork(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    settings = _settings(monkeypatch)
    gc.unfreeze()
    try:
        settings["pre_fork"](None, None)
        assert gc.get_freeze_count() > 0  # out of the collector's sight: shared pages stay shared
    finally:
        gc.unfreeze()
