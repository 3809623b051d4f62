"""The FHIR client against a server that misbehaves: every fault gives a clear reason, the
call returns within the budget (plus a small slack), and the access token never shows up
in errors or logs. The server is tests/support/faulty_fhir_server.py (real sockets)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cds_service.fhir import FetchResult, FhirClient, FirstPage
from cds_service.settings import Settings
from tests.support.faulty_fhir_server import FaultyFhirServer

TOKEN = "tok-faults-3b9e1d7c55aa"
PATIENT_ID = "pat-faults-71c2"
QUERY = f"Observation?patient={PATIENT_ID}&_count=100"
SLACK_SECONDS = 0.3

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer(hang_seconds=10.0, slow_seconds=0.25) as running:
        yield running


def make_client(**overrides: Any) -> FhirClient:
    values: dict[str, Any] = {
        "fhir_connect_timeout_seconds": 0.2,
        "fhir_read_timeout_seconds": 0.4,
        "fhir_budget_seconds": 0.5,
        "fhir_max_pages": 5,
        "fhir_max_concurrency": 4,
    }
    values.update(overrides)
    return FhirClient(Settings(**values).fhir)


@pytest.fixture
def client() -> Iterator[FhirClient]:
    made = make_client()
    yield made
    made.close()


def timed_fetch(
    client: FhirClient, fhir_server: str, queries: dict[str, str], **kwargs: Any
) -> tuple[FetchResult, float]:
    started = time.monotonic()
    deadline = started + client.settings.budget_seconds
    result = client.fetch_all(fhir_server, TOKEN, queries, deadline, **kwargs)
    return result, time.monotonic() - started


def assert_no_secrets(result: FetchResult, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(e) for e in result.errors.values()] + [repr(e) for e in result.errors.values()]
    texts += [n.reason for n in result.notes]
    texts.append(caplog.text)
    for text in texts:
        assert TOKEN not in text
        assert PATIENT_ID not in text


FAULTS = [
    # mode, reason fragment, settings overrides
    ("hang", "read timeout", {"fhir_read_timeout_seconds": 0.3, "fhir_budget_seconds": 1.0}),
    ("hang", "time budget", {"fhir_read_timeout_seconds": 5.0, "fhir_budget_seconds": 0.5}),
    ("trickle", "time budget", {"fhir_read_timeout_seconds": 5.0, "fhir_budget_seconds": 0.5}),
    ("reset", "the FHIR server reset the connection", {}),
    ("500", "FHIR server answered 500", {}),
    ("401", "FHIR server answered 401", {}),
    ("403", "FHIR server answered 403", {}),
    ("404", "FHIR server answered 404", {}),
    ("redirect", "FHIR server answered 302 (redirects are not followed)", {}),
    ("broken-json", "not valid JSON", {}),
    ("not-a-resource", "not a FHIR resource", {}),
    ("wrong-bundle", "Bundle of type 'history' where a searchset was expected", {}),
    ("wrong-resource", "a Patient where a search Bundle was expected", {}),
    ("outcome", "an OperationOutcome instead of data", {}),
    ("foreign-next", "next link points away from fhirServer", {}),
    # the server's codes, never its diagnostics (which echo the query, so the patient id)
    # ... and the result parameters the search used, never its values
    (
        "refuse-sort",
        "answered 400; OperationOutcome issue code: not-supported; "
        "the search used _count, which the server must support or ignore",
        {},
    ),
    (
        "expired",
        "answered 401: access token refused as invalid or expired (invalid_token); "
        "OperationOutcome issue code: login",
        {},
    ),
]


@pytest.mark.parametrize(
    ("mode", "reason", "overrides"), FAULTS, ids=[f[0] + str(i) for i, f in enumerate(FAULTS)]
)
def test_fault_gives_a_clear_reason_within_budget(
    server: FaultyFhirServer,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    reason: str,
    overrides: dict[str, Any],
) -> None:
    client = make_client(**overrides)
    try:
        with caplog.at_level(logging.DEBUG, logger="cds_service.fhir"):
            result, elapsed = timed_fetch(client, server.url(mode), {"crp": QUERY})
    finally:
        client.close()
    assert elapsed < client.settings.budget_seconds + SLACK_SECONDS
    assert set(result.errors) == {"crp"}
    assert result.resources == {}
    error = result.errors["crp"]
    assert error.key == "crp"
    assert reason in error.reason
    assert_no_secrets(result, caplog)
    # the failure is logged with the key and host, never the query
    failures = [
        r for r in caplog.records if "failed" in r.getMessage() or "abandoned" in r.getMessage()
    ]
    assert failures
    assert any("key=crp" in r.getMessage() for r in failures)


def test_every_hung_query_is_abandoned_at_the_budget(
    server: FaultyFhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    # More hung queries than threads: the queued ones must not add their own timeouts.
    client = make_client(
        fhir_read_timeout_seconds=5.0, fhir_budget_seconds=0.5, fhir_max_concurrency=2
    )
    queries = {f"k{i}": QUERY for i in range(5)}
    try:
        result, elapsed = timed_fetch(client, server.url("hang"), queries)
        assert elapsed < 0.5 + SLACK_SECONDS
        assert set(result.errors) == set(queries)
        assert all("time budget" in e.reason for e in result.errors.values())
        # The threads are free again soon after: the next invocation is served normally.
        again, _ = timed_fetch(client, server.url("ok"), {"crp": QUERY})
        assert again.errors == {}
        assert [r["resourceType"] for r in again.resources["crp"]] == ["Observation"]
    finally:
        client.close()
    assert_no_secrets(result, caplog)


def test_queries_run_concurrently(server: FaultyFhirServer, client: FhirClient) -> None:
    # Each answer takes 0.25 s; four of them one after another would take 1 s.
    queries = {f"k{i}": QUERY for i in range(4)}
    started = time.monotonic()
    result = client.fetch_all(server.url("slow"), TOKEN, queries, started + 2.0)
    elapsed = time.monotonic() - started
    assert result.errors == {}
    assert set(result.resources) == set(queries)
    assert elapsed < 0.7


def test_endless_paging_is_cut_off_at_max_pages(
    server: FaultyFhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(fhir_max_pages=3, fhir_budget_seconds=2.0)
    before = len(server.seen)
    try:
        with caplog.at_level(logging.DEBUG, logger="cds_service.fhir"):
            result, elapsed = timed_fetch(client, server.url("endless"), {"crp": QUERY})
    finally:
        client.close()
    assert elapsed < 2.0 + SLACK_SECONDS
    assert result.errors == {}
    assert [r["id"] for r in result.resources["crp"]] == ["e1", "e2", "e3"]
    assert len(server.seen) - before == 3
    assert [n.key for n in result.notes] == ["crp"]
    assert "paging stopped after 3 pages" in result.notes[0].reason
    assert_no_secrets(result, caplog)


def test_endless_paging_within_a_short_budget_is_cut_off_by_time_or_pages(
    server: FaultyFhirServer,
) -> None:
    client = make_client(fhir_max_pages=1000, fhir_budget_seconds=0.3)
    try:
        result, elapsed = timed_fetch(client, server.url("endless"), {"crp": QUERY})
    finally:
        client.close()
    assert elapsed < 0.3 + SLACK_SECONDS
    assert "time budget" in result.errors["crp"].reason


def test_next_link_loop_is_detected(server: FaultyFhirServer, client: FhirClient) -> None:
    before = len(server.seen)
    result, elapsed = timed_fetch(client, server.url("loop"), {"crp": QUERY})
    assert elapsed < client.settings.budget_seconds + SLACK_SECONDS
    assert result.errors == {}
    # first request (no page) -> page 2 -> page 1 -> page 2 again: stop
    assert [r["id"] for r in result.resources["crp"]] == ["l1", "l2", "l1"]
    assert len(server.seen) - before == 3
    assert "leads back to a page already read" in result.notes[0].reason


def test_foreign_next_link_is_not_followed(server: FaultyFhirServer, client: FhirClient) -> None:
    before = len(server.seen)
    result, _ = timed_fetch(client, server.url("foreign-next"), {"crp": QUERY})
    assert "points away from fhirServer" in result.errors["crp"].reason
    assert len(server.seen) - before == 1


def test_search_outcome_entries_are_noted_not_returned(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    result, _ = timed_fetch(client, server.url("search-outcome"), {"crp": QUERY})
    assert result.errors == {}
    assert [r["id"] for r in result.resources["crp"]] == ["s1"]
    assert len(result.notes) == 1
    assert "OperationOutcome (error/too-costly)" in result.notes[0].reason


def test_a_search_answered_200_with_only_an_error_outcome_is_a_failed_key(
    server: FaultyFhirServer, client: FhirClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Not "no CRP on record": the search failed (an integrator's review saw a card ask
    for a CRP, and no warning in the log, where a 400 said why)."""
    caplog.set_level(logging.WARNING, logger="cds_service.fhir")
    result, _ = timed_fetch(client, server.url("search-failed"), {"crp": QUERY})
    assert "crp" not in result.resources
    reason = result.errors["crp"].reason
    assert reason == "search result carried an OperationOutcome (fatal/required): the search failed"
    assert any("FHIR fetch failed: key=crp" in r.getMessage() for r in caplog.records)
    assert "category" not in reason  # the server's diagnostics are never repeated


