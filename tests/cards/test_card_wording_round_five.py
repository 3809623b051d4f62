"""Card wording an outside review found contradicting itself or the record (synthetic
patients, spine MRI/CT repeat-imaging advice): each finding held by the words the card must
and must not say, built from hand-made domain objects."""

from __future__ import annotations

import msgspec
import pytest

from cds_service.auditing import assessment_record
from cds_service.cards.words import signed_pct
from cds_service.engine import Assessment, NotApplicableReason, Recommendation
from cds_service.engine.routine import spine_surgery
from fhir_mappers.medications import map_antibiotic_orders
from fhir_mappers.model import ConditionCategory, ConditionFact, Modality, SpineSurgery
from fhir_mappers.valuesets import build_value_sets
from tests.cards.test_review_wording import AB, card, medication_order
from tests.engine.builders import (
    CPT,
    T0,
    antibiotic,
    condition,
    crp,
    day,
    esr,
    improving,
    neuro,
    nvo,
    order,
    pain,
    run,
)
from tests.engine.test_after_spine_surgery import decide as decide_after_surgery
from tests.engine.test_after_spine_surgery import procedure as surgery
from tests.engine.test_not_routine import draft


def episode_sentence(detail: str) -> str:
    return next(line for line in detail.splitlines() if line.startswith("Vertebral"))


# --- An undated antibiotic order is on record: never "no antibiotic order found" ---------


def test_an_undated_antibiotic_order_is_said_as_no_dated_order() -> None:
    # a05: the cefazolin order has neither boundsPeriod.start nor authoredOn, so it cannot
    # be placed and T0 is the episode date; the card names the order below as not counted
    _, issues = map_antibiotic_orders([medication_order("m1", authoredOn=None)], AB)
    detail = card(run(improving(), issues=issues))["detail"]
    line = episode_sentence(detail)
    assert "no antibiotic order found" not in line
    assert "(no dated antibiotic order; taken as the treatment start)" in line
    assert "- Cefazolin order without a start date: not counted as treatment." in detail


def test_an_order_that_does_not_count_for_another_reason_is_not_called_undated() -> None:
    _, issues = map_antibiotic_orders([medication_order("m1", status="draft")], AB)
    line = episode_sentence(card(run(improving(), issues=issues))["detail"])
    assert "(no antibiotic order counted as treatment; taken as the treatment start)" in line


