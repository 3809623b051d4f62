"""The fetch threads write their log lines, and tell early reads, in the context of the
call they work for: every line carries the call's request id (``logs.request_id_var``),
as docs/integration.md says of every line written for a call, not ``request_id=-``.
(tests/integration/test_fhir_calls_of_a_request.py: the same through gunicorn.)"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service.fhir import FhirClient
from cds_service.logs import PlainFormatter, request_id_var
from cds_service.settings import Settings
from tests.support.faulty_fhir_server import FaultyFhirServer

pytestmark = pytest.mark.timeout(60)

QUERIES = {"crp": "Observation?patient=p1", "patient": "Patient/p1"}


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[FhirClient]:
    made = FhirClient(Settings(fhir_budget_seconds=2.0).fhir)
    yield made
    made.close()


class _Lines(logging.Handler):
    """The lines of ``cds_service.fhir`` as the service writes them (plain format)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(PlainFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[list[str]]:
    handler = _Lines()
    logger = logging.getLogger("cds_service.fhir")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def _in_a_call(request_id: str, work: Any) -> Any:
    """``work()`` as a request's thread runs it: with its request id set."""

    def run() -> Any:
        request_id_var.set(request_id)
        return work()

    return contextvars.copy_context().run(run)


def test_a_failed_fetch_is_logged_with_the_calls_request_id(
    server: FaultyFhirServer, client: FhirClient, lines: list[str]
) -> None:
    result = _in_a_call(
        "call-1",
        lambda: client.fetch_all(server.url("500"), None, QUERIES, time.monotonic() + 2.0),
    )
    assert set(result.errors) == set(QUERIES)
    failed = [line for line in lines if "FHIR fetch failed" in line]
    assert len(failed) == len(QUERIES), lines
    assert all("request_id=call-1:" in line for line in failed), failed
    assert request_id_var.get() == "-"  # nothing leaks out of the call


def test_early_reads_and_their_failures_carry_the_calls_request_id(
    server: FaultyFhirServer, client: FhirClient, lines: list[str]
) -> None:
    seen: list[str] = []

    def on_result(key: str, found: list[Any]) -> None:
        seen.append(request_id_var.get())
        raise ValueError("a reader's bug")

    result = _in_a_call(
        "call-2",
        lambda: client.fetch_all(
            server.url("ok"), None, QUERIES, time.monotonic() + 2.0, on_result=on_result
        ),
    )
    assert result.errors == {}
    assert seen == ["call-2"]
    failed = [line for line in lines if "early read failed" in line]
    assert len(failed) == 1 and "request_id=call-2:" in failed[0], lines


def test_one_calls_id_is_never_seen_by_the_next_call_in_the_same_threads(
    server: FaultyFhirServer, lines: list[str]
) -> None:
    """One fetch thread for every call: each call's lines carry its own id, and a fetch
    outside any call none, never an id an earlier job ran with in that thread."""
    client = FhirClient(Settings(fhir_budget_seconds=2.0, fhir_max_concurrency=1).fhir)
    try:
        for request_id in ("call-3", "call-4"):
            _in_a_call(
                request_id,
                lambda: client.fetch_all(
                    server.url("500"), None, {"crp": QUERIES["crp"]}, time.monotonic() + 2.0
                ),
            )
        client.fetch_all(server.url("500"), None, {"crp": QUERIES["crp"]}, time.monotonic() + 2)
    finally:
        client.close()
    failed = [line for line in lines if "FHIR fetch failed" in line]
    assert [line.split("request_id=")[1].split(":")[0] for line in failed] == [
        "call-3",
        "call-4",
        "-",
    ]
