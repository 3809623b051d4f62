"""Card wording an outside clinical reviewer found contradicting clinical-rules.md
(117 synthetic patients, 2026-12): each finding held by the words the card must and must
not say, built from hand-made domain objects."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.cards.left_out import left_out
from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation
from cds_service.engine.assessment import Remark
from fhir_mappers.antibiotics import build_antibiotics
from fhir_mappers.medications import map_antibiotic_orders
from fhir_mappers.model import (
    ORDER_NOT_COUNTED,
    ConditionCategory,
    ConditionFact,
    DataIssue,
    ReportedValue,
)
from tests.engine.builders import (
    T0,
    antibiotic,
    condition,
    crp,
    day,
    improving,
    mimic,
    nvo,
    pain,
    run,
)


def card(a: Assessment) -> dict[str, Any]:
    ctx = CardContext(patient_id="p1", encounter_id=None, override_reasons=load_override_reasons())
    cards = render_response(a, ctx)["cards"]
    assert len(cards) == 1
    card: dict[str, Any] = cards[0]
    return card


# --- A. An antibiotic order outside T0's window is named, never "none found" -------------


def test_an_order_after_the_window_is_named_with_its_start() -> None:
    # onset day 0 (2024-03-04); ceftriaxone from day 29: one day past the 28-day window
    a = run(improving(), antibiotics=[antibiotic(29, "ceftriaxone")])
    assert a.episode is not None and a.episode.t0 is not None
    assert a.episode.t0.day.isoformat() == "2024-03-04"  # the decision is unchanged
    detail = card(a)["detail"]
    assert "no antibiotic order found" not in detail
    assert (
        "recorded from 2024-03-04 (no antibiotic order started from 14 days before to 28 "
        "days after that date; taken as the treatment start)" in detail
    )
    assert "Outside that window: ceftriaxone order started 2024-04-02 (29 days after)." in detail
    outside = a.to_dict()["episode"]["antibioticsOutsideWindow"]
    assert [(o["name"], o["start"]) for o in outside] == [("ceftriaxone", "2024-04-02")]


def test_an_order_before_the_window_is_named_with_its_start() -> None:
    detail = card(run(improving(), antibiotics=[antibiotic(-15, "cefazolin")]))["detail"]
    assert "no antibiotic order found" not in detail
    assert "Outside that window: cefazolin order started 2024-02-18 (15 days before)." in detail


def test_many_orders_outside_the_window_name_the_nearest_three_and_count_the_rest() -> None:
    orders = [antibiotic(n, name) for n, name in ((-200, "a"), (-40, "b"), (-16, "c"), (30, "d"))]
    orders.append(antibiotic(400, "e"))
    detail = card(run(improving(), antibiotics=orders))["detail"]
    assert (
        "Outside that window: b order started 2024-01-24 (40 days before); c order started "
        "2024-02-17 (16 days before); d order started 2024-04-03 (30 days after); "
        "2 other orders further away." in detail
    )


def test_with_no_order_on_record_none_was_found() -> None:
    a = run(improving())
    assert a.episode is not None and a.episode.outside_window == ()
    assert "episode" in a.to_dict() and "antibioticsOutsideWindow" not in a.to_dict()["episode"]
    detail = card(a)["detail"]
    assert "(no antibiotic order found; taken as the treatment start)" in detail
    assert "Outside that window" not in detail


def test_an_order_in_the_window_is_the_treatment_start_and_the_others_are_not_named() -> None:
    a = run(improving(), antibiotics=[antibiotic(2, "cefazolin"), antibiotic(60, "linezolid")])
    assert a.episode is not None and a.episode.outside_window == ()
    detail = card(a)["detail"]
    assert "treatment started 2024-03-06 (first antibiotic order: cefazolin)" in detail
    assert "Outside that window" not in detail


# --- E. The lines of the data left out read as sentences --------------------------------

AB = build_antibiotics(
    [
        (
            "antibiotics.json",
            json.loads(
                resources.files("cds_service.valuesets")
                .joinpath("antibiotics.json")
                .read_text("utf-8")
            ),
        )
    ]
)


def medication_order(oid: str, text: str = "cefazolin 1 G Injection", **elements: Any) -> Any:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": text},
        "authoredOn": "2024-03-04T09:30:00+00:00",
    }
    resource.update(elements)
    return {k: v for k, v in resource.items() if v is not None}


@pytest.mark.parametrize(
    ("elements", "line"),
    [
        ({"status": "draft"}, "Cefazolin order marked draft: not counted as treatment."),
        (
            {"text": "vancomycin 125 MG Oral Capsule"},
            "Vancomycin by a route that does not reach the infection (oral): not counted as "
            "treatment.",
        ),
        (
            {"text": "gentamicin eye drops"},
            "Gentamicin not given systemically (eye): not counted as treatment.",
        ),
        ({"status": ""}, "Cefazolin order without a status: not counted as treatment."),
        ({"intent": "proposal"}, "Cefazolin proposal, not an order: not counted as treatment."),
        ({"doNotPerform": True}, "Order not to give cefazolin: not counted as treatment."),
        ({"authoredOn": None}, "Cefazolin order without a start date: not counted as treatment."),
        (
            {"dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "bad"}}}}]},
            # counted, from its order date: said, never "not used"
            "Cefazolin order start date unreadable; the order date was used.",
        ),
    ],
    ids=["draft", "oral", "eye", "no-status", "proposal", "do-not", "no-start", "authored-used"],
)
def test_an_antibiotic_order_that_does_not_count_is_said_as_an_order(
    elements: dict[str, Any], line: str
) -> None:
    _, issues = map_antibiotic_orders([medication_order("m1", **elements)], AB)
    (said,) = left_out(issues, T0)
    assert said == line
    assert "record" not in said and "was not used" not in said


def test_two_orders_left_out_for_the_same_reason_are_counted_as_orders() -> None:
    _, issues = map_antibiotic_orders(
        [medication_order("m1", status="draft"), medication_order("m2", status="draft")], AB
    )
    assert left_out(issues, T0) == [
        "Cefazolin order marked draft: not counted as treatment (2 orders)."
    ]


def test_the_card_says_a_draft_order_is_not_counted_as_treatment() -> None:
    _, issues = map_antibiotic_orders([medication_order("m1", status="draft")], AB)
    detail = card(run(improving(), issues=issues))["detail"]
    assert "- Cefazolin order marked draft: not counted as treatment." in detail
    assert "1 record cefazolin order" not in detail


def test_values_counted_by_reason_agree_in_number() -> None:
    def crp_issue(n: int) -> DataIssue:
        return DataIssue(
            f"Observation/x{n}",
            "valueRange is not a usable number (valueQuantity expected): skipped",
            kind="crp",
            plain="without a usable value",
            when=day(n),
        )

    assert left_out([crp_issue(1)], T0) == ["1 CRP result without a usable value was not used."]
    assert left_out([crp_issue(1), crp_issue(2)], T0) == [
        "2 CRP results without a usable value were not used."
    ]
    foreign = [
        DataIssue(f"Condition/c{n}", "not this patient", plain="not linked to this patient")
        for n in (1, 2)
    ]
    assert left_out(foreign) == ["2 diagnoses not linked to this patient were not used."]
    stranger = DataIssue(
        "MedicationRequest/m9", "not this patient", plain="not linked to this patient"
    )
    assert left_out([stranger]) == ["1 order not linked to this patient was not used."]
    drug = DataIssue(
        "MedicationRequest/m8",
        "unknown",
        plain="medication order whose drug could not be read",
        code=ORDER_NOT_COUNTED,
    )
    assert left_out([drug]) == [
        "Medication order whose drug could not be read: not counted as treatment."
    ]
    unread = [DataIssue(f"Observation/#{n}", "not a JSON object: skipped") for n in (1, 2)]
    assert left_out(unread) == ["2 records that could not be read were not used."]
    ignored = DataIssue("Observation/q", "11039-5 is not read", plain="not a test the rules read")
    assert left_out([ignored]) == ["1 result of a test the rules do not read was not used."]


def test_a_pain_score_left_out_is_named_without_its_ucum_annotation() -> None:
    score = DataIssue(
        "Observation/p",
        "pain score 12 outside 0-10: skipped",
        kind="pain",
        plain="outside the 0-10 scale",
        value=12.0,
        unit="{score}",
        when=day(9),
    )
    assert left_out([score], T0) == ["Not used: pain score 12 on day 9, outside the 0-10 scale."]


def test_no_usable_crp_counts_its_results_in_words() -> None:
    said = phrase(Remark("crp-none-usable", {"skipped": 1})).message
    assert said == "No usable CRP: 1 CRP result on record could not be used (see below)."
    said = phrase(Remark("crp-none-usable", {"skipped": 3})).message
    assert said == "No usable CRP: 3 CRP results on record could not be used (see below)."


# --- B. A CRP left out for its unit is named with its value as reported and its day -----


def unit_issue(
    n: int, value: float, unit: str | None, unit_of: str | None = None, **kw: Any
) -> DataIssue:
    kw.setdefault("plain", "in a unit that could not be converted")
    return DataIssue(
        f"Observation/u{n}",
        f"CRP unit {unit!r} cannot be converted to mg/L: skipped",
        kind="crp",
        when=day(n),
        status=kw.pop("status", "final"),
        reported=ReportedValue(value, unit, None, unit_of),
        **kw,
    )


def test_a_crp_without_a_unit_is_named_with_its_value_and_day() -> None:
    # u03: the latest CRP, 15 on day 28, has no unit; the counted one is 15 days old
    data = [crp(0, 120), crp(14, 50), pain(0, 7), pain(14, 4), pain(28, 2)]
    detail = card(run(data, issues=[unit_issue(28, 15, None)]))["detail"]
    assert "- Not used, reported without a unit: CRP 15 on day 28." in detail
    assert "could not be converted" not in detail


def test_a_crp_in_a_unit_not_converted_is_named_as_reported() -> None:
    # b07: a unit the service cannot convert is skipped; the card shows it as the chart does
    detail = card(run(improving(), issues=[unit_issue(27, 15, "mmol/L")]))["detail"]
    assert "- Not used, in a unit that could not be converted: CRP 15 mmol/L on day 27." in detail


def test_a_molar_code_in_mg_per_l_says_code_and_unit_disagree() -> None:
    # b06: LOINC 76485-2 (molar) reported in mg/L: neither divided by the factor nor used
    issues = [unit_issue(n, v, "mg/L", "crp") for n, v in ((0, 120), (14, 50), (28, 15))]
    detail = card(run([pain(0, 7), pain(28, 2)], issues=issues))["detail"]
    assert (
        "- Not used, code and unit disagree (the molar CRP code, reported in mg/L): CRP 120 "
        "mg/L on day 0, 50 mg/L on day 14, 15 mg/L on day 28." in detail
    )
    assert "No usable CRP: 3 CRP results on record could not be used (see below)." in detail
    assert "could not be converted" not in detail


def test_a_mass_code_in_nmol_per_l_says_code_and_unit_disagree() -> None:
    # b19: 1988-5 reported in nmol/L
    issues = [
        unit_issue(0, 1142.9, "nmol/L", "crp-molar"),
        unit_issue(28, 142.9, "nmol/L", "crp-molar"),
    ]
    detail = card(run([pain(0, 7), pain(28, 2)], issues=issues))["detail"]
    assert (
        "- Not used, code and unit disagree (a mass CRP code, reported in nmol/L): CRP 1142.9 "
        "nmol/L on day 0, 142.9 nmol/L on day 28." in detail
    )


def test_beyond_three_values_left_out_the_latest_three_are_named_and_the_rest_counted() -> None:
    issues = [unit_issue(n, 100 - n, None) for n in (0, 3, 7, 14, 21)]
    assert left_out(issues, T0) == [
        "Not used, reported without a unit: CRP 93 on day 7, 86 on day 14, 79 on day 21 "
        "and 2 earlier."
    ]


def test_a_value_left_out_for_its_status_keeps_its_status_as_the_reason() -> None:
    issue = unit_issue(5, 40, None, status="entered-in-error", plain="marked entered-in-error")
    assert left_out([issue], T0) == ["Not used, marked entered-in-error: CRP 40 on day 5."]


# --- D. A mimic beside a confirmed infection: the evidence does not call it unconfirmed --

UNCONFIRMED = "while the diagnosis is not confirmed it does not apply"
BESIDE = (
    "it does not cover imaging needed for another spinal condition recorded beside it, or to "
    "tell that condition from the infection."
)


@pytest.mark.parametrize(
    "other",
    [
        mimic(name="bone metastases"),
        condition("M51.369", ConditionCategory.MIMIC, onset=-400, name="disc degeneration"),
    ],
    ids=["metastases", "disc-degeneration"],
)
def test_a_mimic_beside_a_confirmed_infection_is_cited_for_the_other_condition(
    other: ConditionFact,
) -> None:
    a = run(improving(), conditions=[nvo(), other])
    assert [f.rule_id for f in a.rules_fired] == ["uncertain-dx"]  # the decision is unchanged
    detail = card(a)["detail"]
    assert UNCONFIRMED not in detail
    assert BESIDE in detail
    assert "also recorded: imaging may be needed" in detail


@pytest.mark.parametrize("others", [[], [mimic(name="bone metastases")]], ids=["alone", "mimic"])
def test_an_unconfirmed_diagnosis_keeps_its_evidence_line(others: list[ConditionFact]) -> None:
    detail = card(run(improving(), conditions=[nvo(verification="differential"), *others]))[
        "detail"
    ]
    assert UNCONFIRMED in detail
    assert BESIDE not in detail


# --- C. No date on the episode: the values on record are counted, never "no CRP" --------

A05 = [crp(0, 120), crp(14, 50), crp(28, 15), pain(0, 7), pain(14, 4), pain(28, 2)]


def test_without_a_treatment_start_the_values_on_record_are_not_called_missing() -> None:
    # a05: no onset and no recordedDate; CRP 120, 50, 15 and pain 7, 4, 2 on record
    a = run(A05, [nvo(onset=None)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # the decision is unchanged
    c = card(a)
    assert "No CRP counted." not in c["detail"]
    assert "No pain score since treatment start." not in c["detail"]
    assert (
        "6 CRP, ESR or pain results on record cannot be judged without a treatment start."
        in c["detail"]
    )
    assert (
        "The infection diagnosis has no onset or recorded date, so the treatment start is "
        "unknown and no CRP or pain score can be judged against it: a dated diagnosis (its "
        "onset or recorded date) would let them count." in c["detail"]
    )
    # what is missing is the diagnosis date: the summary does not ask for a CRP
    assert c["summary"] == (
        "Not enough data to judge repeat spine MRI: treatment start unknown (diagnosis undated)"
    )
    # the CRPs the chart shows are named with their dates, and no CRP order is suggested
    assert (
        "Not used, with no treatment start to judge them from: CRP 120 mg/L on 2024-03-04, "
        "50 mg/L on 2024-03-18, 15 mg/L on 2024-04-01." in c["detail"]
    )
    assert not [s for s in c.get("suggestions", []) if "CRP" in s["label"]]


def test_without_a_treatment_start_and_no_values_the_card_says_there_are_none() -> None:
    detail = card(run([], [nvo(onset=None)]))["detail"]
    assert "No CRP, ESR or pain score on record." in detail


def test_a_red_flag_without_a_treatment_start_counts_the_values_too() -> None:
    a = run(A05, [nvo(onset=None), mimic(name="bone metastases")])
    assert a.recommendation is Recommendation.SUPPORT
    detail = card(a)["detail"]
    assert "6 CRP, ESR or pain results on record cannot be judged" in detail
    assert "No CRP counted." not in detail


# --- E. Several red flags in one summary read as one sentence -------------------------------


def test_red_flags_after_the_first_in_a_summary_start_lower_case() -> None:
    # a plateau (100->90 mg/L by day 28) and worse pain (3->6): the second flag follows
    # "; " mid-sentence, so no capital, but "CRP" keeps its capitals wherever it stands
    data = [crp(0, 100), crp(14, 95), crp(28, 90), pain(0, 5), pain(14, 3), pain(28, 6)]
    summary = card(run(data))["summary"]
    assert summary.startswith("CRP fell less than 25%"), summary
    assert "; pain worse" in summary and "; Pain" not in summary, summary


def test_a_crp_that_never_rose_is_not_offered_as_the_response_in_the_summary() -> None:
    # e14: CRP 8->4 mg/L, never above the normal limit: a fall inside the normal range shows
    # nothing, so the summary rests the advice on the pain and says why the CRP cannot count
    data = [crp(0, 8), crp(14, 3), crp(28, 4), pain(0, 6), pain(14, 4), pain(28, 2)]
    summary = card(run(data))["summary"]
    assert summary == (
        "Routine repeat spine MRI not recommended: pain 6\u21922; CRP never raised (at most 8 "
        "mg/L), so it cannot show the response"
    )


def test_pain_worse_since_its_first_score_says_since_treatment_start() -> None:
    data = [crp(0, 120), crp(14, 110), crp(28, 100), pain(0, 3), pain(14, 4), pain(28, 6)]
    summary = card(run(data))["summary"]
    assert "pain worse: 3\u21926/10 since treatment start" in summary, summary
    assert "since day 0" not in summary
