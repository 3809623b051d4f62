"""`spine-cds replay --fhir-server`: the export is downloaded by the one Bulk Data client
(cds_service.bulk_export) and then replayed; a failed export replays nothing.

The server is the tests' real Bulk Data server on 127.0.0.1 (the project's FHIR test
server has no $export), serving a generated population."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from tests.impact.helpers import write_population
from tests.support.bulk_export_server import BulkExportServer

TOKEN = "replay-export-token"


@pytest.fixture
def population(tmp_path: Path) -> Path:
    return write_population(tmp_path / "source", 80)


@pytest.fixture
def server(population: Path) -> Iterator[BulkExportServer]:
    with BulkExportServer(token=TOKEN) as bulk:
        for path in sorted(population.glob("*.ndjson")):
            lines = path.read_text(encoding="utf-8").splitlines()
            resources: list[dict[str, Any]] = [json.loads(line) for line in lines if line]
            if resources:
                bulk.files[resources[0]["resourceType"]] = [resources]
        yield bulk


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def replay(server: BulkExportServer, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        main,
        [
            "replay",
            "--fhir-server",
            server.base_url,
            "--out",
            str(out),
            "--workers",
            "1",
            "--patient-id",
            "plain",
            "--no-progress",
            *extra,
        ],
        env={"FHIR_ACCESS_TOKEN": TOKEN},
    )


def test_replay_runs_a_patient_level_export_first(server: BulkExportServer, tmp_path: Path) -> None:
    result = replay(server, tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["linesRead"]["Patient"] == 80
    assert summary["orders"] > 0
    kick_off = next(s for s in server.seen if s.path.split("?")[0].endswith("/$export"))
    assert kick_off.path.startswith("/fhir/Patient/$export")
    assert (tmp_path / "out" / "export" / "export-manifest.json").is_file()


def test_replay_says_when_the_export_fails_and_replays_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.fail_with = "exports are not allowed for this client"
    result = replay(server, tmp_path / "out")
    assert result.exit_code == 3, result.output
    assert "exports are not allowed for this client" in result.stderr
    assert not (tmp_path / "out" / "summary.json").exists()
    assert not list((tmp_path / "out" / "export").glob("*.ndjson"))
