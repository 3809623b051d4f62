"""The Bulk Data export download against a real HTTP server on 127.0.0.1.

``tests/support/bulk_export_server.py`` speaks the IG's kick-off/status/download
protocol over real sockets and misbehaves on demand (throttling, failure, a file cut
short, a hang, files on another origin). What is checked is what a user relies on: the
files are byte for byte the server's, the token goes nowhere but the FHIR server's
origin, and a failure or time-out leaves nothing that looks like an export.
All data is synthetic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import click
import pytest
import requests
from click.testing import CliRunner

from cds_service.bulk_export import (
    MANIFEST_NAME,
    BulkExportError,
    BulkExportInputError,
    ExportProgress,
    download_export,
)
from cds_service.bulk_export.protocol import (
    ProtocolError,
    read_manifest,
    retry_after_seconds,
    wait_seconds,
)
from cds_service.cli import main
from tests.support.bulk_export_server import TRANSACTION_TIME, BulkExportServer
from tests.support.signals import sigint_at_default

TOKEN = "bulk-test-token-3f9a"
pytestmark = pytest.mark.timeout(60)


def patient(n: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"p{n}", "gender": "female"}


def observation(n: int, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "valueQuantity": {"value": 10 + n, "unit": "mg/L"},
    }


def fill(server: BulkExportServer) -> None:
    """Two Patient lines; Observations over two files, the second large (many chunks)."""
    server.files = {
        "Patient": [[patient(1), patient(2)]],
        "Observation": [
            [observation(1, "p1")],
            [observation(n, "p2") for n in range(2, 2000)],
        ],
    }


@pytest.fixture
def server() -> Iterator[BulkExportServer]:
    with BulkExportServer(token=TOKEN) as running:
        fill(running)
        yield running


@pytest.fixture
def other() -> Iterator[BulkExportServer]:
    """A second server: another origin (another port) for files or status."""
    with BulkExportServer() as running:
        yield running


def run(server: BulkExportServer, out: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "bearer_token": TOKEN,
        "poll_min_s": 0.01,
        "poll_max_s": 0.2,
        "timeout_s": 5.0,
        "poll_limit_s": 10.0,
    }
    options.update(kwargs)
    return download_export(server.base_url, out, **options)


def assert_nothing_kept(out: Path) -> None:
    """No file of the export, no manifest and no temporary directory in ``out``."""
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], left


def deletes(server: BulkExportServer) -> list[str]:
    return [s.path for s in server.seen if s.method == "DELETE"]


# --- a complete export -------------------------------------------------------------------


def test_complete_export_is_the_servers_files_byte_for_byte_with_a_manifest(
    server: BulkExportServer, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    result = run(server, out, types=["Patient", "Observation"], since="2025-01-01T00:00:00Z")

    assert (out / "Patient.ndjson").read_bytes() == server.ndjson("Patient.1")
    assert (out / "Observation.ndjson").read_bytes() == server.ndjson("Observation.1")
    assert (out / "Observation.2.ndjson").read_bytes() == server.ndjson("Observation.2")
    assert sorted(p.name for p in out.iterdir()) == [
        "Observation.2.ndjson",
        "Observation.ndjson",
        "Patient.ndjson",
        MANIFEST_NAME,
    ]
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["transactionTime"] == TRANSACTION_TIME
    assert manifest["fhirServer"] == server.base_url
    assert manifest["types"] == ["Patient", "Observation"]
    assert [(f["file"], f["type"], f["count"]) for f in manifest["files"]] == [
        ("Patient.ndjson", "Patient", 2),
        ("Observation.ndjson", "Observation", 1),
        ("Observation.2.ndjson", "Observation", 1998),
    ]
    assert manifest["errors"] == []
    assert result.transaction_time == TRANSACTION_TIME
    assert [f.lines for f in result.files] == [2, 1, 1998]
    # What the kick-off asked for, as the IG spells it.
    assert server.kick_off_params["_type"] == ["Patient,Observation"]
    assert server.kick_off_params["_since"] == ["2025-01-01T00:00:00Z"]
    kick_off = next(s for s in server.seen if s.path.startswith("/fhir/$export"))
    assert kick_off.headers["Prefer"] == "respond-async"
    assert kick_off.headers["Accept"] == "application/fhir+json"
    download = next(s for s in server.seen if s.path.startswith("/files/"))
    assert download.headers["Accept"] == "application/fhir+ndjson"
    # The job is released on the server once the files are safe.
    assert deletes(server) == ["/status/job1"]


def test_gzip_encoded_files_are_kept_as_the_ndjson_they_encode(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.gzip_files = True
    out = tmp_path / "out"
    result = run(server, out)
    assert (out / "Observation.2.ndjson").read_bytes() == server.ndjson("Observation.2")
    assert [f.lines for f in result.files] == [2, 1, 1998]


def test_group_and_patient_level_exports_kick_off_at_their_urls(
    server: BulkExportServer, tmp_path: Path
) -> None:
    run(server, tmp_path / "group", group_id="nvo cohort")
    run(server, tmp_path / "patients", patient_level=True)
    kick_offs = [s.path.split("?")[0] for s in server.seen if "$export" in s.path]
    assert kick_offs == ["/fhir/Group/nvo%20cohort/$export", "/fhir/Patient/$export"]


def test_waits_as_retry_after_says_in_seconds(server: BulkExportServer, tmp_path: Path) -> None:
    server.retry_after = ["1"]
    started = time.monotonic()
    run(server, tmp_path / "out", poll_min_s=0.01, poll_max_s=5)
    assert time.monotonic() - started >= 0.95
    polls = [s for s in server.seen if s.path.startswith("/status/") and s.method == "GET"]
    assert len(polls) == 2  # once in progress, once complete: no busy polling


def test_waits_as_retry_after_says_as_an_http_date(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.retry_after = [format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)]
    started = time.monotonic()
    run(server, tmp_path / "out", poll_min_s=0.01, poll_max_s=5)
    assert time.monotonic() - started >= 0.9  # the date has whole seconds


def test_a_long_retry_after_is_bounded_by_the_longest_wait(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.retry_after = ["3600"]
    server.polls_before_done = 2
    started = time.monotonic()
    run(server, tmp_path / "out", poll_min_s=0.01, poll_max_s=0.3)
    assert time.monotonic() - started < 5


def test_progress_reports_the_servers_x_progress_and_each_file(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.progress = "exporting Observation: 40%"
    events: list[ExportProgress] = []
    run(server, tmp_path / "out", progress=events.append)
    phases = [e.phase for e in events]
    assert phases[0] == "kick-off" and phases[-1] == "done"
    waiting = [e.message for e in events if e.phase == "waiting"]
    assert waiting and "exporting Observation: 40%" in waiting[0]
    downloading = [
        (e.message, e.files_done, e.files_total) for e in events if e.phase == "downloading"
    ]
    assert downloading == [
        ("Patient.ndjson", 0, 3),
        ("Observation.ndjson", 1, 3),
        ("Observation.2.ndjson", 2, 3),
    ]


def test_throttled_kick_off_and_transient_status_errors_are_retried(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.busy_kick_offs = 2
    server.transient_polls = 2
    result = run(server, tmp_path / "out")
    assert [f.lines for f in result.files] == [2, 1, 1998]
    kick_offs = [s for s in server.seen if "$export" in s.path]
    assert len(kick_offs) == 3


def test_error_files_are_downloaded_apart_and_reported(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.error_files = [
        [
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {"severity": "error", "code": "processing", "diagnostics": "Obs o7 unreadable"}
                ],
            }
        ]
    ]
    out = tmp_path / "out"
    result = run(server, out)
    assert (out / "errors" / "OperationOutcome.ndjson").read_bytes() == server.ndjson("errors.1")
    assert result.error_count == 1
    assert result.error_messages == (
        "OperationOutcome.ndjson: OperationOutcome: 'Obs o7 unreadable'",
    )
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["errors"][0]["file"] == "errors/OperationOutcome.ndjson"
    assert manifest["errorMessages"] == list(result.error_messages)


# --- the token goes to the FHIR server's origin only ----------------------------------


def test_token_is_sent_to_the_fhir_server_for_kick_off_status_and_files(
    server: BulkExportServer, tmp_path: Path
) -> None:
    run(server, tmp_path / "out")
    assert server.seen and {s.authorization for s in server.seen} == {f"Bearer {TOKEN}"}


def test_token_is_not_sent_to_files_on_another_origin(
    server: BulkExportServer, other: BulkExportServer, tmp_path: Path
) -> None:
    other.files = server.files
    server.file_origin = other
    out = tmp_path / "out"
    run(server, out)
    assert (out / "Observation.2.ndjson").read_bytes() == other.ndjson("Observation.2")
    file_requests = [s for s in other.seen if s.path.startswith("/files/")]
    assert len(file_requests) == 3
    assert {s.authorization for s in other.seen} == {None}


def test_token_is_not_sent_after_a_redirect_to_another_origin(
    server: BulkExportServer, other: BulkExportServer, tmp_path: Path
) -> None:
    other.files = server.files
    server.redirect_files_to = other
    out = tmp_path / "out"
    run(server, out)
    assert (out / "Patient.ndjson").read_bytes() == server.ndjson("Patient.1")
    first_hops = [s for s in server.seen if s.path.startswith("/files/")]
    assert {s.authorization for s in first_hops} == {f"Bearer {TOKEN}"}  # same origin
    assert [s.authorization for s in other.seen] == [None, None, None]


def test_token_is_not_sent_to_files_when_the_manifest_says_none_is_needed(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.requires_access_token = False
    run(server, tmp_path / "out")
    files = [s for s in server.seen if s.path.startswith("/files/")]
    assert len(files) == 3 and {s.authorization for s in files} == {None}
    status = [s for s in server.seen if s.path.startswith("/status/")]
    assert {s.authorization for s in status} == {f"Bearer {TOKEN}"}


def test_a_file_host_that_wants_the_token_is_refused_it_and_the_message_says_why(
    server: BulkExportServer, tmp_path: Path
) -> None:
    with BulkExportServer(token="storage-token") as storage:
        storage.files = server.files
        server.file_origin = storage
        out = tmp_path / "out"
        with pytest.raises(BulkExportError, match="on another origin than the FHIR server"):
            run(server, out)
        assert {s.authorization for s in storage.seen} == {None}
    assert not out.exists()


def test_a_callers_session_header_does_not_carry_a_token_elsewhere(
    server: BulkExportServer, other: BulkExportServer, tmp_path: Path
) -> None:
    other.files = server.files
    server.file_origin = other
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer session-default"
        run(server, tmp_path / "out", session=session)
    assert {s.authorization for s in other.seen} == {None}
    assert {s.authorization for s in server.seen} == {f"Bearer {TOKEN}"}


def test_status_url_on_another_origin_gets_no_token_and_the_refusal_says_why(
    server: BulkExportServer, tmp_path: Path
) -> None:
    with BulkExportServer(token="the-other-servers-own") as status_host:
        server.status_origin = status_host
        out = tmp_path / "out"
        with pytest.raises(BulkExportError, match="another origin") as caught:
            run(server, out)
        assert {s.authorization for s in status_host.seen} == {None}
    assert TOKEN not in str(caught.value)
    assert_nothing_kept(out)


# --- failures leave nothing that looks complete -----------------------------------------


def test_failed_export_quotes_the_servers_diagnostics_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.fail_with = "export worker ran out of disk"
    out = tmp_path / "out"
    with pytest.raises(BulkExportError) as caught:
        run(server, out)
    message = str(caught.value.message)
    assert "the export failed (500)" in message
    assert "export worker ran out of disk" in message
    assert caught.value.exit_code == 3
    assert not out.exists()  # it did not exist before: it is not left behind
    assert deletes(server) == ["/status/job1"]


def test_a_servers_long_or_odd_diagnostics_are_bounded_and_escaped(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.fail_with = "\x1b[2J Größe" + "x" * 5000
    with pytest.raises(BulkExportError) as caught:
        run(server, tmp_path / "out")
    message = caught.value.message
    assert len(message) < 500
    assert "\x1b" not in message and "\\x1b[2J Größe" in message


def test_an_export_that_never_finishes_times_out_is_cancelled_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.never_done = True
    server.progress = "12%"
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    with pytest.raises(BulkExportError, match=r"did not finish within 0.5 s.*12%"):
        run(server, out, poll_limit_s=0.5, poll_max_s=0.1)
    assert time.monotonic() - started < 3
    assert_nothing_kept(out)
    assert out.exists()  # the user's own directory stays
    assert deletes(server) == ["/status/job1"]


@pytest.mark.parametrize("fault", ["cut_short", "cut_mid_line"])
def test_a_file_cut_short_fails_the_export_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path, fault: str
) -> None:
    setattr(server, fault, "Observation.2")  # the last file: the others were whole
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BulkExportError, match=r"Observation\.2\.ndjson: cut short"):
        run(server, out)
    assert_nothing_kept(out)
    assert deletes(server) == ["/status/job1"]


def test_a_file_that_hangs_fails_at_the_read_timeout_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.hang_file = "Observation.1"
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(BulkExportError, match=r"Observation.ndjson: cut short \(no data for 0.5 s"):
        run(server, out, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert_nothing_kept(out)


def test_a_file_shorter_than_the_manifests_count_fails(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.wrong_count = True
    out = tmp_path / "out"
    with pytest.raises(BulkExportError, match="manifest counts 3 resources, the file holds 2"):
        run(server, out)
    assert_nothing_kept(out)


def test_an_interrupt_cancels_the_job_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    def interrupt_on_second_file(event: ExportProgress) -> None:
        if event.phase == "downloading" and event.files_done == 1:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(server, out, progress=interrupt_on_second_file)
    assert_nothing_kept(out)
    assert deletes(server) == ["/status/job1"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, "does not offer this \\$export \\(404\\)"),
        (200, "instead of accepting an asynchronous export"),
        (403, "does not allow this export \\(403\\)"),
        (400, "the FHIR server answered 400: OperationOutcome: 'kick-off refused here'"),
    ],
)
def test_a_refused_kick_off_says_why(
    server: BulkExportServer, tmp_path: Path, status: int, expected: str
) -> None:
    server.kick_off_status = status
    with pytest.raises(BulkExportError, match=expected):
        run(server, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_token_is_named_and_a_wrong_one_never_quoted(
    server: BulkExportServer, tmp_path: Path
) -> None:
    with pytest.raises(BulkExportError, match="needs an access token"):
        run(server, tmp_path / "a", bearer_token=None)
    with pytest.raises(BulkExportError, match="refused the access token") as caught:
        run(server, tmp_path / "b", bearer_token="wrong-secret-token")
    assert "wrong-secret-token" not in caught.value.message


def test_a_download_slower_than_its_limit_fails_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.slow_file = "Observation.2"  # 1,998 lines, one every 50 ms: about 100 s
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(BulkExportError, match="did not finish in time"):
        run(server, out, download_limit_s=1.0)
    assert time.monotonic() - started < 5
    assert_nothing_kept(out)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:1\\@127.0.0.1/files/Patient.1", "is not a plain http"),
        ("http://files.example.org/Patient.1", "is plain http to a host that is not loopback"),
        ("file:///etc/passwd", "is not a plain http"),
    ],
)
def test_a_file_url_that_fails_the_url_checks_is_not_contacted(
    server: BulkExportServer, tmp_path: Path, url: str, expected: str
) -> None:
    server.output_url = url
    out = tmp_path / "out"
    with pytest.raises(BulkExportError, match=f"downloading Patient.ndjson: the URL {expected}"):
        run(server, out)
    assert not [s for s in server.seen if s.path.startswith("/files/")]
    assert not out.exists()


def test_download_memory_stays_bounded_whatever_the_file_size(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.files = {"Observation": [[observation(n, "p1") for n in range(60_000)]]}
    size = len(server.ndjson("Observation.1"))  # made before measuring
    assert size > 10_000_000
    tracemalloc.start()
    try:
        result = run(server, tmp_path / "out", types=["Observation"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.files[0].bytes == size and result.files[0].lines == 60_000
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"


# --- arguments checked before anything is sent -------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://fhir.example.org/fhir", "must be https"),
        ("https://user:pw@fhir.example.org/fhir", "must not carry credentials"),
        ("ftp://fhir.example.org/fhir", "not an http\\(s\\) URL"),
        ("https://fhir.example.org/fhir?x=1", "without query"),
    ],
)
def test_base_url_is_checked_as_the_service_checks_fhir_server(
    tmp_path: Path, url: str, expected: str
) -> None:
    with pytest.raises(BulkExportInputError, match=expected):
        download_export(url, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"types": ["Patient", "../etc"]}, "--type: '../etc' is not a FHIR resource type"),
        ({"types": []}, "at least one resource type"),
        ({"since": "2024-01-01"}, "--since: '2024-01-01' is not a FHIR instant"),
        ({"group_id": "g", "patient_level": True}, "not both"),
    ],
)
def test_wrong_arguments_are_named_and_nothing_is_sent(
    server: BulkExportServer, tmp_path: Path, kwargs: dict[str, Any], expected: str
) -> None:
    with pytest.raises(BulkExportInputError, match=expected):
        run(server, tmp_path / "out", **kwargs)
    assert server.seen == []


def test_an_output_directory_that_holds_an_export_is_refused(
    server: BulkExportServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run(server, out)
    before = (out / "Patient.ndjson").read_bytes()
    with pytest.raises(BulkExportInputError, match="already holds an export"):
        run(server, out)
    assert (out / "Patient.ndjson").read_bytes() == before


def test_an_output_directory_that_cannot_be_made_is_named_before_anything_is_sent(
    server: BulkExportServer, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(BulkExportInputError, match=r"--out .*a-file/out: cannot create it"):
        run(server, tmp_path / "a-file" / "out")
    assert server.seen == []


# --- the pure readings ---------------------------------------------------------------------


def test_retry_after_reads_seconds_and_dates_and_ignores_nonsense() -> None:
    now = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Thu, 15 Jan 2026 09:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Thu, 15 Jan 2026 08:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    assert wait_seconds(None, None, 1, 60) == 1
    assert wait_seconds(None, 8, 1, 60) == 16
    assert wait_seconds(500, None, 1, 60) == 60
    assert wait_seconds(0, None, 1, 60) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "not a JSON object"),
        ({"request": "x", "requiresAccessToken": True}, "no transactionTime"),
        ({"transactionTime": "t", "request": "x", "requiresAccessToken": "yes"}, "true or false"),
        (
            {
                "transactionTime": "t",
                "request": "x",
                "requiresAccessToken": True,
                "output": [{"type": "Patient"}],
            },
            "output\\[0\\].url is missing",
        ),
        (
            {
                "transactionTime": "t",
                "request": "x",
                "requiresAccessToken": True,
                "output": [{"type": "../Patient", "url": "u"}],
            },
            "output\\[0\\].type '../Patient' is not a resource type",
        ),
    ],
)
def test_a_malformed_manifest_is_named(body: Any, expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected):
        read_manifest(body)


# --- the command ---------------------------------------------------------------------------


def test_command_downloads_and_lists_the_files(server: BulkExportServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "export-download",
            "--fhir-server",
            server.base_url,
            "--out",
            str(out),
            "--type",
            "Patient,Observation",
            "--token-file",
            str(token_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Patient.ndjson\tPatient\t2 resources" in result.stdout
    assert "Observation.2.ndjson\tObservation\t1998 resources" in result.stdout
    assert (out / MANIFEST_NAME).is_file()
    assert server.kick_off_params["_type"] == ["Patient,Observation"]
    assert TOKEN not in result.output


def test_command_exits_3_with_the_reason_when_the_export_fails(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.fail_with = "job killed"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "export-download",
            "--fhir-server",
            server.base_url,
            "--out",
            str(tmp_path / "out"),
            "--token-file",
            str(token_file),
            "--quiet",
        ],
    )
    assert result.exit_code == 3
    assert "Error: the export failed (500): OperationOutcome: 'job killed'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_command_exits_2_on_an_empty_token_file(server: BulkExportServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "export-download",
            "--fhir-server",
            server.base_url,
            "--out",
            str(tmp_path / "o"),
            "--token-file",
            str(token_file),
        ],
    )
    assert result.exit_code == 2
    assert "the file is empty" in result.stderr
    assert server.seen == []


def test_ctrl_c_in_the_command_cancels_the_job_and_keeps_nothing(
    server: BulkExportServer, tmp_path: Path
) -> None:
    server.never_done = True
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    out = tmp_path / "out"
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "cds_service", "export-download"]
    command += ["--fhir-server", server.base_url, "--out", str(out)]
    command += ["--token-file", str(token_file)]
    process = subprocess.Popen(
        command,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_at_default,  # the SIGINT below reaches it in a background job too
    )
    try:
        until = time.monotonic() + 30
        while not any(s.path.startswith("/status/") for s in server.seen):
            assert time.monotonic() < until and process.poll() is None, "no status poll"
            time.sleep(0.05)
        assert out.is_dir()  # made, with its partial directory, while the job runs
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "Aborted" in stderr
    assert not out.exists()
    assert deletes(server) == ["/status/job1"]


# --- the guide -----------------------------------------------------------------------------


def test_the_guide_runs_as_printed_and_lists_every_option() -> None:
    from tests.test_readme_commands import check_line, shell_lines

    guide = Path(__file__).resolve().parent.parent / "docs" / "bulk-export.md"
    lines = shell_lines(guide)
    assert lines
    for line in lines:
        check_line(line, guide.name)
    text = guide.read_text(encoding="utf-8")
    command = main.get_command(click.Context(main), "export-download")
    assert command is not None
    options = {opt for param in command.params for opt in param.opts if opt.startswith("--")}
    missing = sorted(o for o in options if f"`{o}" not in text)
    assert not missing, f"docs/bulk-export.md does not describe {missing}"
