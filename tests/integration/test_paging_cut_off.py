"""Paging cut off by the page limit, against the real FHIR test server, both data paths.

A patient improving as in E1, but with CRP measured every two hours: more CRP results
than one page holds, newest first, both for the crp query (``_count=100``) and for the
search the service sends when it fetches CRP, ESR and pain together (``_count=300``).
With one page allowed, the service reads only the last days; the older pages, which hold the
baseline, are never read, so clinical-rules.md asks for insufficient-data and a card
that says the data were cut off. With enough pages the same patient is advised against.
Through gunicorn, as a user runs it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.examples import load_example, split_transaction
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request, prefetch_from_server

pytestmark = pytest.mark.integration
TOKEN = "ehr-issued-token-paging"  # synthetic; the server only checks it matches
ORDER_DATE = date(2026, 11, 30)
PATIENT = "spine-cds-e1"  # E1's patient and conditions, with many more CRP results


def frequent_crp_bundle() -> dict[str, Any]:
    """E1 with its CRP replaced by twelve values a day from day 0 to day 28, falling."""
    example = load_example("e01-improving", ORDER_DATE)
    bundle = copy.deepcopy(example.bundle)
    entries = bundle["entry"]
    template = next(e for e in entries if e["resource"]["id"].endswith("crp-d0"))
    kept = [e for e in entries if "-crp-" not in e["resource"]["id"]]
    t0 = date.fromisoformat(template["resource"]["effectiveDateTime"][:10])
    for day in range(29):
        for hour in range(0, 24, 2):
            entry = copy.deepcopy(template)
            resource = entry["resource"]
            resource["id"] = f"{PATIENT}-crp-d{day}-h{hour}"
            when = (t0 + timedelta(days=day)).isoformat()
            resource["effectiveDateTime"] = f"{when}T{hour:02d}:00:00+01:00"
            resource["issued"] = f"{when}T{hour:02d}:30:00+01:00"
            resource["valueQuantity"]["value"] = round(142 - day * 4.4, 1)  # 142 -> 18.8
            entry["request"]["url"] = f"Observation/{resource['id']}"
            kept.append(entry)
    bundle["entry"] = kept
    return bundle


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        for part in split_transaction(frequent_crp_bundle()):
            server.load_bundle(part)
        yield server


def service(tmp: Path, max_pages: int) -> ServiceProcess:
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"),
        "SPINE_CDS_FHIR_MAX_PAGES": str(max_pages),
        "SPINE_CDS_FHIR_BUDGET_SECONDS": "5",
    }
    return ServiceProcess(env=env, log_path=tmp / "service.log", workers=1)


@pytest.fixture(scope="module")
def one_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service(tmp_path_factory.mktemp("one-page"), 1) as running:
        yield running


@pytest.fixture(scope="module")
def enough_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service(tmp_path_factory.mktemp("enough"), 5) as running:
        yield running


def both_answers(fhir: FhirTestServer, svc: ServiceProcess) -> list[dict[str, Any]]:
    order = load_example("e01-improving", ORDER_DATE).draft_order
    base = order_request("order-select", PATIENT, order)
    prefetch = prefetch_from_server(fhir.base_url, base["context"], SELECT_ID, fhir.auth_headers)
    assert any(link["relation"] == "next" for link in prefetch["crp"].get("link", []))
    prefetched = order_request("order-select", PATIENT, order, prefetch=prefetch)
    # the prefetch Bundle's next link points at the FHIR server: the service needs access
    prefetched["fhirServer"] = fhir.base_url
    prefetched["fhirAuthorization"] = order_request(
        "order-select", PATIENT, order, fhir_server=fhir.base_url, access_token=TOKEN
    )["fhirAuthorization"]
    fetched = order_request(
        "order-select", PATIENT, order, fhir_server=fhir.base_url, access_token=TOKEN
    )
    out = []
    for body in (prefetched, fetched):
        response = requests.post(f"{svc.url}/cds-services/{SELECT_ID}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


def recommendation(response: dict[str, Any]) -> str:
    (card,) = response["cards"]
    return str(card["extension"]["spine-cds-assessment"]["recommendation"])


def test_cut_off_crp_that_misses_the_baseline_is_insufficient_data(
    fhir: FhirTestServer, one_page: ServiceProcess
) -> None:
    for response in both_answers(fhir, one_page):
        assert recommendation(response) == "insufficient-data"
        (card,) = response["cards"]
        detail = card["detail"]
        # prefetched: the CRP search was cut off; fetched: the one search for CRP, ESR and
        # pain together (the service combines them when none was prefetched)
        assert re.search(
            r"Some CRP results(, ESR results and pain scores)? could not be read: the record "
            r"sent them in pages and not every page was read",
            detail,
        ), detail
        assert "Older CRP results could not be read" in detail
        assert detail.count("not every page was read") == 1  # said in one line
        assert "systemActions" not in response  # no rating without a decision


def test_the_same_patient_read_whole_is_advised_against(
    fhir: FhirTestServer, enough_pages: ServiceProcess
) -> None:
    for response in both_answers(fhir, enough_pages):
        assert recommendation(response) == "advise-against"
        assert "not every page was read" not in response["cards"][0]["detail"]
