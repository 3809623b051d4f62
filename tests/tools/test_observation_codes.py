"""`spine-cds observation-codes` against the real FHIR test server: a site's local CRP code,
which the service's LOINC searches never fetch, is listed and marked, beside the LOINC CRP
the service reads and a glucose it rightly ignores (an integrator's review: three CRPs
under an Epic-style local code were never seen, and the report could not list them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from spine_cds_dev.fhir_server import FhirTestServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "codes-test-token"
LOCAL = "urn:oid:1.2.840.114350.1.13.99999.2.7.2.768282"
LOINC = "http://loinc.org"


CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(
    n: int, system: str, code: str, display: str, patient: str, *categories: str
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{patient}-{n}",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": f"2026-11-{n + 1:02d}T08:00:00Z",
        "valueQuantity": {"value": 987.5 + n, "unit": "mg/L"},
    }
    if categories:
        resource["category"] = [
            {"coding": [{"system": CATEGORY, "code": category}]} for category in categories
        ]
    return {
        "fullUrl": f"Observation/obs-{patient}-{n}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"Observation/obs-{patient}-{n}"},
    }


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        entries = [
            {
                "fullUrl": "Patient/codes-1",
                "resource": {"resourceType": "Patient", "id": "codes-1"},
                "request": {"method": "PUT", "url": "Patient/codes-1"},
            },
            *(observation(n, LOCAL, "CRP-LOC", "C-Reactive Protein", "codes-1") for n in range(3)),
            observation(3, LOINC, "1988-5", "C reactive protein [Mass/volume]", "codes-1"),
            observation(4, LOINC, "2345-7", "Glucose [Mass/volume] in Serum", "codes-1"),
            {
                "fullUrl": "Patient/codes-2",
                "resource": {"resourceType": "Patient", "id": "codes-2"},
                "request": {"method": "PUT", "url": "Patient/codes-2"},
            },
            observation(0, LOCAL, "CRP-LOC", "C-Reactive Protein", "codes-2", "laboratory"),
            observation(1, LOINC, "72514-3", "Pain severity", "codes-2", "vital-signs"),
            observation(2, LOINC, "8867-4", "Heart rate", "codes-2", "vital-signs", "laboratory"),
            observation(3, LOINC, "44249-1", "PHQ-9 total", "codes-2", "survey"),
        ]
        server.load_bundle({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        yield server


def run(fhir: FhirTestServer, *extra: str) -> Any:
    args = ["observation-codes", "--fhir-server", fhir.base_url, "--patient", "codes-1"]
    return CliRunner().invoke(main, [*args, "--token", TOKEN, *extra], catch_exceptions=False)


def test_a_local_crp_code_is_listed_first_and_marked(fhir: FhirTestServer) -> None:
    result = run(fhir)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "|" in line and "count" not in line]
    assert rows[0].split() == ["3", "LOOK", f"{LOCAL}|CRP-LOC", "C-Reactive", "Protein"]
    assert any(row.split()[:3] == ["1", "crp", f"{LOINC}|1988-5"] for row in rows)
    assert any(row.split()[:3] == ["1", "-", f"{LOINC}|2345-7"] for row in rows)
    assert "1 code(s) marked LOOK" in result.output
    assert "987" not in result.output and "2026-11" not in result.output  # no values, dates


def test_a_site_value_set_makes_it_read(fhir: FhirTestServer, tmp_path: Path) -> None:
    (tmp_path / "local-obs.json").write_text(
        json.dumps(
            {
                "valueSet": "observations",
                "source": "site test",
                "entries": [{"system": LOCAL, "code": "CRP-LOC", "kind": "crp", "verified": True}],
            }
        ),
        encoding="utf-8",
    )
    result = run(fhir, "--valueset-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    codes = {c["code"]: c for c in json.loads(result.output)["codes"]}
    assert codes["CRP-LOC"]["readAs"] == "crp"
    assert codes["2345-7"] == {
        "system": LOINC,
        "code": "2345-7",
        "display": "Glucose [Mass/volume] in Serum",
        "count": 1,
        "readAs": None,
        "looksLike": False,
    }


def test_a_refused_token_is_a_fhir_server_error(fhir: FhirTestServer) -> None:
    args = ["observation-codes", "--fhir-server", fhir.base_url, "--patient", "codes-1"]
    result = CliRunner().invoke(main, [*args, "--token", "wrong"])
    assert result.exit_code == 3, result.output
    assert "refused the access token" in result.output


def test_categories_are_searched_on_a_real_server_and_merged(fhir: FhirTestServer) -> None:
    """Each category is its own search; an Observation in two is counted once, and one in
    a category not asked for is not read."""
    args = ["observation-codes", "--fhir-server", fhir.base_url, "--patient", "codes-2"]
    categories = ["--category", "laboratory", "--category", "vital-signs"]
    result = CliRunner().invoke(
        main, [*args, *categories, "--token", TOKEN, "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["observations"] == 3 and data["pages"] == 2
    assert {c["code"]: c["count"] for c in data["codes"]} == {
        "CRP-LOC": 1,
        "72514-3": 1,
        "8867-4": 1,
    }
    assert data["codes"][0]["looksLike"] and data["codes"][0]["readAs"] is None
