"""The FHIR client's ordinary behaviour: URLs, headers, shapes, bundles, template rendering."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from cds_service.fhir import (
    FhirClient,
    FhirError,
    QueryShape,
    query_shape,
    server_url_problem,
    unwrap_bundle,
)
from cds_service.fhir.bundles import shape_mismatch
from cds_service.fhir.prefetch import render_queries
from cds_service.settings import Settings
from cds_service.turns import Turns
from tests.support.faulty_fhir_server import FaultyFhirServer
from tests.support.turns import another_call_computing

TOKEN = "tok-client-9f1e22"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[FhirClient]:
    made = FhirClient(Settings(fhir_budget_seconds=2.0, fhir_read_timeout_seconds=1.0).fhir)
    yield made
    made.close()


def fetch(client: FhirClient, base: str, token: str | None, queries: dict[str, str]) -> Any:
    return client.fetch_all(base, token, queries, time.monotonic() + 2.0)


# --- requests as sent --------------------------------------------------------------


def test_token_is_sent_as_bearer_and_path_of_fhir_server_is_kept(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    before = len(server.seen)
    result = fetch(
        client, server.url("ok") + "/", TOKEN, {"crp": "Observation?patient=p1&_count=100"}
    )
    assert result.errors == {}
    (seen,) = server.seen[before:]
    assert seen.path == "/ok/Observation?patient=p1&_count=100"
    assert seen.authorization == f"Bearer {TOKEN}"


def test_no_token_no_authorization_header(server: FaultyFhirServer, client: FhirClient) -> None:
    before = len(server.seen)
    result = fetch(client, server.url("ok"), None, {"crp": "Observation?patient=p1"})
    assert result.errors == {}
    (seen,) = server.seen[before:]
    assert seen.authorization is None


def test_a_fhir_servers_cookie_is_not_sent_on_a_later_call(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    """One session serves every call of every client: a cookie one call's answer set
    (a load balancer's, say) must not ride along on the next call, perhaps another
    client's."""
    before = len(server.seen)
    for _ in range(2):
        assert fetch(client, server.url("cookie"), TOKEN, {"crp": "Observation?p=1"}).errors == {}
    first, second = server.seen[before:]
    assert (first.cookie, second.cookie) == (None, None)


def test_compressed_answers_are_still_asked_for(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    before = len(server.seen)
    assert fetch(client, server.url("ok"), TOKEN, {"crp": "Observation?p=1"}).errors == {}
    (seen,) = server.seen[before:]
    assert "gzip" in (seen.accept_encoding or "")


def test_netrc_credentials_for_the_host_do_not_replace_the_bearer_token(
    server: FaultyFhirServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests' ordinary sending puts a host's ``~/.netrc`` login in place of the
    Authorization header it was given; the call's token must go, whatever the file."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    made = FhirClient(Settings(fhir_budget_seconds=2.0).fhir)
    try:
        before = len(server.seen)
        assert fetch(made, server.url("ok"), TOKEN, {"crp": "Observation?p=1"}).errors == {}
    finally:
        made.close()
    (seen,) = server.seen[before:]
    assert seen.authorization == f"Bearer {TOKEN}"


def test_read_query_returns_the_resource(server: FaultyFhirServer, client: FhirClient) -> None:
    result = fetch(client, server.url("ok"), TOKEN, {"patient": "Patient/p1"})
    assert result.resources == {"patient": [{"resourceType": "Patient", "id": "read1"}]}


def test_read_query_answered_with_another_type_is_refused(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    # mode "wrong-resource" answers every request with a Patient
    result = fetch(client, server.url("wrong-resource"), TOKEN, {"obs": "Observation/o1"})
    assert result.errors["obs"].reason == (
        "FHIR server sent a Patient where an Observation was expected"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://fhir.example.org/fhir",
        "file:///etc/passwd",
        "fhir.example.org/fhir",
        "http://",
        "http://u:p@h/fhir",
    ],
)
def test_fhir_server_must_be_a_plain_http_url(
    server: FaultyFhirServer, client: FhirClient, bad: str
) -> None:
    before = len(server.seen)
    result = fetch(client, bad, TOKEN, {"crp": "Observation?patient=p1"})
    assert isinstance(result.errors["crp"], FhirError)
    assert "fhirServer" in result.errors["crp"].reason
    assert TOKEN not in str(result.errors["crp"])
    assert len(server.seen) == before


def test_absolute_or_unusable_template_is_not_fetched(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    before = len(server.seen)
    result = fetch(
        client,
        server.url("ok"),
        TOKEN,
        {"abs": "http://elsewhere.invalid/Observation?patient=p1", "odd": "?patient=p1"},
    )
    assert "absolute URL" in result.errors["abs"].reason
    assert "not a FHIR read or search" in result.errors["odd"].reason
    assert len(server.seen) == before


def test_on_result_is_told_each_key_but_the_last_in_a_fetch_thread_when_the_turn_is_spare(
    server: FaultyFhirServer,
) -> None:
    turns = Turns()
    client = FhirClient(Settings(fhir_budget_seconds=2.0).fhir, turns=turns)
    queries = {
        "crp": "Observation?patient=p1",
        "esr": "Observation?code=x",
        "patient": "Patient/p1",
    }
    told: dict[str, tuple[list[Any], str]] = {}

    def on_result(key: str, found: list[Any]) -> None:
        told[key] = (found, threading.current_thread().name)

    try:
        result = client.fetch_all(
            server.url("ok"), None, queries, time.monotonic() + 2.0, on_result=on_result
        )
        assert result.errors == {}
        # Never the last key to come in (the caller is about to read it); a key that
        # comes in while another is being read is skipped too (one read at a time).
        assert 1 <= len(told) <= len(queries) - 1 and set(told) < set(queries)
        for key, (found, thread) in told.items():
            assert found is result.resources[key]  # the very list the caller gets
            assert thread.startswith("fhir-fetch")

        told.clear()  # while a call computes (holds the turn), nothing is read early
        with another_call_computing(turns):
            result = client.fetch_all(
                server.url("ok"), None, queries, time.monotonic() + 2.0, on_result=on_result
            )
        assert result.errors == {} and told == {}
    finally:
        client.close()


def test_a_slow_on_result_never_makes_a_fetched_key_late(server: FaultyFhirServer) -> None:
    """A read counts as the caller's work, not as fetch time: one that runs past the
    deadline makes no key late (the caller waits for it, as it would have read itself)."""
    client = FhirClient(Settings(fhir_budget_seconds=2.0).fhir)
    slow_reads: list[str] = []

    def on_result(key: str, found: list[Any]) -> None:
        slow_reads.append(threading.current_thread().name)
        time.sleep(1.2)  # a read longer than the whole budget

    queries = {"crp": "Observation?patient=p1", "patient": "Patient/p1"}
    try:
        started = time.monotonic()
        result = client.fetch_all(
            server.url("ok"), None, queries, started + 1.0, on_result=on_result
        )
    finally:
        client.close()
    assert len(slow_reads) == 1 and slow_reads[0].startswith("fhir-fetch")
    assert result.errors == {} and set(result.resources) == set(queries)


def test_early_reads_leave_no_cycle_that_keeps_a_calls_pages_alive(
    server: FaultyFhirServer, client: FhirClient
) -> None:
    """Without cycles a call's fetched pages are freed when the call ends; with one
    (a future holding its callback, the callback's object holding the futures) they wait
    for a full collection, and the workers grew by a third over a benchmark run."""
    queries = {
        "crp": "Observation?patient=p1",
        "esr": "Observation?code=x",
        "patient": "Patient/p1",
    }
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = client.fetch_all(
            server.url("ok"), None, queries, time.monotonic() + 2.0, on_result=lambda k, f: None
        )
        assert result.errors == {}
        del result
        gc.collect()
        left = [
            type(o).__name__
            for o in gc.garbage
            if isinstance(o, Future) or "Teller" in type(o).__name__
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


def test_a_failing_on_result_is_logged_and_the_fetch_still_counts(
    server: FaultyFhirServer, client: FhirClient, caplog: pytest.LogCaptureFixture
) -> None:
    def on_result(key: str, found: list[Any]) -> None:
        raise ValueError("a reader's bug")

    queries = {"crp": "Observation?patient=p1", "patient": "Patient/p1"}
    with caplog.at_level(logging.ERROR, logger="cds_service.fhir"):
        result = client.fetch_all(
            server.url("ok"), None, queries, time.monotonic() + 2.0, on_result=on_result
        )
    assert result.errors == {}
    assert set(result.resources) == set(queries)
    failed = [r.getMessage() for r in caplog.records if "early read failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].endswith("error=ValueError"), failed


def test_closed_client_refuses_work() -> None:
    client = FhirClient(Settings().fhir)
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError):
        client.fetch_all(
            "http://127.0.0.1:9/fhir", None, {"k": "Observation"}, time.monotonic() + 1
        )


# --- pure helpers --------------------------------------------------------------------


def test_query_shape() -> None:
    assert query_shape("Observation?patient=1") == QueryShape("Observation", is_search=True)
    assert query_shape("Observation/_search?patient=1") == QueryShape("Observation", is_search=True)
    assert query_shape("Patient/123") == QueryShape("Patient", is_search=False)
    assert query_shape("observation?x=1") is None
    assert query_shape("") is None


def test_server_url_problem() -> None:
    assert server_url_problem("https://ehr.example.org/fhir/r4") is None
    assert server_url_problem("http://127.0.0.1:8080") is None
    assert server_url_problem(None) == "fhirServer is missing"
    assert (
        server_url_problem("https://h/fhir?x=1")
        == "fhirServer must be a base URL without query or fragment"
    )
    assert server_url_problem("http://h:notaport/fhir") == "fhirServer is not a valid URL"


def test_shape_mismatch_reasons() -> None:
    search = QueryShape("Observation", is_search=True)
    assert shape_mismatch({"resourceType": "Bundle", "type": "searchset"}, search, "x") is None
    assert shape_mismatch({"resourceType": "Bundle"}, search, "x") is None
    # collection is accepted from a prefetch, not from a server's search
    assert (
        shape_mismatch({"resourceType": "Bundle", "type": "collection"}, search, "prefetch held")
        is None
    )
    assert shape_mismatch(
        {"resourceType": "Bundle", "type": "collection"}, search, "FHIR server sent"
    ) == ("FHIR server sent a Bundle of type 'collection' where a searchset was expected")
    # text from outside is echoed only when it is one plain word
    assert shape_mismatch({"resourceType": "<script>"}, search, "x") == (
        "x an unknown resource where a search Bundle was expected"
    )
    assert shape_mismatch([1], search, "x") == "x something that is not a FHIR resource"
    assert shape_mismatch({"resourceType": "Bundle", "entry": {}}, search, "x") == (
        "x a Bundle whose entry is not a list"
    )


def test_unwrap_bundle_keeps_the_searched_type_only() -> None:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "o1"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "Observation", "id": "o2"}},
            {"resource": {"resourceType": "Condition", "id": "c1"}},
            {"fullUrl": "urn:uuid:no-resource"},
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "warning", "code": "too-costly"}],
                },
                "search": {"mode": "outcome"},
            },
        ],
    }
    found, notes = unwrap_bundle("crp", bundle, "Observation")
    assert [r["id"] for r in found] == ["o1", "o2"]
    assert [n.reason for n in notes] == [
        "search result carried an OperationOutcome (warning/too-costly); ignored",
        "2 search entries that are not Observation ignored",
    ]


