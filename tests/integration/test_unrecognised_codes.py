"""Codes a site can learn: what the service did not recognise is audited and reported.

The real service (gunicorn, shadow mode, as a site's pilot runs) is sent an Epic-shaped
order with only its local procedure code (no card, and before this nothing kept), and a
recognised spine MRI whose prefetch holds a local Condition code and a local CRP code.
``spine-cds report`` (the real command, on the same database) then lists them with
counts, and ignores what it did recognise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, LOINC, SIGN_ID, hook_request, service_request

pytestmark = pytest.mark.integration

# An Epic-internal procedure code system (the site part of the OID is made up here).
EPIC_PROC = "urn:oid:1.2.840.114350.1.13.99999.2.7.2.696580"
LOCAL_LAB = "urn:oid:1.2.840.114350.1.13.99999.2.7.2.768282"
LOCAL_DX = "urn:oid:1.2.840.114350.1.13.99999.2.7.2.728286"
SNOMED = "http://snomed.info/sct"


def epic_local_order(order_id: str) -> dict[str, Any]:
    order = service_request(order_id, system=EPIC_PROC, code="12345")
    order["code"]["coding"][0]["display"] = "MRI LUMBAR SPINE WO CONTRAST"
    return order


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def condition(cid: str, system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code, "display": "typed by a clinician"}]},
        "onsetDateTime": "2026-10-01",
    }


def crp(oid: str, system: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": 12.0, "unit": "mg/L"},
    }


def test_unrecognised_orders_and_codes_are_kept_and_reported(tmp_path: Path) -> None:
    database = tmp_path / "spine-cds.sqlite3"
    env = {"SPINE_CDS_DATABASE_PATH": str(database), "SPINE_CDS_SHADOW_MODE": "true"}
    with ServiceProcess(env=env, workers=1, log_path=tmp_path / "service.log") as svc:
        url = f"{svc.url}/cds-services/{SIGN_ID}"
        for i in range(2):  # the same local order twice: counted twice
            body = hook_request("order-sign", [epic_local_order(f"local-{i}")])
            response = requests.post(url, json=body, timeout=10)
            assert response.status_code == 200, svc.log_tail()
            assert response.json() == {"cards": []}
        text_only = service_request("text-only")  # an orderable without a code mapping
        text_only["code"] = {"text": "MRI Lumbar Spine w/wo Contrast"}
        body = hook_request("order-sign", [text_only])
        assert requests.post(url, json=body, timeout=10).json() == {"cards": []}

        prefetch = {
            **EMPTY_PREFETCH,
            "conditions": searchset(
                condition("c-local", LOCAL_DX, "OSTEO-77"),
                condition("c-known", "http://hl7.org/fhir/sid/icd-10-cm", "M46.26"),
            ),
            "crp": searchset(crp("o-local", LOCAL_LAB, "CRP-LOC"), crp("o-loinc", LOINC, "1988-5")),
        }
        body = hook_request("order-sign", [service_request("mri")], prefetch=prefetch)
        assert requests.post(url, json=body, timeout=10).status_code == 200, svc.log_tail()

    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
    environment["SPINE_CDS_DATABASE_PATH"] = str(database)
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    text = subprocess.run(
        [sys.executable, "-m", "cds_service", "report"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    codes = text[text.index("Order codes not recognised") :]
    orders, texts, conditions, observations = (
        codes.split("Orders with only a text")[0],
        codes.split("Orders with only a text")[1].split("Condition codes")[0],
        codes.split("Condition codes not recognised")[1].split("Observation codes")[0],
        codes.split("Observation codes not recognised")[1],
    )
    assert f"2  {EPIC_PROC}|12345  MRI LUMBAR SPINE WO CONTRAST" in orders
    assert "72158" not in orders  # the CPT spine MRI was recognised
    assert "\n      1  MRI Lumbar Spine w/wo Contrast\n" in texts
    assert f"1  {LOCAL_DX}|OSTEO-77" in conditions
    assert "M46.26" not in conditions
    assert "typed by a clinician" not in text  # a Condition's display is never kept
    assert f"1  {LOCAL_LAB}|CRP-LOC" in observations
    assert "1988-5" not in observations
    print(codes)  # shown with -s: the closing note quotes it
