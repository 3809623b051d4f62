"""CRP, ESR and pain fetched with one search when none was prefetched, split by code.

Pure tests of ``combine``/``split``, then the real thing: the service fetching through a
recording proxy in front of the real FHIR test server sends two searches instead of
four, and decides exactly as from prefetch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson
import pytest
from flask.testing import FlaskClient

from cds_service.discovery import load_discovery
from cds_service.examples import load_example
from cds_service.fhir.bundles import FetchResult, FhirError, Problem
from cds_service.fhir.combine import combine, split
from cds_service.fhir.prefetch import render_queries
from fhir_mappers.wire import ObservationBytes, read_resource
from spine_cds_dev.fhir_server import FhirTestServer
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request, prefetch_from_server
from tests.support.faulty_fhir_server import FaultyFhirServer

LOINC = "http://loinc.org"
TOKEN = "ehr-issued-token-combine"  # synthetic; the server only checks it matches
ORDER_DATE = date(2026, 11, 30)


def queries() -> dict[str, str]:
    service = load_discovery().services[SELECT_ID]
    rendered, problems = render_queries(service.prefetch, {"patientId": "p 1/x"})
    assert not problems
    return rendered


def observation(code: str, rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "code": {"coding": [{"system": LOINC, "code": code}]},
    }


def test_the_three_observation_searches_become_one_with_every_code() -> None:
    combined = combine(queries())
    # the antibiotic orders and the Patient are other resource types: queries of their own
    assert set(combined.queries) == {
        "conditions",
        "crp+esr+pain",
        "antibiotics",
        "patient",
        "procedures",
        "imaging_studies",
        "imaging_reports",
    }
    assert combined.queries["conditions"] == queries()["conditions"]
    merged = urlsplit(combined.queries["crp+esr+pain"])
    params = parse_qs(merged.query)
    assert merged.path == "Observation"
    assert params["patient"] == ["p 1/x"]  # the patient id survives, still encoded
    assert "p%201%2Fx" in combined.queries["crp+esr+pain"]
    assert params["_sort"] == ["-date"]
    assert params["_count"] == ["300"]  # the page holds what the three first pages held
    codes = set(params["code"][0].split(","))
    members = combined.members["crp+esr+pain"]
    assert codes == set().union(*members.values())
    assert f"{LOINC}|1988-5" in members["crp"] and f"{LOINC}|4537-7" in members["esr"]


def test_the_combined_search_goes_out_first_and_split_answers_in_the_given_order() -> None:
    """A server that answers one query at a time starts on the long search first; what
    the service reports (problems, notes) stays in the order of hooks.json."""
    given = queries()
    combined = combine(given)
    assert next(iter(combined.queries)) == "crp+esr+pain"
    assert combined.order == tuple(given)
    key = "crp+esr+pain"
    result = FetchResult(
        resources={key: [], "conditions": [], "patient": []},
        errors={key: FhirError(key, "refused"), "procedures": FhirError("procedures", "x")},
        notes=(Problem("patient", "a note"), Problem(key, "cut", cut_off=True)),
    )
    out = split(result, combined)
    expected = [k for k in given if k in out.resources]
    assert list(out.resources) == expected == ["conditions", "crp", "esr", "pain", "patient"]
    assert list(out.errors) == [k for k in given if k in {"crp", "esr", "pain", "procedures"}]
    assert [n.key for n in out.notes] == ["crp", "esr", "pain", "patient"]


def test_what_cannot_be_combined_is_left_alone() -> None:
    all_queries = queries()
    one = {"crp": all_queries["crp"], "conditions": all_queries["conditions"]}
    assert combine(one).queries == one  # a single Observation search
    overlapping = {"a": "Observation?patient=1&code=s|1,s|2", "b": "Observation?patient=1&code=s|2"}
    assert combine(overlapping).queries == overlapping  # a code in both: never merged
    other_params = {"a": "Observation?patient=1&code=s|1", "b": "Observation?patient=2&code=s|2"}
    assert combine(other_params).queries == other_params
    no_system = {"a": "Observation?patient=1&code=1", "b": "Observation?patient=1&code=2"}
    assert combine(no_system).queries == no_system


def typed(resource: dict[str, Any]) -> Any:
    """As a fetched page's typed decode hands it on (fhir/exchange.py)."""
    read = read_resource(msgspec.Raw(orjson.dumps(resource)))
    assert type(read) is ObservationBytes
    return read


