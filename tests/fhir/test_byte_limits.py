"""What a FHIR server can make one call hold: a page is at most ``MAX_PAGE_BYTES``, all
pages of all keys of a call together at most ``MAX_CALL_BYTES``, and no page is parsed
once the call's deadline has passed (an attack suite took a worker to 1.3 GB with 30 MB
pages, and a call answered 5.6 s into a 3 s budget while its pages were parsed).
The server is tests/support/faulty_fhir_server.py (``heavy``: pages of a given size)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service.fhir import FhirClient
from cds_service.fhir import exchange as exchange_module
from cds_service.fhir.exchange import (
    BUDGET_REASON,
    CALL_BYTES_REASON,
    MAX_CALL_BYTES,
    MAX_PAGE_BYTES,
    TOO_LARGE_REASON,
)
from cds_service.settings import Settings
from tests.support.faulty_fhir_server import FaultyFhirServer

TOKEN = "tok-bytes-5d0c"
MIB = 1024 * 1024

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[FhirClient]:
    made = FhirClient(
        Settings(fhir_budget_seconds=10.0, fhir_read_timeout_seconds=5.0, fhir_max_pages=100).fhir
    )
    yield made
    made.close()


def heavy(size: int, unsized: bool = False) -> str:
    return f"Observation?patient=p1&size={size}" + ("&unsized=1" if unsized else "")


def test_the_limits_leave_room_for_a_patients_pages_and_stay_far_below_the_memory_limit() -> None:
    # a search page of 100 Observations is about 100-200 KB; the container has 512 MiB
    assert 4 * MIB <= MAX_PAGE_BYTES <= 8 * MIB
    assert 2 * MAX_PAGE_BYTES <= MAX_CALL_BYTES <= 32 * MIB


@pytest.mark.parametrize("unsized", [False, True], ids=["content-length", "streamed"])
def test_a_page_over_the_page_limit_fails_its_key(
    server: FaultyFhirServer, client: FhirClient, unsized: bool
) -> None:
    # 9 MiB: under the 32 MiB a page could be before, over what a page may be now
    queries = {"crp": heavy(MAX_PAGE_BYTES + MIB, unsized)}
    result = client.fetch_all(server.url("heavy"), TOKEN, queries, time.monotonic() + 10)
    assert result.resources == {}
    assert result.errors["crp"].reason == TOO_LARGE_REASON
    assert f"over {MAX_PAGE_BYTES // MIB} MiB" in TOO_LARGE_REASON


def test_a_page_just_under_the_page_limit_is_read(server: FaultyFhirServer) -> None:
    one_page = FhirClient(
        Settings(fhir_budget_seconds=10.0, fhir_read_timeout_seconds=5.0, fhir_max_pages=1).fhir
    )
    try:
        result = one_page.fetch_all(
            server.url("heavy"), TOKEN, {"crp": heavy(MAX_PAGE_BYTES)}, time.monotonic() + 10
        )
    finally:
        one_page.close()
    assert result.errors == {}
    assert [r["id"] for r in result.resources["crp"]] == ["h1"]


def test_paging_stops_as_cut_off_when_the_calls_pages_pass_the_call_limit(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    before = len(server.seen)
    result = client.fetch_all(
        # (a little under 2 MiB: each page's objects are charged to the allowance too)
        server.url("heavy"),
        TOKEN,
        {"crp": heavy(2 * MIB - 4096)},
        time.monotonic() + 10,
    )
    pages = MAX_CALL_BYTES // (2 * MIB)
    assert result.errors == {}
    # each page in full but the one that passed the limit; far from the 100 allowed
    assert len(result.resources["crp"]) == pages
    assert len(server.seen) - before == pages + 1
    (note,) = result.notes
    assert note.cut_off
    assert note.reason == f"paging stopped after {pages} pages: {CALL_BYTES_REASON}"


def test_the_call_limit_is_shared_by_every_key_of_the_call(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    # five first pages of 5 MiB: 25 MiB, where each alone is under both limits
    queries = {f"k{i}": heavy(5 * MIB) + f"&k={i}" for i in range(5)}
    slim = FhirClient(
        Settings(fhir_budget_seconds=10.0, fhir_read_timeout_seconds=5.0, fhir_max_pages=1).fhir
    )
    try:
        calls = [
            slim.fetch_all(server.url("heavy"), TOKEN, queries, time.monotonic() + 10)
            for _ in range(2)
        ]
    finally:
        slim.close()
    for result in calls:  # the second call has an allowance of its own
        # read at once, the five pages share the allowance as their bytes arrive: as many
        # as fit may complete, or none when all were part-read as it ran out (timing)
        assert len(result.resources) <= MAX_CALL_BYTES // (5 * MIB)
        assert set(result.resources) | set(result.errors) == set(queries)
        # a first page over the call's allowance fails its key (412 when it is required)
        assert {e.reason for e in result.errors.values()} == {CALL_BYTES_REASON}


def test_a_page_read_when_the_deadline_has_passed_is_not_parsed(
    server: FaultyFhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last bytes of a page may come in as the deadline passes (or the fetch thread
    may get the CPU back only then): the key is late, and its page is not parsed."""
    budget = 0.5
    read_body = exchange_module._Exchange._read_body
    parsed: list[bytes] = []

    def late_read(self: Any, key: str, response: Any) -> bytes:
        body = read_body(self, key, response)
        time.sleep(max(0.0, self.deadline - time.monotonic()) + 0.05)
        return body

    def parse(body: bytes, shape: Any) -> Any:
        parsed.append(body)
        return None

    monkeypatch.setattr(exchange_module._Exchange, "_read_body", late_read)
    monkeypatch.setattr(exchange_module, "read_search_page", parse)
    monkeypatch.setattr(exchange_module.orjson, "loads", parse)
    client = FhirClient(Settings(fhir_budget_seconds=budget).fhir)
    try:
        started = time.monotonic()
        result = client.fetch_all(server.url("ok"), TOKEN, {"crp": heavy(1000)}, started + budget)
        time.sleep(0.2)  # the fetch thread is done with the page by now
    finally:
        client.close()
    assert result.errors["crp"].reason == BUDGET_REASON
    assert parsed == []


def test_a_page_of_many_small_objects_fails_its_key_before_it_is_parsed(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    # an attack suite: a valid page under the byte cap made of "{},{},..." grew twenty-fold
    # and more once parsed (a worker at 336 MB for one call)
    from cds_service.fhir.exchange import MAX_PAGE_CONTAINERS, TOO_COMPLEX_REASON

    queries = {"crp": heavy(MIB) + "&dense=1"}  # about 260,000 empty objects in 1 MiB
    result = client.fetch_all(server.url("heavy"), TOKEN, queries, time.monotonic() + 10)
    assert result.errors["crp"].reason == TOO_COMPLEX_REASON
    assert f"{MAX_PAGE_CONTAINERS:,}" in TOO_COMPLEX_REASON