# --- template rendering ----------------------------------------------------------------


def test_render_queries_fills_and_encodes_tokens() -> None:
    context = {
        "patientId": "a b&c/..",
        "userId": "PractitionerRole/r-1",
        "encounterId": "e1",
        "selections": ["ServiceRequest/1"],
    }
    templates = {
        "obs": "Observation?patient={{context.patientId}}&encounter={{ context.encounterId }}",
        "role": "PractitionerRole/{{userPractitionerRoleId}}",
        "user": "{{context.userId}}",
        "who": "Practitioner/{{userPractitionerId}}",
        "sel": "ServiceRequest?_id={{context.selections}}",
        "draft": "ServiceRequest?_id={{context.draftOrders.entry}}",
        "odd": "Patient?x={{somethingElse}}",
    }
    queries, problems = render_queries(templates, context)
    assert queries == {
        "obs": "Observation?patient=a%20b%26c%2F..&encounter=e1",
        "role": "PractitionerRole/r-1",
        "user": "PractitionerRole/r-1",
    }
    assert {p.key: p.reason for p in problems} == {
        "who": "the template's {{userPractitionerId}} has no value in this request",
        "sel": "the template's {{context.selections}} has no value in this request",
        "draft": "the template's {{context.draftOrders.entry}} has no value in this request",
        "odd": "the template's {{somethingElse}} has no value in this request",
    }