def test_an_order_dated_from_its_order_date_is_counted_and_gives_the_start() -> None:
    elements = {"dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "x"}}}}]}
    starts, issues = map_antibiotic_orders([medication_order("m1", **elements)], AB)
    line = episode_sentence(card(run(improving(), antibiotics=starts, issues=issues))["detail"])
    assert "treatment started 2024-03-04 (first antibiotic order: cefazolin)" in line


def test_the_episode_line_follows_the_mappers_code_not_its_words() -> None:
    # rewording an audit reason or a plain line must not change the T0 line, the machine
    # result's antibioticsNotCounted or the trend app
    _, (issue,) = map_antibiotic_orders([medication_order("m1", authoredOn=None)], AB)
    reworded = msgspec.structs.replace(issue, reason="no start", plain="cefazolin, no date")
    said = card(run(improving(), issues=[reworded]))
    assert "(no dated antibiotic order; taken as" in episode_sentence(said["detail"])
    assert "- Cefazolin, no date: not counted as treatment." in said["detail"]
    result = said["extension"]["spine-cds-assessment"]
    assert result["episode"]["antibioticsNotCounted"] == "undated"


def test_without_any_order_on_record_none_was_found() -> None:
    line = episode_sentence(card(run(improving()))["detail"])
    assert "(no antibiotic order found; taken as the treatment start)" in line


# --- An undated diagnosis with a dated antibiotic order: the start is on record ---------


def test_an_undated_diagnosis_names_the_antibiotic_order_it_cannot_be_tied_to() -> None:
    # m02: no onset and no recordedDate on the diagnosis; cefazolin from 2024-03-04
    a = run(improving(), [nvo(onset=None)], antibiotics=[antibiotic(0, "cefazolin")])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # the decision is unchanged
    assert a.episode is not None and a.episode.t0 is None
    c = card(a)
    detail = c["detail"]
    assert "treatment start not recorded" not in detail
    assert "treatment start is unknown" not in detail
    assert (
        "Vertebral osteomyelitis (spondylodiscitis), diagnosis undated: the cefazolin order "
        "started 2024-03-04 is on record, but without a diagnosis date it cannot be tied to "
        "this infection as its treatment start." in detail
    )
    assert (
        "The infection diagnosis has no onset or recorded date, so the cefazolin order "
        "started 2024-03-04 cannot be tied to it as its treatment start" in detail
    )
    assert "treatment start unknown" not in c["summary"]
    assert c["summary"].endswith("antibiotic order not tied to the infection (diagnosis undated)")


def test_an_undated_diagnosis_without_an_order_keeps_its_words() -> None:
    c = card(run(improving(), [nvo(onset=None)]))
    line = "Vertebral osteomyelitis (spondylodiscitis); treatment start not recorded."
    assert line in c["detail"]
    assert c["summary"].endswith("treatment start unknown (diagnosis undated)")


# --- Several CRPs whose latest is the baseline: every one shown, never "(one value)" ----


def test_an_early_rise_to_the_baseline_shows_both_values_and_the_change() -> None:
    # d02: CRP 120 on day 0, then 140 on day 2 (the highest near T0, so the baseline and
    # the latest); order on day 3
    data = [crp(0, 120), crp(2, 140), pain(0, 8), pain(2, 7)]
    a = run(data, antibiotics=[antibiotic(0, "cefazolin")], order_day=3)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # the decision is unchanged
    detail = card(a)["detail"]
    assert "(one value)" not in detail
    assert (
        "CRP (mg/L): 120 (day 0) \u2192 140 (day 2), +16.7%; the latest is the baseline (the "
        "highest within 7 days of treatment start); latest CRP 1 day ago." in detail
    )
    assert "No CRP after the baseline (day 2): a later value is needed to see a trend." in detail


def test_a_single_crp_is_still_one_value() -> None:
    data = [crp(2, 140), pain(0, 8), pain(2, 7)]
    detail = card(run(data, antibiotics=[antibiotic(0)], order_day=3))["detail"]
    assert "CRP 140 mg/L (one value), 1 day ago." in detail


# --- Hardware and fusion named only after an operation that may leave them -------------


def surgery_line(a: Assessment, named: str) -> str:
    detail = card(a)["detail"]
    return next(line for line in detail.splitlines() if named in line)


@pytest.mark.parametrize(
    ("code", "named", "modality", "said"),
    [
        (
            "63267",
            "Laminectomy for an epidural collection recorded, day 10",
            Modality.MRI,
            "if the question is the operated level rather than the infection, this card does "
            "not answer it.",
        ),
        (
            "22015",
            "Spinal abscess drainage recorded, day 10",
            Modality.CT,
            "a CT after spine surgery may assess the operated level, not only the infection; "
            "this card does not advise against it.",
        ),
        (
            "63090",
            "Vertebral corpectomy recorded, day 10",
            Modality.MRI,
            "if the question is the operated level rather than the infection",
        ),
    ],
    ids=["laminectomy-mri", "drainage-ct", "corpectomy-mri"],
)
def test_a_debridement_is_named_without_hardware_or_fusion(
    code: str, named: str, modality: Modality, said: str
) -> None:
    # s05: an epidural abscess drained by laminectomy on day 2, no fusion and no hardware
    line = surgery_line(decide_after_surgery([surgery(10, code=code)], modality), named)
    assert said in line
    assert "hardware" not in line and "fusion" not in line


@pytest.mark.parametrize("modality", [Modality.MRI, Modality.CT])
def test_a_fusion_still_names_the_hardware_and_the_fusion(modality: Modality) -> None:
    line = surgery_line(decide_after_surgery([surgery(10)], modality), "Lumbar fusion recorded")
    assert "hardware" in line and "fusion" in line


def test_a_debridement_then_a_fusion_names_the_hardware() -> None:
    a = decide_after_surgery([surgery(10, code="63267"), surgery(20)], Modality.MRI)
    assert "a CT may answer it" in surgery_line(a, "Laminectomy")


def test_a_sites_operation_without_a_kind_keeps_the_cautious_words() -> None:
    site = {
        "valueSet": "procedures",
        "source": "a site's list",
        "entries": [
            {"system": CPT, "code": "99999", "name": "spinal operation", "verified": False}
        ],
    }
    (entry,) = build_value_sets([("site.json", site)]).procedures.values()
    assert entry.kind is None
    found = (SpineSurgery("Procedure/x", entry.name, day(10), kind=entry.kind),)
    remark = spine_surgery([order(29)], found, T0, T0)
    assert remark is not None and remark.data["hardware"] is True
    site["entries"][0]["kind"] = "laminoplasty"
    with pytest.raises(ValueError, match="'kind' must be one of debridement, fusion"):
        build_value_sets([("site.json", site)])


# --- A red flag and an order that misses the level: the summary says so too --------------

PLATEAU = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(14, 6), pain(28, 6)]


