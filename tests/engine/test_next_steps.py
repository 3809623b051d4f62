"""What a card asks for beside its recommendation is judged once, in the engine
(``engine/next_steps.py`` and the key figures): the CRP and ESR to order or a CRP alone,
what an insufficient-data summary asks of the markers, MRI preferred to the CT ordered,
the emergency MRI now and the draft to make STAT. The cards only word them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.engine.assessment import NO_ORDER, ORDERS_NOT_COUNTED, UNDATED_ORDERS
from cds_service.engine.next_steps import ORDER_CRP, ORDER_CRP_ESR, REPEAT_CRP_ESR
from fhir_mappers.model import (
    ORDER_NOT_COUNTED,
    ORDER_UNDATED,
    ConditionCategory,
    DataIssue,
    ImagingOrder,
    MeasurementKind,
    Modality,
    PatientData,
)
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import (
    complication,
    condition,
    crp,
    esr,
    improving,
    mimic,
    neuro,
    nvo,
    order,
    pain,
    run,
)
from tests.engine.test_prior_imaging import VS, decide, study

CRP, ESR = MeasurementKind.CRP, MeasurementKind.ESR
PAIN = [pain(0, 7), pain(14, 5), pain(25, 3)]
PLATEAU = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]
URGENT = ([*improving()[:2]], [nvo(), neuro(onset=15)])


def asked(a: Assessment) -> tuple[tuple[MeasurementKind, ...], str | None]:
    return a.next_steps.marker_orders, a.next_steps.markers_asked


# --- the CRP and ESR a card asks for -----------------------------------------------------


@pytest.mark.parametrize(
    ("measurements", "esr_recent", "expected"),
    [
        # no CRP counted, an ESR of 4 days before the order: a CRP alone
        ([esr(25, 60), *PAIN], True, ((CRP,), ORDER_CRP)),
        # no CRP counted, the ESR 19 days old: both
        ([esr(10, 60), *PAIN], False, ((CRP, ESR), ORDER_CRP_ESR)),
        # no CRP and no ESR: both
        (PAIN, False, ((CRP, ESR), ORDER_CRP_ESR)),
        # the latest CRP 15 days old: repeat both
        ([crp(0, 100), crp(14, 40), *PAIN], False, ((CRP, ESR), REPEAT_CRP_ESR)),
    ],
    ids=["recent-esr", "old-esr", "nothing", "old-crp"],
)
def test_an_insufficient_card_asks_for_the_markers_it_lacks(
    measurements: list[object], esr_recent: bool, expected: object
) -> None:
    a = run(measurements, order_day=29)  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert a.figures.esr_recent is esr_recent
    assert asked(a) == expected


def test_a_discordant_recent_pair_offers_both_orders_and_the_summary_asks_nothing() -> None:
    # 46 then 30 mg/L 11 hours apart: the remark asks for the repeat in its own words
    pair = [crp(0, 100), crp(28, 46, hour=8), crp(28, 30, hour=19), *PAIN]
    a = run(pair, order_day=29)
    assert "crp-discordant" in {r.code for r in a.missing} and a.figures.crp_recent
    assert asked(a) == ((CRP, ESR), None)


def test_no_treatment_start_asks_for_no_marker() -> None:
    # what is missing is a date for the infection, not a CRP
    a = run([crp(0, 100), *PAIN], [nvo(onset=None)])
    assert "episode-start-unknown" in {r.code for r in a.missing}
    assert asked(a) == ((), None)


def test_an_improving_advise_against_card_asks_for_no_marker() -> None:
    a = run(improving())
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert asked(a) == ((), None)


def test_an_early_rise_is_no_advice_against_and_asks_for_a_crp() -> None:
    # 100 -> 50 -> 70 mg/L on day 14: too early to count as a rise, no favourable
    # response either (c12 t18): insufficient data, a repeat CRP offered
    a = run([crp(0, 100), crp(7, 50), crp(14, 70), pain(0, 6), pain(14, 5)], order_day=14)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "crp-early-rise" in {r.code for r in a.missing}
    assert a.figures.crp_rise_too_early and a.figures.crp_up_from_lowest_pct == 40
    assert asked(a) == ((CRP,), None)


def test_an_early_rise_from_zero_is_no_advice_against_either() -> None:
    # 100 -> 0 -> 50 mg/L by day 14: no percentage is above 0, the rise is still one
    a = run([crp(0, 100), crp(7, 0), crp(14, 50), pain(0, 6), pain(14, 5)], order_day=14)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (rebound,) = [r for r in a.missing if r.code == "crp-early-rise"]
    assert "risePct" not in rebound.data
    assert asked(a) == ((CRP,), None)


def test_an_advise_against_card_with_a_rising_esr_asks_for_both() -> None:
    rising = [crp(0, 142), crp(14, 61), crp(28, 18), esr(0, 40), esr(28, 50), *PAIN]
    a = run(rising)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "esr-rising" in {n.code for n in a.notes}
    assert asked(a) == ((CRP, ESR), None)


def test_a_support_card_asks_for_no_marker() -> None:
    a = run(PLATEAU)
    assert a.recommendation is Recommendation.SUPPORT
    assert asked(a) == ((), None)


# --- the CRP figures the cards read --------------------------------------------------------


@pytest.mark.parametrize(
    ("measurements", "order_day", "up", "early"),
    [
        ([crp(0, 100), crp(10, 40), crp(21, 47), pain(0, 7), pain(21, 3)], 22, 17.5, False),
        ([crp(0, 100), crp(5, 40), crp(10, 60), pain(0, 7), pain(10, 3)], 12, 50.0, True),
        ([crp(0, 100), crp(10, 40), crp(21, 20), pain(0, 7), pain(21, 3)], 22, None, False),
    ],
    ids=["small-rise", "early-rise", "steady-fall"],
)
def test_the_rise_from_the_lowest_crp_is_judged_once(
    measurements: list[object], order_day: int, up: float | None, early: bool
) -> None:
    a = run(measurements, order_day=order_day)  # type: ignore[arg-type]
    assert a.figures.crp_up_from_lowest_pct == up
    assert a.figures.crp_rise_too_early is early


def test_a_rise_from_a_lowest_crp_of_0_has_no_percentage_and_the_card_renders() -> None:
    # no percentage is above 0 (the cards once divided by it)
    a = run([crp(0, 100), crp(5, 0), crp(10, 50), pain(0, 8), pain(10, 5)], order_day=11)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # a rise, however large
    assert a.figures.crp_up_from_lowest_pct is None and a.figures.crp_rise_too_early
    summary = render_response(a, CardContext(patient_id="p1"))["cards"][0]["summary"]
    assert summary.endswith("CRP up since day 5, repeat CRP"), summary


@pytest.mark.parametrize(("first_day", "in_window"), [(0, True), (7, True), (10, False)])
def test_the_baseline_is_within_its_window_of_treatment_start(
    first_day: int, in_window: bool
) -> None:
    a = run([crp(first_day, 100), crp(28, 18), *PAIN])
    assert a.figures.crp_baseline is not None
    assert a.figures.crp_baseline_in_window is in_window


# --- MRI preferred to the CT ordered -------------------------------------------------------


def ct() -> ImagingOrder:
    return replace(order(29, modality=Modality.CT, code="72132"), contrast="with")


def test_mri_is_preferred_to_a_ct_for_a_soft_tissue_question() -> None:
    a = run(PLATEAU, orders=[ct()])
    assert a.recommendation is Recommendation.SUPPORT
    assert a.next_steps.mri_preferred_to_ct


def test_mri_is_not_preferred_to_an_mri_nor_to_a_ct_without_a_red_flag() -> None:
    assert not run(PLATEAU).next_steps.mri_preferred_to_ct
    calm = run(improving(), orders=[ct()])
    assert calm.recommendation is Recommendation.ADVISE_AGAINST
    assert not calm.next_steps.mri_preferred_to_ct


def test_mri_is_not_preferred_to_a_ct_for_a_mechanical_question() -> None:
    collapse = condition("M48.56XA", ConditionCategory.MECHANICAL, onset=20, name="collapse")
    a = run(improving(), [nvo(), collapse], orders=[ct()])
    assert [f.rule_id for f in a.red_flags] == ["mechanical"]
    assert not a.next_steps.mri_preferred_to_ct
    # an abscess beside it is a soft-tissue question again
    both = run(improving(), [nvo(), collapse, complication(onset=20)], orders=[ct()])
    assert both.next_steps.mri_preferred_to_ct


# --- the emergency MRI and the draft made STAT ---------------------------------------------


def test_an_urgent_card_makes_a_routine_lumbar_mri_stat_and_extends_it() -> None:
    a = run(*URGENT, order_day=16)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.next_steps.emergency_mri
    assert (a.next_steps.stat_orders, a.next_steps.stat_extended) == (("ServiceRequest/sr1",), True)


def test_a_routine_whole_spine_mri_is_made_stat_as_it_is() -> None:
    a = run(*URGENT, orders=[replace(order(16), region="spine")])
    assert (a.next_steps.stat_orders, a.next_steps.stat_extended) == (
        ("ServiceRequest/sr1",),
        False,
    )


@pytest.mark.parametrize("priority", ["stat", "asap"])
def test_an_order_already_for_now_is_not_made_stat(priority: str) -> None:
    a = run(*URGENT, orders=[replace(order(16), priority=priority)])
    assert a.next_steps.emergency_mri
    assert a.next_steps.stat_orders == () and not a.next_steps.stat_extended


def test_a_ct_for_a_new_deficit_is_not_made_stat() -> None:
    # it cannot answer the question: the card replaces it instead
    a = run(*URGENT, orders=[order(16, modality=Modality.CT, code="72131")])
    assert a.study_gaps == {"ServiceRequest/sr1": "modality"}
    assert a.next_steps.emergency_mri and a.next_steps.stat_orders == ()


def test_a_support_card_asks_for_no_emergency_mri() -> None:
    a = run(PLATEAU)
    assert not a.next_steps.emergency_mri and a.next_steps.stat_orders == ()


def test_a_deficit_seen_on_a_study_of_the_last_days_asks_for_no_emergency_mri() -> None:
    a = decide([study(26)], 20, 27)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert not a.next_steps.emergency_mri and a.next_steps.stat_orders == ()


def test_a_deficit_seen_beside_a_red_flag_not_seen_asks_for_no_emergency_mri() -> None:
    # the CRP plateau was not seen on the study: the card stays urgent for the deficit,
    # with a new MRI for it only if the exam changed
    studies, _ = map_prior_imaging([study(26)], VS)
    data = PatientData(
        conditions=(nvo(), neuro(onset=20)), measurements=tuple(PLATEAU), prior_studies=studies
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    (seen,) = [n for n in a.notes if n.code == "flag-seen-on-study"]
    assert seen.data["flagsSeen"] == ["neuro"] and not seen.data["allRedFlags"]
    assert not a.next_steps.emergency_mri and a.next_steps.stat_orders == ()


# --- the draft changed into the study that answers -----------------------------------------


def test_a_ct_for_a_new_deficit_is_the_draft_replaced() -> None:
    a = run(*URGENT, orders=[order(16, modality=Modality.CT, code="72131")])
    assert a.next_steps.replaced_order == "ServiceRequest/sr1"


def test_an_mri_without_gadolinium_for_a_plateau_is_the_draft_replaced() -> None:
    plain = replace(order(29, code="72148"), contrast="without")
    a = run(PLATEAU, orders=[plain])
    assert a.study_gaps == {"ServiceRequest/sr1": "contrast"}
    assert a.next_steps.replaced_order == "ServiceRequest/sr1"


def test_an_order_that_answers_is_not_replaced() -> None:
    assert run(PLATEAU).next_steps.replaced_order is None
    assert run(*URGENT, order_day=16).next_steps.replaced_order is None  # made STAT instead


def test_an_mri_for_a_mechanical_question_alone_is_not_replaced() -> None:
    collapse = condition("M48.56XA", ConditionCategory.MECHANICAL, onset=20, name="collapse")
    a = run(improving(), [nvo(), collapse])
    assert a.study_gaps == {"ServiceRequest/sr1": "mri-for-mechanical"}
    assert a.next_steps.replaced_order is None
    # one that misses the level neither: radiographs and CT answer, no study replaces it
    missed = run(improving(), [nvo(region="cervical"), collapse])
    assert missed.study_gaps == {"ServiceRequest/sr1": "level"}
    assert missed.answering_study is None and missed.next_steps.replaced_order is None


def test_no_draft_is_replaced_when_every_red_flag_was_seen_on_a_recent_study() -> None:
    a = decide([study(26)], 20, 27)
    assert a.study_gaps == {"ServiceRequest/sr1": "seen-on-study"}
    assert a.next_steps.replaced_order is None


# --- the drafts a support card leaves unrated ------------------------------------------------


def test_an_mri_for_a_mechanical_question_alone_is_left_unrated() -> None:
    collapse = condition("M48.56XA", ConditionCategory.MECHANICAL, onset=20, name="collapse")
    a = run(improving(), [nvo(), collapse])
    assert a.next_steps.unrated_orders == {"ServiceRequest/sr1"}
    # an MRI that answers a soft-tissue question is rated
    assert run(PLATEAU).next_steps.unrated_orders == frozenset()


def test_a_study_repeating_one_of_the_last_days_is_left_unrated() -> None:
    a = decide([study(26)], 20, 27)
    assert a.next_steps.unrated_orders == {"ServiceRequest/sr1"}


def test_an_mri_without_gadolinium_is_left_unrated_only_beside_the_emergency_mri() -> None:
    plain = replace(order(16, code="72148"), contrast="without")
    urgent = run(*URGENT, orders=[plain])
    assert urgent.next_steps.emergency_mri
    assert urgent.study_gaps == {"ServiceRequest/sr1": "contrast"}
    assert urgent.next_steps.unrated_orders == {"ServiceRequest/sr1"}
    # for a plateau it falls short: rated not appropriate, and replaced
    plateau = run(PLATEAU, orders=[replace(order(29, code="72148"), contrast="without")])
    assert plateau.next_steps.unrated_orders == frozenset()
    # a CT without contrast for the emergency falls short too (MRI is the study)
    ct_plain = replace(order(16, modality=Modality.CT, code="72131"), contrast="without")
    assert run(*URGENT, orders=[ct_plain]).next_steps.unrated_orders == frozenset()


def test_a_ct_with_contrast_is_left_unrated_where_mri_is_preferred_to_it() -> None:
    """An outside review: a contrast CT for an abscess or for markers not responding was
    rated appropriate beside "MRI with gadolinium preferred to the CT ordered"."""
    for a in (
        run(PLATEAU, orders=[ct()]),
        run(improving(), [nvo(), complication(onset=20)], orders=[ct()]),
    ):
        assert a.next_steps.mri_preferred_to_ct
        assert a.next_steps.unrated_orders == {"ServiceRequest/sr1"}
    # where a CT answers as well (a mechanical question alone), it is rated
    collapse = condition("M48.56XA", ConditionCategory.MECHANICAL, onset=20, name="collapse")
    assert run(improving(), [nvo(), collapse], orders=[ct()]).next_steps.unrated_orders == (
        frozenset()
    )


# --- the evidence a card cites ----------------------------------------------------------------


def test_a_card_without_a_red_flag_cites_its_recommendation() -> None:
    assert run(improving()).next_steps.evidence == ("advise-against",)


def test_a_plateau_cites_the_markers_rule_and_a_rise_before_day_28_what_it_suggests() -> None:
    assert run(PLATEAU).next_steps.evidence == ("markers-not-responding",)
    rise = [crp(0, 150), crp(10, 40), crp(20, 90), pain(0, 7), pain(20, 5)]
    early = run(rise, order_day=21)
    assert [f.rule_id for f in early.red_flags] == ["markers-not-responding"]
    assert early.next_steps.evidence == ("markers-rise-early",)
    # the same rise read on day 30 is past the plateau day: the four-week rule
    late = [crp(0, 150), crp(14, 40), crp(30, 90), pain(0, 7), pain(30, 5)]
    assert run(late, order_day=31).next_steps.evidence == ("markers-not-responding",)


def test_a_mimic_beside_a_confirmed_infection_cites_the_other_condition() -> None:
    a = run(improving(), [nvo(), mimic()])
    assert [f.rule_id for f in a.red_flags] == ["uncertain-dx"]
    assert a.next_steps.evidence == ("uncertain-dx-mimic",)
    unconfirmed = run(improving(), [nvo(verification="provisional")])
    assert unconfirmed.next_steps.evidence == ("uncertain-dx",)


# --- why no antibiotic order gave the treatment start ---------------------------------------


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), NO_ORDER),
        ((ORDER_UNDATED,), UNDATED_ORDERS),
        ((ORDER_UNDATED, ORDER_UNDATED), UNDATED_ORDERS),
        ((ORDER_NOT_COUNTED,), ORDERS_NOT_COUNTED),
        ((ORDER_UNDATED, ORDER_NOT_COUNTED), ORDERS_NOT_COUNTED),
    ],
)
def test_why_no_antibiotic_order_gave_the_treatment_start(
    codes: tuple[str, ...], expected: str
) -> None:
    issues = [
        DataIssue(f"MedicationRequest/m{i}", "left out", code=code) for i, code in enumerate(codes)
    ]
    assert run(improving(), issues=issues).next_steps.antibiotics_not_counted == expected


# --- the removal, recommended or only offered -------------------------------------------


def test_the_removal_is_only_offered_beside_markers_that_predicted_failure() -> None:
    # clinical-rules.md, "Slow fall": at the Yoon 2010 levels the card does not reassure;
    # an outside clinician read "remove the MRI" beside "predicted failure" as mixed
    pain_falling = [pain(0, 7), pain(28, 3)]
    high = run([crp(0, 200), crp(28, 60), esr(0, 100), esr(28, 70), *pain_falling])
    assert high.recommendation is Recommendation.ADVISE_AGAINST
    assert not high.next_steps.removal_recommended
    low = run([crp(0, 200), crp(28, 20), esr(0, 100), esr(28, 30), *pain_falling])
    assert low.next_steps.removal_recommended
    shown = render_response(high, CardContext(patient_id="p1"))["cards"][0]
    assert [(s["label"], s["isRecommended"]) for s in shown["suggestions"]] == [
        ("Remove the spine MRI order", False),
        ("Order CRP and ESR", True),
    ]
