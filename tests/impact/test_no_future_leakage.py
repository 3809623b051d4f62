"""No future leakage: data dated after an order never changes that order's replayed answer.

For each order of the generated population's patients with NVO, data dated after the
order is added (results taken or issued later, deficits and episodes recorded later,
antibiotics ordered later, later orders, spine operations performed later, spine
studies started later, imaging reports dated or issued later) and the patient replayed
again: the order's row (decision, rules, key figures, gaps) and its whole answer (the
cards and the assessment behind them, with what a prior study or operation adds) must
be what they were. First every order with seeded extra data, then hypothesis drawing
the extra data; and the same data dated before the order does change answers, so the
check can fail.
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
from cds_service.invocation import Outcome
from cds_service.settings import load_settings
from fhir_mappers.model import When
from spine_cds_dev.population import PopulationSpec
from tests.impact.helpers import patients_of

LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
# From the examples: e39's lumbar fusion, e40's lumbar MRI and its report.
FUSION = {"system": CPT, "code": "22612"}
LUMBAR_MRI = {"system": CPT, "code": "72158"}
LUMBAR_MRI_REPORT = {"system": LOINC, "code": "24968-0"}
# The kinds of data the optional sources of decisions 7-9 read (procedures, studies,
# reports), each of which feeds the answer when it is dated before the order.
HISTORY_KINDS = (
    "procedure-later",
    "procedure-period-later",
    "study-later",
    "report-later",
    "report-issued-later",
)
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
    *HISTORY_KINDS,
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


def _history(kind: str, pid: str, rid: str, when: When, later: str) -> dict[str, Any]:
    """A spine operation, study or report dated ``later``, with no ``basedOn``."""
    subject = {"reference": f"Patient/{pid}"}
    if kind == "procedure-later":
        return {
            "resourceType": "Procedure",
            "id": rid,
            "status": "completed",
            "code": {"coding": [FUSION]},
            "subject": subject,
            "performedDateTime": later,
        }
    if kind == "procedure-period-later":
        return {
            "resourceType": "Procedure",
            "id": rid,
            "status": "completed",
            "code": {"coding": [FUSION]},
            "subject": subject,
            "performedPeriod": {"start": later},
        }
    if kind == "study-later":
        return {
            "resourceType": "ImagingStudy",
            "id": rid,
            "status": "available",
            "subject": subject,
            "started": later,
            "procedureCode": [{"coding": [LUMBAR_MRI]}],
        }
    # a report of a study done the day before the order: issued later, or dated later
    done = _instant(when, timedelta(hours=-20)) if kind == "report-issued-later" else later
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "code": {"coding": [LUMBAR_MRI_REPORT]},
        "subject": subject,
        "effectiveDateTime": done,
        "issued": later,
        "conclusion": "Epidural collection.",
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
    if kind in HISTORY_KINDS:
        return _history(kind, pid, rid, when, later)
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


def _without_uuids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_uuids(v) for k, v in node.items() if k != "uuid"}
    if isinstance(node, list):
        return [_without_uuids(v) for v in node]
    return node


def _decision(answer: tuple[ReplayRow, Outcome | None]) -> dict[str, Any]:
    """The order's row (a later study is the point of ``performed_after``: not compared)
    and its whole answer: the cards (less their random uuids) and the assessment."""
    row, outcome = answer
    fields = dict(vars(row))
    fields.pop("performed_after")
    if outcome is not None:
        fields["cards"] = _without_uuids(outcome.response)
        fields["assessment"] = outcome.assessment
    return fields


def _replay(
    replayer: Replayer, pid: str, resources: list[dict[str, Any]]
) -> dict[str, tuple[ReplayRow, Outcome | None]]:
    outcomes: dict[str, Outcome] = {}
    rows = replayer.replay_patient(pid, resources, {}, Summary(), outcomes)
    return {row.order_id: (row, outcomes.get(row.order_id)) for row in rows}


def _with_future(
    resources: list[dict[str, Any]], additions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``resources`` with ``additions``; an addition with the id of a resource (or of an
    earlier addition) replaces it, as a later version of one resource does in an export."""
    latest = {(a["resourceType"], a["id"]): a for a in additions}
    kept = [r for r in resources if (r["resourceType"], r.get("id")) not in latest]
    return kept + list(latest.values())


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
            if before.get(order_id) is None or before[order_id][0].decision in (
                "support-urgent",
                "not-applicable",
            ):
                continue
            deficit = future_resource("deficit-recorded-later", pid, when, 1, 0, 0, resources)
            deficit["recordedDate"] = _instant(when, timedelta(hours=-1))
            deficit["onsetDateTime"] = _instant(when, timedelta(hours=-2))
            after = _replay(replayer, pid, [*resources, deficit])
            changed += after[order_id][0].decision != before[order_id][0].decision
    assert changed > 0


@pytest.mark.parametrize("kind", HISTORY_KINDS)
def test_an_operation_study_or_report_dated_before_the_order_does_change_it(
    replayer: Replayer, nvo_patients: dict[str, list[dict[str, Any]]], kind: str
) -> None:
    """The check can fail for the new sources too: the operation, study or report of
    each kind, dated the day before the order (its report issued then too), changes the
    answer (an operation named, the last spine study named) of orders with a card."""
    changed = 0
    for pid, resources in sorted(nvo_patients.items())[:40]:
        before = _replay(replayer, pid, resources)
        for order_id, when in _orders(resources):
            if before.get(order_id) is None or before[order_id][0].decision == "not-applicable":
                continue
            earlier = future_resource(kind, pid, when, 1, 0, 0, resources)
            moved = _instant(when, timedelta(hours=-26))
            for key in ("performedDateTime", "started", "effectiveDateTime", "issued"):
                if key in earlier:
                    earlier[key] = moved
            if "performedPeriod" in earlier:
                earlier["performedPeriod"] = {"start": moved}
            after = _replay(replayer, pid, [*resources, earlier])
            changed += _decision(after[order_id]) != _decision(before[order_id])
    assert changed > 0
