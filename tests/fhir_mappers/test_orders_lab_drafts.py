"""Draft CRP and ESR orders in the order set: read apart from the spine orders, by the
codes the service reads Observations by, so that a card never orders them twice (an
outside clinician's review, 2026-12-08), and never judged, rated or counted as
imaging."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import MeasurementKind
from fhir_mappers.orders import map_orders
from fhir_mappers.valuesets import ValueSets
from tests.builders import bundle, service_request

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def vs() -> ValueSets:
    return load_value_sets()


def _lab(order_id: str, code: str, **extra: Any) -> dict[str, Any]:
    return {**service_request(order_id, LOINC, code), **extra}


def _kinds(found: Any) -> list[tuple[str, MeasurementKind]]:
    return [(lab.reference, lab.kind) for lab in found.labs]


@pytest.mark.parametrize("selections", [None, ["ServiceRequest/mri"]], ids=["sign", "select"])
def test_a_draft_crp_and_esr_are_labs_not_imaging(
    vs: ValueSets, selections: list[str] | None
) -> None:
    # order-select: the unselected lab drafts of the order set count too
    found = map_orders(
        bundle(service_request("mri"), _lab("crp", "1988-5"), _lab("esr", "4537-7")),
        selections,
        vs,
    )
    assert [o.reference for o in found.orders] == ["ServiceRequest/mri"]
    assert found.others == ()
    assert _kinds(found) == [
        ("ServiceRequest/crp", MeasurementKind.CRP),
        ("ServiceRequest/esr", MeasurementKind.ESR),
    ]
    assert found.issues == ()


def test_an_hs_crp_draft_does_not_stand_for_the_crp(vs: ValueSets) -> None:
    """A re-check: an hs-CRP in the order set kept the card from ordering a CRP, but an
    hs-CRP counts only where no standard CRP is on record; a molar CRP is a CRP."""
    found = map_orders(bundle(_lab("hs", "30522-7")), None, vs)
    assert _kinds(found) == []
    assert found.orders == ()
    molar = map_orders(bundle(_lab("molar", "76485-2")), None, vs)
    assert _kinds(molar) == [("ServiceRequest/molar", MeasurementKind.CRP)]


@pytest.mark.parametrize("status", ["revoked", "entered-in-error", "completed"])
def test_a_lab_order_not_being_placed_is_no_draft(vs: ValueSets, status: str) -> None:
    found = map_orders(bundle(_lab("crp", "1988-5", status=status)), None, vs)
    assert found.labs == ()
    assert found.not_placed == ()  # only spine orders are listed there, for the audit


def test_a_lab_order_with_a_modifier_is_not_read(vs: ValueSets) -> None:
    modifier = [{"url": "http://example.org/not-really", "valueBoolean": True}]
    found = map_orders(bundle(_lab("crp", "1988-5", modifierExtension=modifier)), None, vs)
    assert found.labs == ()


def test_a_qualitative_crp_or_pain_score_is_no_marker_draft(vs: ValueSets) -> None:
    # 11039-5 is in the value sets to be ignored; a pain score is no lab order
    found = map_orders(bundle(_lab("q", "11039-5"), _lab("p", "72514-3")), None, vs)
    assert found.labs == ()


def test_a_lab_draft_whose_status_is_no_code_is_not_read_as_ordered(vs: ValueSets) -> None:
    # a re-check: "status": 5 counted as "a CRP is already in this order set"
    assert map_orders(bundle(_lab("crp", "1988-5", status=5)), None, vs).labs == ()
