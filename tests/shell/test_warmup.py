"""A worker warms up before it takes traffic, and the warm-up leaves no trace.

Its speed is measured by bench/run.py (first-call latency); here: it runs every stage
of a hook call, the fetch from a FHIR server included, opens the first connection to
each configured FHIR server, keeps /readyz at 503 until it has run, and writes nothing
to the audit, the feedback store or the metrics. Through gunicorn:
tests/integration/test_warm_start.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from cds_service.app import create_app
from cds_service.fhir.bundles import FetchResult
from cds_service.runtime import build_runtime
from cds_service.warmup import configured_fhir_servers, warm_up
from tests.conftest import make_settings
from tests.support.faulty_fhir_server import FaultyFhirServer


def test_warm_up_runs_a_whole_call_and_records_nothing(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        before = runtime.metrics.exposition()
        took = warm_up(runtime)
        assert took is not None and took > 0
        assert runtime.stores.audit.records() == []
        assert runtime.metrics.exposition() == before
    finally:
        runtime.close()


def test_a_failing_warm_up_never_stops_a_worker(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        runtime.validators.clear()  # every stage after this one fails
        assert warm_up(runtime) is None
    finally:
        runtime.close()


def test_warm_up_takes_the_typed_decode_of_a_real_call(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        decoders = runtime.hook_decoders
        runtime.hook_decoders = {}  # without the decoders the warm-up cannot run
        assert warm_up(runtime) is None
        runtime.hook_decoders = decoders
        assert warm_up(runtime) is not None
    finally:
        runtime.close()


def test_warm_up_fetches_through_the_workers_own_fhir_client(tmp_path: Path) -> None:
    """The fetched call of the warm-up goes through the client real calls use (its
    threads, pooled session and page reading), and reads the example's values."""
    runtime = build_runtime(make_settings(tmp_path))
    real = runtime.fhir_client.fetch_all
    results: list[FetchResult] = []

    def fetch_all(*args: Any, **kwargs: Any) -> FetchResult:
        results.append(real(*args, **kwargs))
        return results[-1]

    runtime.fhir_client.fetch_all = fetch_all  # type: ignore[method-assign]
    try:
        assert warm_up(runtime) is not None
        assert len(results) == len(runtime.discovery.services)
        for result in results:
            assert result.errors == {}
            assert sum(len(found) for found in result.resources.values()) > 0
    finally:
        runtime.close()