def test_prefetched_first_page_is_continued_and_a_failure_keeps_it(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    def first_page(next_url: str) -> FirstPage:
        return FirstPage(
            "Observation",
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": {"resourceType": "Observation", "id": "given"}}],
                "link": [{"relation": "next", "url": next_url}],
            },
        )

    ok = client.fetch_all(
        server.url("endless"), TOKEN, {}, time.monotonic() + 1.0,
        first_pages={"crp": first_page(server.url("endless") + "/Observation?page=7")},
    )  # fmt: skip
    assert ok.errors == {}
    # the given page, then pages 7.. until fhir_max_pages (5) pages in all
    assert [r["id"] for r in ok.resources["crp"]] == ["given", "e7", "e8", "e9", "e10"]

    # a next link to another path of fhirServer's host (an admin endpoint, another
    # tenant) is not followed: the token goes only under the base (an outside review)
    away = client.fetch_all(
        server.url("ok"), TOKEN, {}, time.monotonic() + 1.0,
        first_pages={"crp": first_page(server.url("endless") + "/Observation?page=7")},
    )  # fmt: skip
    assert [r["id"] for r in away.resources["crp"]] == ["given"]
    assert any("a path outside its base" in n.reason for n in away.notes), away.notes

    # nor one that climbs out of the base through dot segments, plain or escaped, which
    # the HTTP stack or the server resolves (an attack suite saw the token sent so)
    # and Tomcat's path parameters and double escapes (an attack suite's later spellings)
    for climb in (
        "/../endless", "/./../endless", "/%2e%2e/endless", "/..%2Fendless",
        "/..;/endless", "/%2e%2e;/endless", "/.;/..;/endless", "/%252e%252e/endless",
    ):  # fmt: skip
        dotted = client.fetch_all(
            server.url("ok"), TOKEN, {}, time.monotonic() + 1.0,
            first_pages={"crp": first_page(server.url("ok") + climb + "/Observation?page=7")},
        )  # fmt: skip
        assert [r["id"] for r in dotted.resources["crp"]] == ["given"], climb
        assert any("a path outside its base" in n.reason for n in dotted.notes), climb

    started = time.monotonic()
    failed = client.fetch_all(
        server.url("500"), TOKEN, {}, started + 0.5,
        first_pages={"crp": first_page(server.url("500") + "/Observation?page=2")},
    )  # fmt: skip
    assert failed.errors == {}
    assert [r["id"] for r in failed.resources["crp"]] == ["given"]
    assert any(
        "page 2 failed: FHIR server answered 500" in n.reason and n.cut_off for n in failed.notes
    ), failed.notes


