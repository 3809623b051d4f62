"""Cards an outside clinician's review (round twelve) found wrong, through the engine and
the renderer as the service runs them."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from tests.engine.builders import complication, crp, improving, neuro, nvo, pain, run


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CardContext(patient_id="p"))["cards"]
    return only


def test_an_undated_abscess_reads_as_on_record_not_recorded_date_not_recorded() -> None:
    a = run(improving(), [nvo(), complication(onset=None)])  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.SUPPORT
    summary = card(a)["summary"]
    assert "on record (undated)" in summary, summary
    assert "recorded date not recorded" not in summary


def test_a_crp_above_its_baseline_is_not_said_to_have_fallen() -> None:
    # c12 n24: "CRP fell less than 25%: 180->300 mg/L (+66.7%)" beside the rise
    a = run([crp(0, 180), crp(14, 60), crp(28, 300), pain(0, 6), pain(28, 6)])
    c = card(a)
    assert a.recommendation is Recommendation.SUPPORT
    assert "fell less than" not in c["summary"] and "fall by day" not in c["detail"]
    assert "CRP rising again: 60\u2192300 mg/L (+400%) since day 14" in c["summary"]
    # no rise, but no fall either: said as it is
    a = run([crp(0, 100), crp(28, 110), pain(0, 6), pain(28, 6)])
    c = card(a)
    assert "CRP not down from baseline: 100\u2192110 mg/L (+10%) by day 28" in c["summary"]


def test_a_small_fall_is_still_a_fall_too_small() -> None:
    a = run([crp(0, 100), crp(28, 90), pain(0, 6), pain(28, 6)])
    assert "CRP fell less than 25%: 100\u219290 mg/L" in card(a)["summary"]


def test_a_deficit_begun_on_treatment_inside_the_window_says_it_may_be_new() -> None:
    # c12 n01b: cauda equina syndrome with onset on day 3 of antibiotics read only "known
    # since diagnosis"; the rules read it as found with the infection (the window), the
    # card says what follows if it was not
    a = run(improving(), [nvo(), neuro(3)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    c = card(a)
    assert (
        "it began after treatment started, inside the 3 days after diagnosis and treatment "
        "start that are read as found with the infection" in c["detail"]
    )
    assert "If it was not there at diagnosis, it is new: emergency MRI" in c["detail"]
    assert c["summary"].endswith("cauda equina syndrome since day 3: if new, emergency MRI")
    # begun on the day treatment started: known at diagnosis, as before
    c = card(run(improving(), [nvo(), neuro(0)]))
    assert "known since diagnosis: compare the neurologic exam" in c["summary"]
    assert "it began after treatment started" not in c["detail"]


def test_a_draft_without_an_id_is_never_named_by_an_invented_one() -> None:
    # an integrator's review: a draft order with no id got "ServiceRequest/#0" in its
    # delete suggestion and "#0" as the id of its rating update
    import json
    from dataclasses import replace

    from tests.engine.builders import order

    drafted = order(29, ref="ServiceRequest/#0")
    without_id = {k: v for k, v in drafted.resource.items() if k != "id"}
    a = run(improving(), orders=[replace(drafted, resource=without_id)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    response = render_response(a, CardContext(patient_id="p"))
    (only,) = response["cards"]
    assert "suggestions" not in only  # nothing to delete by id
    assert "The order came without an id, so this card cannot offer to remove it" in only["detail"]
    assert "#0" not in json.dumps(response.get("systemActions", []))  # no update either
    # the same draft with its id: removed and rated as before
    a = run(improving(), orders=[order(29)])
    response = render_response(a, CardContext(patient_id="p"))
    (suggestion,) = response["cards"][0]["suggestions"]
    assert suggestion["actions"][0] == {
        "type": "delete",
        "description": suggestion["actions"][0]["description"],
        "resourceId": "ServiceRequest/sr1",
    }
    assert response["systemActions"][0]["resource"]["id"] == "sr1"


def test_a_crp_above_its_baseline_before_day_28_is_not_down_not_yet_down() -> None:
    # c13: "+10% ... not yet down 25%" on an insufficient-data card
    a = run([crp(0, 100), crp(20, 110), pain(0, 6), pain(20, 6)], order_day=21)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    c = card(a)
    assert "CRP 100\u2192110 mg/L (+10%) by day 20: not down from baseline" in c["detail"]
    assert "not yet down" not in c["detail"] + c["summary"]


def test_a_finding_begun_on_treatment_inside_the_window_says_what_follows_if_new() -> None:
    # c13 d08: an epidural abscess from day 2 of treatment read only "Recorded at diagnosis"
    a = run(improving(), [nvo(), complication(2)])
    c = card(a)
    assert "Recorded at diagnosis, not a new red flag" in c["detail"]
    assert (
        "Begun after treatment started (day 2): if not there at diagnosis, it is new, and "
        "imaging is reasonable." in c["detail"]
    )
    # found before treatment started: known, nothing more said
    assert (
        "Begun after treatment started"
        not in card(run(improving(), [nvo(), complication(0)]))["detail"]
    )
    # dated by its recordedDate alone: recorded then, not known to have begun then (a
    # clinician reviewer read "Begun" for a cauda equina syndrome recorded on day 2)
    recorded = card(run(improving(), [nvo(), complication(None, recorded=2)]))["detail"]
    assert "Recorded after treatment started (day 2): if not there at diagnosis" in recorded
    assert "Begun after" not in recorded


def test_a_rise_from_a_lowest_at_a_lab_limit_says_it_may_be_larger() -> None:
    # c13 r10: "<5 -> 25 (+400%)" without "or more"
    a = run(
        [crp(0, 100), crp(5, 5, comparator="<"), crp(10, 25), pain(0, 6), pain(10, 5)], order_day=11
    )
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "(+400% or more) from day 5 to day 10" in card(a)["detail"]
