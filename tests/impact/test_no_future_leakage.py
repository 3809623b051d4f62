"""No future leakage: data dated after an order never changes that order's replayed answer.

For each order of the generated population's patients with NVO, data dated after the
order is added (results taken or issued later, deficits and episodes recorded later,
antibiotics ordered later, later orders and studies) and the patient replayed again:
the order's decision, rules, key figures and gaps must be what they were. First every
order with seeded extra data, then hypothesis drawing the extra data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.impact.asof import order_time
from cds_service.impact.replayer import Replayer, worker_settings
from cds_service.impact.summary import ReplayRow, Summary
from cds_service.settings import load_settings
from fhir_mappers.model import When
from spine_cds_dev.population import PopulationSpec
from tests.impact.helpers import patients_of

LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
KINDS = (
    "crp-later",
    "crp-issued-later",
    "esr-later",
    "pain-later",
    "deficit-recorded-later",
    "episode-recorded-later",
    "antibiotic-later",
    "order-later",
    "episode-resolved-later",
)


@pytest.fixture(scope="module")
def replayer() -> Iterator[Replayer]:
    built = Replayer(worker_settings(load_settings(environ={})))
    yield built
    built.close()


@pytest.fixture(scope="module")
def nvo_patients(replayer: Replayer) -> dict[str, list[dict[str, Any]]]:
    everyone = patients_of(PopulationSpec(1000, seed=1))
    return {
        pid: resources
        for pid, resources in everyone.items()
        if replayer.has_episode([r for r in resources if r["resourceType"] == "Condition"])
    }


def _instant(when: When, delta: timedelta) -> str:
    return (when.instant + delta).isoformat()


def _observation(
    pid: str, rid: str, code: str, unit: str, value: float, eff: str, iss: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": eff,
        "issued": iss,
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def future_resource(
    kind: str,
    pid: str,
    when: When,
    hours: int,
    value: float,
    n: int,
    existing: list[dict[str, Any]],
) -> dict[str, Any]:
    """One resource of ``kind`` dated ``hours`` (>= 1) after the order at ``when``."""
    rid = f"future-{n}"
    later = _instant(when, timedelta(hours=hours))
    later_day = (when.day + timedelta(days=max(1, hours // 24))).isoformat()
    if kind == "crp-later":
        return _observation(pid, rid, "1988-5", "mg/L", value, later, later)
    if kind == "crp-issued-later":  # taken before the order, its result out after it
        taken = _instant(when, timedelta(hours=-2))
        return _observation(pid, rid, "1988-5", "mg/L", value, taken, later)
    if kind == "esr-later":
        return _observation(pid, rid, "4537-7", "mm/h", value, later, later)
    if kind == "pain-later":
        return _observation(pid, rid, "72514-3", "{score}", min(value, 10), later, later)
    if kind in ("deficit-recorded-later", "episode-recorded-later"):
        code = "G83.4" if kind == "deficit-recorded-later" else "M46.26"
        return {
            "resourceType": "Condition",
            "id": rid,
            "code": {"coding": [{"system": ICD10CM, "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": _instant(when, timedelta(days=-3)),
            "recordedDate": later_day,
        }
    if kind == "antibiotic-later":
        return {
            "resourceType": "MedicationRequest",
            "id": rid,
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2193"}
                ]
            },
            "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": later,
        }
    if kind == "order-later":
        return {
            "resourceType": "ServiceRequest",
            "id": rid,
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": later,
        }
    assert kind == "episode-resolved-later"  # an update, dated later, of an ongoing episode
    ongoing = [
        r
        for r in existing
        if r["resourceType"] == "Condition" and not any(k.startswith("abatement") for k in r)
    ]
    if not ongoing:
        return future_resource("crp-later", pid, when, hours, value, n, existing)
    return dict(
        ongoing[0],
        clinicalStatus={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "resolved",
                }
            ]
        },
        abatementDateTime=later,
    )


def _decision(row: ReplayRow) -> dict[str, Any]:
    fields = dict(vars(row))
    fields.pop("performed_after")  # a later study is the point of that column
    return fields


def _replay(replayer: Replayer, pid: str, resources: list[dict[str, Any]]) -> dict[str, ReplayRow]:
    rows = replayer.replay_patient(pid, resources, {}, Summary())
    return {row.order_id: row for row in rows}


def _with_future(
    resources: list[dict[str, Any]], additions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    replaced = {(a["resourceType"], a["id"]) for a in additions}
    kept = [r for r in resources if (r["resourceType"], r.get("id")) not in replaced]
    return kept + additions


def _orders(resources: list[dict[str, Any]]) -> list[tuple[str, When]]:
    out = []
    for r in resources:
        when = order_time(r) if r["resourceType"] == "ServiceRequest" else None
        if when is not None:
            out.append((str(r["id"]), when))
    return out


def test_every_generated_order_ignores_later_data(
    replayer: Replayer, nvo_patients: dict[str, list[dict[str, Any]]]
) -> None:
    checked = 0
    for pid, resources in sorted(nvo_patients.items()):
        before = _replay(replayer, pid, resources)
        for order_id, when in _orders(resources):
            if order_id not in before:
                continue  # not a spine order: nothing replayed
            rng = random.Random(f"{pid}/{order_id}")
            additions = [
                future_resource(
                    rng.choice(KINDS),
                    pid,
                    when,
                    rng.randint(1, 24 * 60),
                    rng.uniform(0.5, 400),
                    n,
                    resources,
                )
                for n in range(rng.randint(1, 6))
            ]
            after = _replay(replayer, pid, _with_future(resources, additions))
            assert _decision(after[order_id]) == _decision(before[order_id]), (pid, order_id)
            checked += 1
    assert checked > 300  # the population has that many spine orders of NVO patients


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_drawn_later_data_never_changes_an_order(
    replayer: Replayer, nvo_patients: dict[str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    pid = data.draw(st.sampled_from(sorted(nvo_patients)))
    resources = nvo_patients[pid]
    before = _replay(replayer, pid, resources)
    orders = [(o, w) for o, w in _orders(resources) if o in before]
    if not orders:
        return
    order_id, when = data.draw(st.sampled_from(orders))
    kinds = data.draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=8))
    additions = [
        future_resource(
            kind,
            pid,
            when,
            data.draw(st.integers(1, 24 * 120)),
            data.draw(st.floats(0, 1000, allow_nan=False)),
            n,
            resources,
        )
        for n, kind in enumerate(kinds)
    ]
    after = _replay(replayer, pid, _with_future(resources, additions))
    assert _decision(after[order_id]) == _decision(before[order_id])


def test_the_same_data_before_the_order_does_change_it(
    replayer: Replayer, nvo_patients: dict[str, list[dict[str, Any]]]
) -> None:
    """The check above can fail: a new deficit recorded before the order turns the
    answer into support-urgent."""
    changed = 0
    for pid, resources in sorted(nvo_patients.items())[:40]:
        before = _replay(replayer, pid, resources)
        for order_id, when in _orders(resources):
            if before.get(order_id) is None or before[order_id].decision in (
                "support-urgent",
                "not-applicable",
            ):
                continue
            deficit = future_resource("deficit-recorded-later", pid, when, 1, 0, 0, resources)
            deficit["recordedDate"] = _instant(when, timedelta(hours=-1))
            deficit["onsetDateTime"] = _instant(when, timedelta(hours=-2))
            after = _replay(replayer, pid, [*resources, deficit])
            changed += after[order_id].decision != before[order_id].decision
    assert changed > 0