def thoracic_nvo() -> ConditionFact:
    return condition("M46.24", ConditionCategory.NVO, region="thoracic")


def test_a_summary_with_a_red_flag_names_the_level_the_order_misses() -> None:
    # l03: thoracic infection, CRP plateau, a lumbar MRI ordered
    a = run(PLATEAU, [thoracic_nvo()])
    assert a.recommendation is Recommendation.SUPPORT  # the decision is unchanged
    c = card(a)
    assert "reasonable" not in c["summary"]
    assert c["summary"] == (
        "CRP fell less than 25%: 120\u2192105 mg/L (\u221212.5%) by day 28; the lumbar MRI "
        "ordered misses the thoracic level: thoracic or whole-spine MRI"
    )
    assert "the lumbar MRI ordered will not show it" in c["detail"]


def test_a_complication_with_an_order_that_misses_the_level_says_so_in_the_summary() -> None:
    abscess = condition("G06.1", ConditionCategory.COMPLICATION, onset=12, name="abscess")
    summary = card(run(improving(), [thoracic_nvo(), abscess]))["summary"]
    # the complication card's "examine neurology now" is kept beside the level it misses
    assert summary == (
        "Abscess recorded day 12; the lumbar MRI ordered misses the thoracic level: thoracic "
        "or whole-spine MRI; examine neurology now"
    )
    assert "MRI reasonable" not in summary and len(summary) <= 140


def test_an_order_of_the_infected_level_beside_one_that_misses_it_answers_the_card() -> None:
    orders = [
        order(29),
        order(29, ref="ServiceRequest/sr2", code="72157", region="thoracic"),
    ]
    summary = card(run(PLATEAU, [thoracic_nvo()], orders=orders))["summary"]
    assert summary.endswith("repeat spine MRI reasonable")


# --- A percentage never rounds onto the threshold its sentence states -------------------


def test_a_fall_just_under_the_threshold_is_not_shown_as_the_threshold() -> None:
    # b07: CRP 100 -> 75.01 mg/L by day 28, a fall of 24.99%: less than 25%, a plateau
    data = [crp(0, 100), crp(28, 75.01), pain(0, 7), pain(28, 5)]
    c = card(run(data))
    assert c["summary"].startswith("CRP fell less than 25%"), c["summary"]
    assert "(\u221224.99%)" in c["summary"]
    assert "\u221225%" not in c["summary"] + c["detail"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-24.99, "\u221224.99%"),
        (-24.999999, "\u221224.99%"),  # cut towards itself, never up to 25
        (-25.0, "\u221225%"),
        (-25.04, "\u221225.04%"),
        (20.04, "+20.04%"),
        (-49.96, "\u221249.96%"),
        (-87.3, "\u221287.3%"),
        (-12.46, "\u221212.5%"),  # no whole number reached: one decimal as before
        (-57.04, "\u221257%"),  # a whole number no threshold sits on: no hundredths
        (-40.01, "\u221240%"),
        (-74.99, "\u221275%"),
        (58.333, "+58.3%"),
        (0.01, "0%"),
    ],
)
def test_a_percentage_keeps_a_second_decimal_only_next_to_a_threshold(
    value: float, shown: str
) -> None:
    assert signed_pct(value) == shown


