"""A site's ``hooks_file`` that cannot be used stops startup with a message naming the
setting and the file, as ``trusted_clients_file`` and ``valueset_dir`` do, and never
with a traceback (docs/deployment.md: "so do a broken hooks.json")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cds_service
from cds_service.discovery import load_discovery
from cds_service.runtime import build_runtime
from tests.conftest import make_settings

HOOKS_JSON = Path(cds_service.__file__).resolve().parent.parent / "hooks.json"


def site_hooks(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site-hooks.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_hooks_file_is_named_with_its_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.json"
    with pytest.raises(ValueError, match=rf"^hooks_file {re.escape(str(missing))} does not exist$"):
        load_discovery(str(missing))


def test_a_hooks_file_that_is_not_json_is_named_with_its_setting(tmp_path: Path) -> None:
    path = site_hooks(tmp_path, "spine-cds-host\n")
    with pytest.raises(
        ValueError, match=rf"^hooks_file {re.escape(str(path))} is not valid JSON: Expecting"
    ):
        load_discovery(str(path))


def test_a_directory_as_hooks_file_is_named_with_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=rf"^hooks_file {re.escape(str(tmp_path))} is a directory"):
        load_discovery(str(tmp_path))


def test_a_site_hooks_file_that_does_not_conform_names_the_file(tmp_path: Path) -> None:
    path = site_hooks(tmp_path, json.dumps({"services": [{"hook": "order-select"}]}))
    with pytest.raises(ValueError, match=rf"^hooks_file {re.escape(str(path))} does not conform"):
        load_discovery(str(path))


def test_a_site_hooks_file_at_odds_with_the_data_sources_names_the_file(
    tmp_path: Path,
) -> None:
    document = json.loads(HOOKS_JSON.read_text(encoding="utf-8"))
    for service in document["services"]:
        service["prefetch"]["crp_values"] = service["prefetch"].pop("crp")
    path = site_hooks(tmp_path, json.dumps(document))
    settings = make_settings(tmp_path, hooks_file=str(path))
    with pytest.raises(
        ValueError, match=rf"^hooks_file {re.escape(str(path))} and the data sources disagree"
    ):
        build_runtime(settings)


def test_the_shipped_file_keeps_its_own_name() -> None:
    assert load_discovery().source == "hooks.json"


def test_serve_stops_on_a_missing_hooks_file_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.json"
    env = {
        **os.environ,
        "SPINE_CDS_HOOKS_FILE": str(missing),
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_PORT": "18690",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--dev"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"configuration error: hooks_file {missing} does not exist" in done.stderr
