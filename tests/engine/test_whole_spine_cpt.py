"""Whole spine in CPT (clinical-rules.md, "Imaging", 2026-12-06): cervical, thoracic and
lumbar studies of one modality signed together (72156 + 72157 + 72158, or the without /
with variants) are one whole-spine study before the level rule."""

from __future__ import annotations

from dataclasses import replace

from cds_service.cards import CardContext, render_response
from cds_service.engine import NotApplicableReason, Recommendation
from fhir_mappers.model import ImagingOrder, Modality
from tests.engine.builders import PATIENT, improving, nvo, order, run

THIRDS = (("cervical", "72156"), ("thoracic", "72157"), ("lumbar", "72158"))


def thirds(*regions: str, modality: Modality = Modality.MRI) -> list[ImagingOrder]:
    return [
        order(29, ref=f"ServiceRequest/{region}", region=region, code=code, modality=modality)
        for region, code in THIRDS
        if region in regions
    ]


def test_the_three_thirds_signed_together_are_one_whole_spine_study() -> None:
    a = run(improving(), [nvo(region="thoracic")], orders=thirds("cervical", "thoracic", "lumbar"))
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert {o.region for o in a.orders} == {"spine"}
    assert set(a.covering) == {
        "ServiceRequest/cervical",
        "ServiceRequest/thoracic",
        "ServiceRequest/lumbar",
    }
    card = render_response(a, CardContext(patient_id=PATIENT))["cards"][0]
    deletes = [x["resourceId"] for x in card["suggestions"][0]["actions"]]
    assert sorted(deletes) == sorted(a.covering)  # the one study is removed whole
    assert "will not show" not in card["detail"]


def test_two_thirds_are_not_a_whole_spine_study() -> None:
    a = run(improving(), [nvo(region="thoracic")], orders=thirds("cervical", "lumbar"))
    assert a.not_applicable_reason is NotApplicableReason.ORDER_OUTSIDE_INFECTION
    assert {o.region for o in a.orders} == {"cervical", "lumbar"}


def test_the_thirds_must_share_a_modality() -> None:
    mixed = [
        *thirds("cervical", "lumbar"),
        replace(
            order(29, ref="ServiceRequest/thoracic-ct", region="thoracic", code="72128"),
            modality=Modality.CT,
        ),
    ]
    a = run(improving(), [nvo(region="thoracic")], orders=mixed)
    assert {o.region for o in a.orders if o.modality is Modality.MRI} == {"cervical", "lumbar"}
    assert a.covering == ("ServiceRequest/thoracic-ct",)


def test_a_combined_study_images_each_of_its_parts() -> None:
    thoracolumbar = order(29, region="thoracolumbar", code="448641007")
    for infected, covered in (
        ("thoracic", True),
        ("lumbar", True),
        ("sacral", True),
        ("cervical", False),
    ):
        a = run(improving(), [nvo(region=infected)], orders=[thoracolumbar])
        assert (a.recommendation is Recommendation.ADVISE_AGAINST) is covered, infected
    lumbosacral = order(29, region="lumbosacral", code="433140006")
    a = run(improving(), [nvo(region="thoracic")], orders=[lumbosacral])
    assert a.not_applicable_reason is NotApplicableReason.ORDER_OUTSIDE_INFECTION


def test_a_cervical_and_a_thoracolumbar_study_are_one_whole_spine_study() -> None:
    orders = [
        order(29, ref="ServiceRequest/c", region="cervical", code="72156"),
        order(29, ref="ServiceRequest/tl", region="thoracolumbar", code="448641007"),
    ]
    a = run(improving(), [nvo(region="thoracic")], orders=orders)
    assert {o.region for o in a.orders} == {"spine"}
