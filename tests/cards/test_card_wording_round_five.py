"""Card wording an outside review found contradicting itself or the record (synthetic
patients, spine MRI/CT repeat-imaging advice): each finding held by the words the card must
and must not say, built from hand-made domain objects."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment
from fhir_mappers.medications import map_antibiotic_orders
from tests.cards.test_review_wording import AB, medication_order
from tests.engine.builders import improving, run


def card(a: Assessment) -> dict[str, Any]:
    ctx = CardContext(patient_id="p1", encounter_id=None, override_reasons=load_override_reasons())
    (only,) = render_response(a, ctx)["cards"]
    said: dict[str, Any] = only
    return said


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


def test_without_any_order_on_record_none_was_found() -> None:
    line = episode_sentence(card(run(improving()))["detail"])
    assert "(no antibiotic order found; taken as the treatment start)" in line