def test_spent_deadline_sends_nothing(server: FaultyFhirServer, client: FhirClient) -> None:
    before = len(server.seen)
    result = client.fetch_all(server.url("ok"), TOKEN, {"crp": QUERY}, time.monotonic() - 0.01)
    assert "time budget" in result.errors["crp"].reason
    time.sleep(0.1)
    assert len(server.seen) == before


def test_an_outcome_past_the_small_read_is_not_read_for_its_code(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    result, _ = timed_fetch(client, server.url("refuse-large"), {"crp": QUERY})
    assert result.errors["crp"].reason == (
        "FHIR server answered 400; the search used _count, which the server must support or ignore"
    )


def test_a_strict_server_is_asked_to_ignore_what_it_does_not_support(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    """FHIR R4 search: ``Prefer: handling=lenient`` asks a server to ignore a parameter it
    does not support (``_sort`` on some EHRs) rather than refuse the whole search, which
    left every call without FHIR data a 412."""
    query = f"Observation?patient={PATIENT_ID}&_sort=-date&_count=100"
    result, _ = timed_fetch(client, server.url("strict"), {"crp": query})
    assert result.errors == {}
    assert [r["id"][:3] for r in result.resources["crp"]] == ["ok-"]


def test_a_later_page_that_fails_keeps_the_pages_read_cut_off(
    server: FaultyFhirServer, client: FhirClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A token that expires between page 1 and page 2 (an integrator's review: the key
    # was lost, a 412): what was read stays, said as cut off as at the page limit.
    with caplog.at_level(logging.WARNING, logger="cds_service.fhir"):
        result, _ = timed_fetch(client, server.url("expire-on-page-2"), {"crp": QUERY})
    assert result.errors == {}
    assert [r["id"] for r in result.resources["crp"]] == ["x1"]
    [note] = result.notes
    assert note.cut_off
    assert note.reason == (
        "paging stopped after 1 pages: page 2 failed: FHIR server answered 401: access token "
        "refused as invalid or expired (invalid_token); OperationOutcome issue code: login"
    )
    assert "status=401" in caplog.text
    assert_no_secrets(result, caplog)