@pytest.mark.parametrize("read", [dict, typed], ids=["dicts", "typed"])
def test_split_hands_each_key_its_own_and_each_note_to_every_key(
    read: Callable[[dict[str, Any]], Any],
) -> None:
    combined = combine(queries())
    key = "crp+esr+pain"
    no_system = {**observation("1988-5", "n1"), "code": {"coding": [{"code": "1988-5"}]}}
    no_code = {"resourceType": "Observation", "id": "n2"}
    found = [
        read(observation("1988-5", "c1")),
        read(observation("4537-7", "e1")),
        read(observation("72514-3", "p1")),
        read(observation("9999-9", "x1")),  # a server that ignored the filter
        read(no_system),  # matches no key: a code without its system is not trusted
        read(no_code),
    ]
    result = FetchResult(
        resources={key: found, "conditions": []},
        errors={},
        notes=(Problem(key, "paging stopped after 5 pages (fhir_max_pages)", cut_off=True),),
    )
    out = split(result, combined)
    assert [r["id"] for r in out.resources["crp"]] == ["c1"]
    assert [r["id"] for r in out.resources["esr"]] == ["e1"]
    assert [r["id"] for r in out.resources["pain"]] == ["p1"]
    assert out.resources["conditions"] == []
    cut = {n.key for n in out.notes if n.cut_off}
    assert cut == {"crp", "esr", "pain"}
    assert any(n.key == key and "3 result(s) of none" in n.reason for n in out.notes)
    failed = split(FetchResult({}, {key: FhirError(key, "FHIR server answered 401")}, ()), combined)
    assert set(failed.errors) == {"crp", "esr", "pain"}
    assert failed.errors["esr"].reason == "FHIR server answered 401"


