"""The $export client against a small Bulk Data server on 127.0.0.1.

The project's FHIR test server (Medplum's router) has no $export, so a server of the
IG's exchange stands in: kick-off, 202 with Retry-After while in progress, the manifest,
the files, and on demand the faults a real server gives at random (a refused kick-off,
a job that never ends, a file that cannot be downloaded).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.impact.bulk import MANIFEST, BulkExportError, retry_after, run_export
from tests.impact.helpers import write_population

TOKEN = "bulk-test-token"


class BulkServer:
    def __init__(self, files: Path, mode: str = "ok") -> None:
        self.files = files
        self.mode = mode
        self.polls = 0
        self.deleted = False
        self.kickoff_query = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None: ...

            def _send(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self) -> None:
                server.deleted = True
                self._send(202)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/fhir/Patient/$export":
                    server.kickoff_query = query
                    if server.mode == "kickoff-fails":
                        outcome = {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {
                                    "severity": "error",
                                    "code": "forbidden",
                                    "diagnostics": "exports are not allowed for this client",
                                }
                            ],
                        }
                        self._send(403, json.dumps(outcome).encode())
                    elif self.headers.get("Prefer") != "respond-async":
                        self._send(400)
                    else:
                        self._send(202, headers={"Content-Location": "/fhir/status/1"})
                elif path == "/fhir/status/1":
                    server.polls += 1
                    if server.mode == "never" or server.polls < 3:
                        self._send(
                            202, headers={"Retry-After": "0", "X-Progress": f"step {server.polls}"}
                        )
                        return
                    names = sorted(p.name for p in server.files.iterdir())
                    if server.mode == "download-404":
                        names.append("Missing.ndjson")
                    manifest = {
                        "transactionTime": "2026-12-06T09:00:00Z",
                        "request": "/fhir/Patient/$export",
                        "requiresAccessToken": True,
                        "output": [{"type": n.split(".")[0], "url": f"/files/{n}"} for n in names],
                        "error": [],
                    }
                    self._send(200, json.dumps(manifest).encode())
                elif path.startswith("/files/"):
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        self._send(401)
                        return
                    target = server.files / path.removeprefix("/files/")
                    if not target.is_file():
                        self._send(404)
                        return
                    self._send(
                        200, target.read_bytes(), {"Content-Type": "application/fhir+ndjson"}
                    )
                else:
                    self._send(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> BulkServer:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def population(tmp_path: Path) -> Path:
    return write_population(tmp_path / "source", 80)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # 127.0.0.1 only, whatever proxy the environment names
        yield s


def test_export_polls_downloads_and_writes_the_manifest_last(
    population: Path, tmp_path: Path, session: requests.Session
) -> None:
    with BulkServer(population) as server:
        statuses: list[str] = []
        done = run_export(
            server.url,
            tmp_path / "export",
            TOKEN,
            session=session,
            sleep=lambda s: None,
            on_status=statuses.append,
        )
    assert statuses == ["step 1", "step 2"]
    assert "_type=Patient%2CCondition" in server.kickoff_query
    assert [p.read_bytes() for p in done.files] == [
        p.read_bytes() for p in sorted(population.iterdir())
    ]
    assert (tmp_path / "export" / MANIFEST).is_file()
    assert not list((tmp_path / "export").glob("*.partial"))


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("kickoff-fails", "answered 403 Forbidden: exports are not allowed for this client"),
        ("never", "did not finish within 2 s"),
        ("download-404", "Missing.ndjson answered 404"),
    ],
)
def test_a_failed_export_leaves_nothing_that_looks_complete(
    population: Path, tmp_path: Path, session: requests.Session, mode: str, message: str
) -> None:
    with (
        BulkServer(population, mode) as server,
        pytest.raises(BulkExportError, match=message) as raised,
    ):
        run_export(
            server.url,
            tmp_path / "export",
            TOKEN,
            timeout_s=2,
            session=session,
            sleep=lambda s: None,
        )
    assert TOKEN not in str(raised.value)
    assert list((tmp_path / "export").iterdir()) == []
    assert server.deleted is (mode != "kickoff-fails")


def test_replay_runs_the_export_first(
    population: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FHIR_ACCESS_TOKEN", TOKEN)
    for name in (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    with BulkServer(population) as server:
        result = CliRunner().invoke(
            main,
            [
                "replay",
                "--fhir-server",
                server.url,
                "--out",
                str(tmp_path / "out"),
                "--workers",
                "1",
                "--patient-id",
                "plain",
                "--no-progress",
                "--json",
            ],
        )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["linesRead"]["Patient"] == 80
    assert summary["orders"] > 0


def test_replay_says_when_the_export_fails(population: Path, tmp_path: Path) -> None:
    with BulkServer(population, "kickoff-fails") as server:
        result = CliRunner().invoke(
            main,
            [
                "replay",
                "--fhir-server",
                server.url,
                "--out",
                str(tmp_path / "out"),
                "--patient-id",
                "plain",
            ],
        )
    assert result.exit_code == 3
    assert "exports are not allowed for this client (nothing was kept)" in result.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


def test_retry_after_reads_seconds_and_dates_within_bounds() -> None:
    now = datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)
    assert retry_after("5", now) == 5
    assert retry_after("100000", now) == 120
    assert retry_after("Sun, 06 Dec 2026 09:00:30 GMT", now) == 30
    assert retry_after("Sun, 06 Dec 2026 08:00:00 GMT", now) == 0
    assert retry_after(None, now) == 2
    assert retry_after("soon", now) == 2