def test_readiness_waits_for_the_warm_up(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    runtime = app.extensions["spine_cds"]
    try:
        client = app.test_client()
        cold = client.get("/readyz")
        assert cold.status_code == 503
        assert cold.get_json()["checks"]["warmUp"] == "this worker has not run its warm-up yet"
        warm_up(runtime)
        warm = client.get("/readyz")
        assert warm.status_code == 200
        assert warm.get_json()["checks"]["warmUp"] == "ok"
    finally:
        runtime.close()


def test_a_failed_warm_up_still_lets_the_worker_be_ready(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        runtime.validators.clear()
        assert warm_up(runtime) is None
        assert runtime.warm.is_set()  # slower, not broken
    finally:
        runtime.close()


def test_warm_up_opens_a_connection_to_each_configured_fhir_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FaultyFhirServer() as fhir:
        runtime = _listing(tmp_path, [fhir.url("ok"), fhir.url("404")])
        try:
            with caplog.at_level(logging.INFO, logger="cds_service"):
                assert warm_up(runtime) is not None
        finally:
            runtime.close()
        assert sorted(seen.path for seen in fhir.seen) == ["/404/metadata", "/ok/metadata"]
        # each line names the server it is about (an integrator had nine listed)
        origin = fhir.url("ok").split("/ok")[0]
        said = [r.getMessage() for r in caplog.records if "first connection" in r.getMessage()]
        assert len(said) == 2 and all(f"FHIR server {origin}:" in line for line in said), said
        assert all(seen.authorization is None for seen in fhir.seen)  # no token leaves


def test_a_fhir_server_that_cannot_be_reached_at_warm_up_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Readiness stays green (the server may come back), but the line is the earliest
    sign that calls needing a fetch will fail: WARNING, not INFO; a reachable one stays
    INFO."""
    with FaultyFhirServer() as fhir:
        runtime = _listing(tmp_path, [fhir.url("ok"), fhir.url("reset")])
        try:
            with caplog.at_level(logging.INFO, logger="cds_service"):
                assert warm_up(runtime) is not None
        finally:
            runtime.close()
    levels = {
        r.getMessage().rsplit(": ", 1)[1].split(" ")[0]: r.levelname
        for r in caplog.records
        if "first connection" in r.getMessage()
    }
    assert levels == {"connected": "INFO", "no": "WARNING"}, levels


def _listing(tmp_path: Path, servers: list[str]) -> Any:
    """The runtime of a secure-mode worker whose one trusted client lists ``servers``."""
    clients = tmp_path / "clients.json"
    entry = {"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/j"}
    clients.write_text(json.dumps([entry | {"fhir_servers": servers}]), encoding="utf-8")
    settings = make_settings(
        tmp_path,
        dev_mode=False,
        public_base_url="https://cds.example.org",
        trusted_clients_file=str(clients),
    )
    return build_runtime(settings)


@pytest.mark.timeout(30)
def test_a_listed_server_that_drips_or_bombs_cannot_hold_the_warm_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An attack review: a listed server dripping its metadata held a worker out of
    service for 70 s, and a gzip bomb took each worker to 2 GB. Each such server now
    costs the warm-up its connect and read timeouts (0.6 s), the servers are tried at
    once, and each is a WARNING naming its origin; a healthy one is still connected."""
    modes = ("trickle", "drip-headers", "gzip-bomb", "ok")
    servers = [FaultyFhirServer(hang_seconds=60.0).start() for _ in modes]
    try:
        runtime = _listing(tmp_path, [s.url(mode) for s, mode in zip(servers, modes, strict=True)])
        try:
            with caplog.at_level(logging.INFO, logger="cds_service"):
                started = time.monotonic()
                assert warm_up(runtime) is not None
                took = time.monotonic() - started
            assert runtime.warm.is_set()
        finally:
            runtime.close()
        lines = {
            record.getMessage(): record.levelname
            for record in caplog.records
            if "first connection" in record.getMessage()
        }
        for server, mode in zip(servers, modes, strict=True):
            assert [s.path for s in server.seen] == [f"/{mode}/metadata"]
            assert server.seen[0].authorization is None
            said = [(line, level) for line, level in lines.items() if server.base_url in line]
            assert len(said) == 1, lines
            line, level = said[0]
            assert level == ("INFO" if mode == "ok" else "WARNING"), line
            assert ("connected (metadata answered 200)" in line) == (mode == "ok"), line
        assert took < 6.0, took  # about 0.4 s of calls and 0.6 s of connections
    finally:
        for server in servers:
            server.stop()


def test_a_gzip_bomb_for_metadata_is_not_decoded_past_a_small_cap(tmp_path: Path) -> None:
    """The body is read in small decoded pieces, counted and dropped: what the warm-up
    holds stays at a piece, not the 64 MiB the answer decodes to."""
    with FaultyFhirServer() as bomb:
        runtime = _listing(tmp_path, [bomb.url("gzip-bomb")])
        try:
            tracemalloc.start()
            try:
                said = runtime.fhir_client.open_connection(bomb.url("gzip-bomb"))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        finally:
            runtime.close()
    assert peak < 8 * 1024 * 1024, peak
    assert said.startswith("answered 200 with metadata over 1024 KiB"), said


def test_no_connection_is_opened_in_development_mode(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path))
    try:
        assert configured_fhir_servers(runtime) == []
    finally:
        runtime.close()


def test_after_the_warm_up_a_condition_with_every_usual_element_imports_nothing(
    tmp_path: Path,
) -> None:
    """fhir.resources imports an element's model on first use: a Condition with ``meta``
    cost the first real call 10-20 ms after a warm-up on the example, which has none.
    In a fresh interpreter, as a worker is."""
    script = f"""
import sys
from pathlib import Path
from tests.conftest import make_settings
from cds_service.runtime import build_runtime
from cds_service.warmup import warm_up
from fhir.resources.R4B.condition import Condition
runtime = build_runtime(make_settings(Path({str(tmp_path)!r})))
warm_up(runtime)
before = set(sys.modules)
Condition.model_validate({json.dumps(RICH_CONDITION)})
print(sorted(set(sys.modules) - before))
runtime.close()
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


RICH_CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "c1",
    "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z", "tag": [{"code": "x"}]},
    "identifier": [{"system": "urn:x", "value": "1"}],
    "clinicalStatus": {"coding": [{"system": "urn:x", "code": "active"}]},
    "verificationStatus": {"coding": [{"system": "urn:x", "code": "confirmed"}]},
    "category": [{"coding": [{"system": "urn:x", "code": "problem-list-item"}]}],
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1"},
    "onsetPeriod": {"start": "2025-12-01"},
    "recordedDate": "2025-12-02",
    "recorder": {"reference": "Practitioner/x"},
    "note": [{"text": "n", "time": "2025-12-02T00:00:00Z"}],
    "evidence": [{"detail": [{"reference": "Observation/o1"}]}],
    "stage": [{"summary": {"text": "s"}}],
    "bodySite": [{"text": "back"}],
    "extension": [{"url": "urn:x", "valueString": "y"}],
}