@pytest.mark.parametrize("read", [dict, typed], ids=["dicts", "typed"])
def test_split_reads_loinc_given_by_its_oid_as_loinc(read: Callable[[dict[str, Any]], Any]) -> None:
    """A server that matches http://loinc.org|1988-5 to a coding written by LOINC's HL7
    OID (urn:oid:2.16.840.1.113883.6.1) returns it: it is the CRP key's, not "none of
    the codes asked for"."""
    combined = combine(queries())
    by_oid = observation("1988-5", "c1")
    by_oid["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.1"
    result = FetchResult(resources={"crp+esr+pain": [read(by_oid)]}, errors={}, notes=())
    out = split(result, combined)
    assert [r["id"] for r in out.resources["crp"]] == ["c1"]
    assert out.notes == ()


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        server.load_bundle(load_example("e01-improving", ORDER_DATE).bundle)
        yield server


@pytest.mark.integration
def test_the_service_sends_three_searches_and_decides_as_from_prefetch(
    fhir: FhirTestServer, client: FlaskClient
) -> None:
    example = load_example("e01-improving", ORDER_DATE)
    base = order_request("order-select", example.patient_id, example.draft_order)
    prefetch = prefetch_from_server(fhir.base_url, base["context"], SELECT_ID, fhir.auth_headers)
    prefetched = order_request(
        "order-select", example.patient_id, example.draft_order, prefetch=prefetch
    )
    with FaultyFhirServer(upstream=fhir.base_url) as proxy:
        fetched = order_request(
            "order-select",
            example.patient_id,
            example.draft_order,
            fhir_server=proxy.url("proxy"),
            access_token=TOKEN,
        )
        answer = client.post(f"/cds-services/{SELECT_ID}", json=fetched)
        seen = [urlsplit(s.path).path.rsplit("/", 1)[-1] for s in proxy.seen]
    assert answer.status_code == 200, answer.get_json()
    # not nine: CRP, ESR and pain in one search; the Patient (birthDate) a read by its id
    assert sorted(seen) == sorted(
        [
            "Condition",
            "DiagnosticReport",
            "ImagingStudy",
            "MedicationRequest",
            "Observation",
            "Procedure",
            example.patient_id,
        ]
    )
    from_prefetch = client.post(f"/cds-services/{SELECT_ID}", json=prefetched).get_json()
    assert answer.get_json() == from_prefetch
    assert from_prefetch["cards"][0]["extension"]["spine-cds-assessment"]["recommendation"] == (
        "advise-against"
    )


@pytest.mark.integration
def test_a_combined_search_cut_off_is_read_again_search_by_search(
    fhir: FhirTestServer, tmp_path: Any
) -> None:
    """A ward that scores pain every hour: the combined search's newest pages are all
    pain scores, so with paging cut off the CRPs were lost on the fetched path alone (an
    outside clinician's review). Each member of a cut-off combined search is read again
    on its own: the CRPs and ESRs come back whole, and only the pain scores are said to
    be cut off."""
    from datetime import datetime, timedelta

    from cds_service.app import create_app
    from cds_service.examples import split_transaction
    from tests.conftest import make_settings

    example = load_example("e01-improving", ORDER_DATE)
    bundle = orjson.loads(orjson.dumps(example.bundle).replace(b"spine-cds-e1", b"icu-e1"))
    (pain,) = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "icu-e1-pain-d28"]
    start = datetime.fromisoformat(pain["effectiveDateTime"])
    for hour in range(1, 321):  # 320 hourly scores after the last CRP
        extra = {**pain, "id": f"icu-e1-pain-h{hour}"}
        extra["effectiveDateTime"] = (start + timedelta(hours=hour)).isoformat()
        request = {"method": "PUT", "url": f"Observation/{extra['id']}"}
        bundle["entry"].append({"resource": extra, "request": request})
    for part in split_transaction(bundle):
        fhir.load_bundle(part)
    draft = orjson.loads(orjson.dumps(example.draft_order).replace(b"spine-cds-e1", b"icu-e1"))
    draft["authoredOn"] = (start + timedelta(hours=330)).isoformat()
    body = order_request(
        "order-select", "icu-e1", draft, fhir_server=fhir.base_url, access_token=TOKEN
    )
    app = create_app(
        make_settings(
            tmp_path, fhir_max_pages=1, fhir_budget_seconds=10, fhir_read_timeout_seconds=10
        )
    )
    answer = app.test_client().post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200, answer.get_json()
    (card,) = answer.get_json()["cards"]
    crp = card["extension"]["spine-cds-assessment"]["crp"]
    assert (crp["baseline"]["value"], crp["latest"]["value"]) == (142, 18)
    assert "Some pain scores could not be read" in card["detail"]
    assert "CRP results" not in card["detail"].split("could not be read")[0]


def test_split_keeps_every_flag_of_a_note() -> None:
    """A search that failed in part (an error OperationOutcome beside its results) must
    stay failed after the split, for the combined search's members and the keys sent as
    they were: the engine then gives no advice against imaging on it. The split once
    rebuilt each note and dropped the flag, on the fetched path only."""
    combined = combine(queries())
    (key,) = combined.members
    result = FetchResult(
        resources={key: [], "conditions": []},
        errors={},
        notes=(
            Problem(key, "search result carried an OperationOutcome", failed=True),
            Problem("conditions", "1 search entries that are not Condition", strays_only=True),
        ),
    )
    out = split(result, combined)
    assert {n.key for n in out.notes if n.failed} == set(combined.members[key])
    assert [n.key for n in out.notes if n.strays_only] == ["conditions"]
