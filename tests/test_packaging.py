"""The wheel ships every package, template, static file and migration (make package-check
installs it for real; this catches a new subpackage missing from setup.cfg at once)."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def test_every_package_of_the_source_tree_is_listed_for_the_wheel():
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "terminus_hub").rglob("__init__.py")
    }

    assert on_disk | {"terminus_hub.migrations", "terminus_hub.migrations.versions"} == (
        listed_packages()
    )


def test_templates_and_static_files_match_the_package_data_patterns():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["terminus_hub"].split()
    package = ROOT / "terminus_hub"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    wanted = {p for folder in ("templates", "static") for p in (package / folder).rglob("*")}

    assert {p for p in wanted if p.is_file()} <= shipped