# --- Not routine follow-up: "the red flag above" only when a red flag card is shown -----


def test_a_free_text_reason_without_a_red_flag_is_audited_without_a_red_flag() -> None:
    # an Epic order with reasonCode [{"text": "Vertebral osteomyelitis follow-up"}]: no card
    order_ = draft(reasonCode=[{"text": "Vertebral osteomyelitis follow-up"}])
    a = run(improving(), [nvo(ref="Condition/episode")], orders=[order_])
    assert a.not_applicable_reason is NotApplicableReason.NOT_ROUTINE  # kept
    (note,) = assessment_record(a)["notes"]
    assert "red flag" not in note["message"]
    assert note["message"] == (
        "Ordered for \u201cVertebral osteomyelitis follow-up\u201d: not taken as routine "
        "follow-up of the infection (a stated reason the service cannot read as the "
        "infection or spinal pain)."
    )


def test_with_a_red_flag_the_note_says_it_stands_on_its_own() -> None:
    order_ = draft(priority="stat")
    a = run(improving(), [nvo(ref="Condition/episode"), neuro(onset=20)], orders=[order_])
    detail = card(a)["detail"]
    assert "Ordered STAT: not taken as routine follow-up of the infection; the red flag " in (
        detail
    )


# --- Removing one of several spine orders names the one removed --------------------------


def test_removing_one_of_two_spine_orders_names_it() -> None:
    # o02: thoracic infection, improving; a cervical and a thoracic MRI signed together:
    # advise-against covers the thoracic one only
    orders = [
        order(29, ref="ServiceRequest/cervical", code="72156", region="cervical"),
        order(29, ref="ServiceRequest/thoracic", code="72157", region="thoracic"),
    ]
    (suggestion,) = card(run(improving(), [thoracic_nvo()], orders=orders))["suggestions"]
    assert suggestion["label"] == "Remove the thoracic spine MRI order"
    (action,) = suggestion["actions"]
    assert action["resourceId"] == "ServiceRequest/thoracic"
    assert action["description"] == "Remove the draft thoracic spine MRI order"


def test_removing_the_one_spine_order_keeps_its_short_label() -> None:
    (suggestion,) = card(run(improving()))["suggestions"]
    assert suggestion["label"] == "Remove the spine MRI order"


# --- An ESR already on record and recent: only a CRP is asked for ------------------------


def test_with_a_recent_esr_and_no_crp_the_card_asks_for_a_crp_only() -> None:
    # e01: no CRP at all; ESR 90, 60, 30 (the latest the day before the order)
    data = [esr(0, 90), esr(14, 60), esr(28, 30), pain(0, 7), pain(14, 4), pain(28, 2)]
    c = card(run(data))
    assert c["summary"].endswith("; order a CRP"), c["summary"]
    assert "CRP/ESR" not in c["summary"]
    (suggestion,) = c["suggestions"]
    assert suggestion["label"] == "Order a CRP"
    codes = [x["resource"]["code"]["coding"][0]["code"] for x in suggestion["actions"]]
    assert codes == ["1988-5"]


def test_with_an_old_esr_and_no_crp_both_are_asked_for() -> None:
    data = [esr(0, 90), esr(14, 60), pain(0, 7), pain(14, 4), pain(28, 2)]
    c = card(run(data))
    assert c["summary"].endswith("; order CRP/ESR"), c["summary"]
    assert [s["label"] for s in c["suggestions"]] == ["Order CRP and ESR"]
