"""A resource with a modifier extension is not read as if it had none.

FHIR forbids processing a resource whose modifier extensions are not understood: a
modifier can turn "CRP 8 mg/L" into "CRP 8 mg/L, sample haemolysed, do not use", or a
diagnosis into a refuted one. The service understands none, so what carries one is left
out and said: a CRP is named on the card as not used, an infection Condition is not the
episode, a red flag is still kept (losing it could only make the answer less cautious),
a spine order is not assessed. Through the real service (gunicorn) with the improving
patient's prefetch, and in the mappers for both ways an Observation is read.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import msgspec
import pytest
import requests

from cds_service.valuesets import load_value_sets
from fhir_mappers.antibiotics import build_antibiotics
from fhir_mappers.conditions import map_conditions
from fhir_mappers.medications import map_antibiotic_orders
from fhir_mappers.model import ConditionCategory
from fhir_mappers.observations import map_observations
from fhir_mappers.observations_careful import MappingOptions
from fhir_mappers.prior_imaging import map_prior_imaging
from fhir_mappers.procedures import map_spine_surgery
from fhir_mappers.rawjson import MODIFIER_PLAIN
from fhir_mappers.wire import read_resource
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request, prefetched

pytestmark = pytest.mark.integration

URL = "http://example.org/fhir/StructureDefinition/result-invalidated"
MODIFIER = [{"url": URL, "valueBoolean": True}]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("modifier")
    # a database of its own: from the checkout the default is the checkout's database,
    # where a newcomer's `spine-cds report` then showed this test's calls as traffic
    env = {"SPINE_CDS_DATABASE_PATH": str(folder / "db.sqlite3")}
    with ServiceProcess(env=env, workers=1, log_path=folder / "service.log") as svc:
        yield svc


def _crps(body: dict[str, Any]) -> list[dict[str, Any]]:
    crps = [
        o for o in prefetched(body, "Observation") if o["code"]["coding"][0]["code"] == "1988-5"
    ]
    return sorted(crps, key=lambda o: str(o["effectiveDateTime"]))


def _call(service: ServiceProcess, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_the_patient_without_modifiers_gets_advise_against(service: ServiceProcess) -> None:
    (card,) = _call(service, card_request())
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "advise-against"
    assert MODIFIER_PLAIN not in card["detail"]


def test_a_crp_with_a_modifier_is_named_as_not_used(service: ServiceProcess) -> None:
    body = card_request()
    latest = _crps(body)[-1]
    latest["modifierExtension"] = MODIFIER
    (card,) = _call(service, body)
    result = card["extension"]["spine-cds-assessment"]
    assert result.get("crp", {}).get("latest", {}).get("reference") != f"Observation/{latest['id']}"
    value = latest["valueQuantity"]["value"]
    (line,) = [x for x in card["detail"].splitlines() if MODIFIER_PLAIN in x]
    assert line.startswith("- Not used: ") and f"CRP {value:g} mg/L on day 28" in line
    # the CRP before it is now the latest, 15 days old: too old for advise-against
    assert result["recommendation"] == "insufficient-data"


def test_the_infection_with_a_modifier_is_not_the_episode(service: ServiceProcess) -> None:
    body = card_request()
    for condition in prefetched(body, "Condition"):
        condition["modifierExtension"] = MODIFIER
    assert _call(service, body) == []


def test_a_spine_order_with_a_modifier_is_not_assessed(service: ServiceProcess) -> None:
    body = card_request()
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["modifierExtension"] = MODIFIER
    assert _call(service, body) == []


# --- the mappers ------------------------------------------------------------------------

VS = load_value_sets()


def _crp_resource() -> dict[str, Any]:
    return copy.deepcopy(_crps(card_request())[-1])


@pytest.mark.parametrize("read_as", ["bytes", "dict"])
def test_an_observation_with_a_modifier_is_skipped_either_way_it_is_read(read_as: str) -> None:
    resource = _crp_resource()
    resource["modifierExtension"] = MODIFIER
    item = (
        read_resource(msgspec.Raw(msgspec.json.encode(resource)))
        if read_as == "bytes"
        else resource
    )
    measurements, issues = map_observations([item], VS, MappingOptions())
    assert measurements == ()
    (issue,) = issues
    assert URL in issue.reason and issue.plain == MODIFIER_PLAIN
    assert issue.kind == "crp" and issue.value == resource["valueQuantity"]["value"]


def test_an_empty_modifier_list_is_no_modifier() -> None:
    resource = _crp_resource()
    resource["modifierExtension"] = []
    measurements, issues = map_observations([resource], VS, MappingOptions())
    assert len(measurements) == 1 and issues == ()


def _condition(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c-{code}",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]},
        "onsetDateTime": "2026-10-01",
        **extra,
    }


def test_an_infection_with_a_modifier_is_left_out_and_a_red_flag_kept() -> None:
    facts, issues = map_conditions(
        [
            _condition("M46.26", modifierExtension=MODIFIER),
            _condition("G83.4", modifierExtension=MODIFIER),
        ],
        VS,
    )
    assert [f.category for f in facts] == [ConditionCategory.NEURO_DEFICIT]
    reasons = {i.reference: i.reason for i in issues}
    assert URL in reasons["Condition/c-M46.26"] and reasons["Condition/c-M46.26"].endswith(
        "not used"
    )
    assert "kept for its neuro-deficit code" in reasons["Condition/c-G83.4"]


def test_an_antibiotic_order_with_a_modifier_on_its_dosage_does_not_count() -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "abx",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "cefazolin"},
        "authoredOn": "2026-10-01",
        "dosageInstruction": [{"text": "IV", "modifierExtension": MODIFIER}],
    }
    shipped = resources.files("cds_service.valuesets").joinpath("antibiotics.json")
    antibiotics = build_antibiotics([("antibiotics.json", json.loads(shipped.read_text("utf-8")))])
    assert (
        len(
            map_antibiotic_orders([dict(order, dosageInstruction=[{"text": "IV"}])], antibiotics)[0]
        )
        == 1
    )
    starts, issues = map_antibiotic_orders([order], antibiotics)
    assert starts == ()
    (issue,) = issues
    assert URL in issue.reason and issue.plain == f"cefazolin order {MODIFIER_PLAIN}"


def test_the_modifiers_named_are_cut_short_and_counted() -> None:
    resource = _condition("M46.26", modifierExtension=[{"url": "http://x/" + "a" * 500}, {}, 3, {}])
    _, issues = map_conditions([resource], VS)
    (issue,) = issues
    assert len(issue.reason) < 300 and "(no url)" in issue.reason and "and 1 more" in issue.reason


def _imaging_study(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "id": "mri",
        "status": "available",
        "subject": {"reference": "Patient/p1"},
        "procedureCode": [
            {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}]}
        ],
        "started": "2026-10-20T10:00:00Z",
        **extra,
    }


def test_a_study_with_a_modifier_is_not_a_study_done() -> None:
    # a card must not say a finding was seen on a study the record may not say was done
    assert len(map_prior_imaging([_imaging_study()], VS)[0]) == 1
    studies, issues = map_prior_imaging([_imaging_study(modifierExtension=MODIFIER)], VS)
    assert studies == ()
    (issue,) = issues
    assert URL in issue.reason and issue.reference == "ImagingStudy/mri"


def test_an_operation_with_a_modifier_still_counts_and_is_reported() -> None:
    # dropping it could only let a CT be advised against: kept, the cautious reading
    operation = {
        "resourceType": "Procedure",
        "id": "fusion",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22551"}]},
        "performedDateTime": "2026-10-10",
        "modifierExtension": MODIFIER,
    }
    found, issues = map_spine_surgery([operation], VS)
    assert [s.reference for s in found] == ["Procedure/fusion"]
    (issue,) = issues
    assert URL in issue.reason and "counted as done" in issue.reason