def test_render_queries_refuses_dot_segments_and_missing_context() -> None:
    queries, problems = render_queries({"p": "Patient/{{context.patientId}}"}, {"patientId": ".."})
    assert queries == {}
    assert [p.key for p in problems] == ["p"]
    queries, problems = render_queries({"p": "Patient/{{context.patientId}}"}, {})
    assert queries == {}
    assert [p.key for p in problems] == ["p"]


def test_user_tokens_follow_the_user_type() -> None:
    templates = {
        "pr": "Practitioner/{{userPractitionerId}}",
        "pa": "Patient/{{userPatientId}}",
        "rp": "RelatedPerson/{{userRelatedPersonId}}",
    }
    queries, problems = render_queries(
        templates, {"userId": "https://ehr.example.org/fhir/Patient/p-9"}
    )
    assert queries == {"pa": "Patient/p-9"}
    assert sorted(p.key for p in problems) == ["pr", "rp"]


# --- the proxy environment ------------------------------------------------------------


def test_the_proxy_environment_is_honoured_and_read_once_per_client(
    server: FaultyFhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads HTTP_PROXY/NO_PROXY as requests does, but once per origin
    (session.py, ``FhirSession``): a proxy that is down fails the fetch; NO_PROXY naming the
    server lets it through; a client keeps what it read while it lives."""
    from spine_cds_dev.service_process import free_port

    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens
    settings = Settings(fhir_budget_seconds=2.0, fhir_read_timeout_seconds=1.0).fhir
    through_proxy = FhirClient(settings)
    try:
        refused = fetch(through_proxy, server.url("ok"), TOKEN, {"patient": "Patient/p1"})
        assert "patient" in refused.errors and not refused.resources
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        again = fetch(through_proxy, server.url("ok"), TOKEN, {"patient": "Patient/p1"})
        assert "patient" in again.errors  # read once: this client still uses the proxy
    finally:
        through_proxy.close()
    bypassing = FhirClient(settings)  # a new client reads the environment afresh
    try:
        result = fetch(bypassing, server.url("ok"), TOKEN, {"patient": "Patient/p1"})
        assert result.resources == {"patient": [{"resourceType": "Patient", "id": "read1"}]}
    finally:
        bypassing.close()


def test_the_remembered_environment_is_what_requests_itself_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    from cds_service.fhir.session import FhirSession

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "fhir.internal")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/site-ca.pem")
    ours, theirs = FhirSession(), requests.Session()
    for url in ("https://fhir.internal/r4/Condition", "https://ehr.example/fhir/Patient/1"):
        for stream in (True, None):
            for _ in range(2):  # the second answer comes from what was remembered
                expected = theirs.merge_environment_settings(url, {}, stream, None, None)
                got = ours.merge_environment_settings(url, {}, stream, None, None)
                assert got == expected
                got["proxies"]["https"] = "changed by a caller"  # must not reach the next
    proxies = ours.merge_environment_settings("https://ehr.example/x", {}, True, None, None)
    assert proxies["proxies"]["https"] == "http://proxy.invalid:3128"
    bypassed = ours.merge_environment_settings("https://fhir.internal/x", {}, True, None, None)
    assert "https" not in bypassed["proxies"]
    # what a caller passes itself is merged as requests merges it, never remembered
    explicit = ours.merge_environment_settings("https://ehr.example/x", {}, True, False, None)
    assert explicit["verify"] is False
