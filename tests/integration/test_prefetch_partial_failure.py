"""A prefetched search that failed in part is fetched again from fhirServer (CDS Hooks 2.0.1).

An EHR whose CRP search failed sends the searchset with an OperationOutcome entry (an
``error`` issue) and no Observations. Read as it is, that is "no CRP" and a card built
on a gap. With a ``fhirServer`` the service fetches the key again from the real FHIR
test server and answers as if the prefetch had been whole; without one it uses what it
was sent and says so in the audit and on the card, and never advises against imaging on
a search that may be missing its latest results; one that failed outright (an error and
no result) is no data at all: 412. Through the real service (gunicorn).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.examples import load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request, prefetch_from_server

pytestmark = pytest.mark.integration
TOKEN = "ehr-issued-token-partial"  # synthetic; the server only checks it matches
EXAMPLE = next(e for e in load_examples(date(2026, 11, 26)) if e.key == "e01-improving")

FAILED_SEARCH = {
    "resourceType": "Bundle",
    "type": "searchset",
    "entry": [
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception"}],
            },
            "search": {"mode": "outcome"},
        }
    ],
}


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        server.load_bundle(EXAMPLE.bundle)
        yield server


def recommendation(response: dict[str, Any]) -> str:
    cards = response["cards"]
    return str(cards[0]["extension"]["spine-cds-assessment"]["recommendation"]) if cards else "-"


def test_a_search_that_failed_in_part_is_fetched_again(
    fhir: FhirTestServer, tmp_path: Path
) -> None:
    base = order_request("order-select", EXAMPLE.patient_id, EXAMPLE.draft_order)
    whole = prefetch_from_server(fhir.base_url, base["context"], SELECT_ID, fhir.auth_headers)
    broken = {**whole, "crp": FAILED_SEARCH}
    database = tmp_path / "spine-cds.sqlite3"
    env = {"SPINE_CDS_DATABASE_PATH": str(database)}
    with ServiceProcess(env=env, workers=1, log_path=tmp_path / "service.log") as svc:
        url = f"{svc.url}/cds-services/{SELECT_ID}"

        def answer(**kwargs: Any) -> dict[str, Any]:
            body = order_request("order-select", EXAMPLE.patient_id, EXAMPLE.draft_order, **kwargs)
            response = requests.post(url, json=body, timeout=10)
            assert response.status_code == 200, svc.log_tail()
            result: dict[str, Any] = response.json()
            return result

        expected = answer(prefetch=whole)
        assert recommendation(expected) == EXAMPLE.expected == "advise-against"
        refetched = answer(prefetch=broken, fhir_server=fhir.base_url, access_token=TOKEN)
        assert recommendation(refetched) == EXAMPLE.expected
        assert refetched["cards"][0]["detail"] == expected["cards"][0]["detail"]
        # Without a server to ask, a search that failed outright (an error and no result)
        # is no data at all, as a bare OperationOutcome is: 412 naming the key, never a
        # card saying "no CRP on record" (an integrator's review).
        body = order_request("order-select", EXAMPLE.patient_id, EXAMPLE.draft_order)
        refused = requests.post(url, json={**body, "prefetch": broken}, timeout=10)
        assert refused.status_code == 412, refused.text
        (detail,) = refused.json()["missing"]
        assert detail["key"] == "crp", detail
        assert (
            "(error/exception): the search failed, and the request has no fhirServer"
            in (detail["reason"])
        )
        # The CRPs sent with an error beside them: any result, the latest too, may be
        # missing, so the answer never advises against imaging on them, and the card says
        # why (an outside review found a full advise-against with no word of it).
        crp = whole["crp"]
        partial = {**whole, "crp": {**crp, "entry": [*crp["entry"], *FAILED_SEARCH["entry"]]}}
        kept = answer(prefetch=partial)
        assert recommendation(kept) == "insufficient-data"
        assert "The record sent an error with the CRP results" in kept["cards"][0]["detail"]
        assert "CRP results may be missing" in kept["cards"][0]["summary"]

    with sqlite3.connect(database) as db:
        rows = [
            (json.loads(sources), detail)
            for sources, detail in db.execute(
                "SELECT data_sources, detail FROM audit_log ORDER BY id"
            ).fetchall()
        ]
    assert rows[1][0]["crp"] == "fetched"
    assert "the prefetched search carried an OperationOutcome (error/exception)" in rows[1][1]
    assert "fetched it again" in rows[1][1]
    assert rows[3][0]["crp"] == "prefetch"
    assert "the search failed in part" in rows[3][1]
