"""Whether a study was performed after a replayed order: the ``study_performed_after`` column.

A study names the order (``basedOn``: an ImagingStudy or a Procedure), or, naming no
order, is a spine MRI/CT by code done after the order, within 30 days and before the
patient's next spine order. The studies of decisions 7-9 now also reach the pipeline as
of the order (the earlier ones); this holds that the column still reads the later ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from cds_service.ehr_requests import bundle_resources
from cds_service.examples import load_example
from cds_service.impact.replayer import Replayer, worker_settings
from cds_service.impact.summary import Summary
from cds_service.settings import load_settings

CPT = "http://www.ama-assn.org/go/cpt"
ORDER_DATE = date(2026, 3, 2)
LUMBAR_MRI = {"system": CPT, "code": "72158"}  # spine-imaging value set
FUSION = {"system": CPT, "code": "22612"}  # procedures value set (e39)


@pytest.fixture(scope="module")
def replayer() -> Iterator[Replayer]:
    built = Replayer(worker_settings(load_settings(environ={})))
    yield built
    built.close()


@pytest.fixture(scope="module")
def patient() -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    example = load_example("e01-improving", ORDER_DATE)
    order = dict(example.draft_order, status="completed")
    return example.patient_id, bundle_resources(example.bundle), order


def _at(order: dict[str, Any], days: float) -> str:
    return (datetime.fromisoformat(order["authoredOn"]) + timedelta(days=days)).isoformat()


def _study(pid: str, sid: str, started: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "id": sid,
        "status": "available",
        "subject": {"reference": f"Patient/{pid}"},
        "started": started,
        "procedureCode": [{"coding": [LUMBAR_MRI]}],
        **extra,
    }


def _procedure(pid: str, code: dict[str, str], done: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"proc-{code['code']}",
        "status": "completed",
        "code": {"coding": [code]},
        "subject": {"reference": f"Patient/{pid}"},
        "performedDateTime": done,
        **extra,
    }


def _performed(
    replayer: Replayer,
    patient: tuple[str, list[dict[str, Any]], dict[str, Any]],
    *added: dict[str, Any],
) -> dict[str, bool]:
    pid, resources, order = patient
    rows = replayer.replay_patient(pid, [*resources, order, *added], {}, Summary())
    assert rows, "the example's order is replayed"
    return {row.order_id: row.performed_after for row in rows}


def test_a_study_or_procedure_naming_the_order(
    replayer: Replayer, patient: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    pid, _, order = patient
    based_on = {"basedOn": [{"reference": f"ServiceRequest/{order['id']}"}]}
    other = {"basedOn": [{"reference": "ServiceRequest/another-order"}]}
    oid = order["id"]
    assert _performed(replayer, patient) == {oid: False}
    assert _performed(replayer, patient, _study(pid, "s", _at(order, 1), **based_on)) == {oid: True}
    assert _performed(
        replayer, patient, _procedure(pid, LUMBAR_MRI, _at(order, 1), **based_on)
    ) == {oid: True}
    # a study of another order, even of the spine and the next day, is not this one's
    assert _performed(replayer, patient, _study(pid, "s", _at(order, 1), **other)) == {oid: False}


@pytest.mark.parametrize(
    ("days", "performed"),
    [(0.25, True), (2, True), (29, True), (31, False), (-1, False), (-0.1, False)],
)
def test_a_spine_study_naming_no_order_counts_when_done_soon_after(
    replayer: Replayer,
    patient: tuple[str, list[dict[str, Any]], dict[str, Any]],
    days: float,
    performed: bool,
) -> None:
    pid, _, order = patient
    study = _study(pid, "s", _at(order, days))
    assert _performed(replayer, patient, study) == {order["id"]: performed}


def test_an_operation_after_the_order_is_not_the_study(
    replayer: Replayer, patient: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    pid, _, order = patient
    fusion = _procedure(pid, FUSION, _at(order, 2))
    assert _performed(replayer, patient, fusion) == {order["id"]: False}


def test_a_study_after_the_next_order_is_that_orders(
    replayer: Replayer, patient: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    pid, _, order = patient
    second = dict(order, id="second-order", authoredOn=_at(order, 3))
    performed = _performed(replayer, patient, second, _study(pid, "s", _at(order, 5)))
    assert performed == {order["id"]: False, "second-order": True}
