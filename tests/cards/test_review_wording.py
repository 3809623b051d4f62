"""Card wording an outside clinical reviewer found contradicting clinical-rules.md
(117 synthetic patients, 2026-12): each finding held by the words the card must and must
not say, built from hand-made domain objects."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment
from tests.engine.builders import antibiotic, improving, run


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
        "days after it; taken as the treatment start)" in detail
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
