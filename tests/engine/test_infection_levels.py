"""An infection recorded at two levels (clinical-logic.md, "The infected level and the
order"): a clinician reviewer's re-run found two confirmed entries of one day, M46.26
(lumbar) and M46.24 (thoracic), with a lumbar MRI ordered, answered by resource id: one
order of ids said the lumbar MRI "misses the thoracic level" and suggested a thoracic MRI
instead (the lumbar infection unimaged), the other said nothing of the thoracic level; on
improving data, no card against advise-against. The entries are read as one infection at
each of their levels: an order that images one of them is repeat imaging of the
infection, one that answers a red flag must image them all (a second re-run: reading them
as "multiple", which every order covers, rated a lumbar MRI appropriate for a cervical and
thoracic infection), and the card names both levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation
from cds_service.engine.assessment import NotApplicableReason
from fhir_mappers.model import ConditionCategory, ConditionFact, Measurement
from tests.engine.builders import condition, crp, order, pain, run
from tests.support.ratings import ratings_by_id

CTX = CardContext(patient_id="p1", encounter_id=None, override_reasons=load_override_reasons())
IMPROVING = (crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(14, 5), pain(28, 3))
PLATEAU = (crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(14, 6), pain(28, 6))
COURSES = {"improving": (IMPROVING, 29), "plateau": (PLATEAU, 28)}
# falling to day 20, for a deficit recorded on day 20 and an order on day 22
TO_DAY_20 = (crp(0, 120), crp(14, 50), crp(20, 15), pain(0, 7), pain(14, 4), pain(20, 2))


def lumbar(ref: str, onset: int = 0) -> ConditionFact:
    return condition("M46.26", ref=ref, onset=onset, region="lumbar")


def thoracic(ref: str, onset: int = 0) -> ConditionFact:
    return condition("M46.24", ref=ref, onset=onset, region="thoracic")


# Both orders of resource ids: the entry with the greater reference was the one chosen.
ID_ORDERS = {
    "lumbar-first": ("Condition/a", "Condition/b"),
    "thoracic-first": ("Condition/b", "Condition/a"),
}


def two_levels(ids: tuple[str, str]) -> list[ConditionFact]:
    return [lumbar(ids[0]), thoracic(ids[1])]


def answer(a: Assessment) -> dict[str, Any]:
    """What a clinician and the EHR see, and what decided it: everything but the chosen
    entry's own reference and code (which the ids pick) and the card's uuid."""
    body = render_response(a, CTX)
    shown = [{k: v for k, v in c.items() if k not in ("uuid", "extension")} for c in body["cards"]]
    result = [c["extension"]["spine-cds-assessment"]["recommendation"] for c in body["cards"]]
    return {
        "recommendation": a.recommendation,
        "reason": a.not_applicable_reason,
        "rules": [(f.rule_id, f.data) for f in a.rules_fired],
        "covering": a.covering,
        "region": a.infection_region,
        "gaps": dict(a.study_gaps),
        "study": a.answering_study,
        "remarks": [(r.code, r.data) for r in (*a.missing, *a.unmet, *a.notes)],
        "cards": shown,
        "result": result,
        "ratings": body.get("systemActions"),
    }


def both(
    course: Sequence[Measurement], order_day: int, *extra: ConditionFact, **kw: Any
) -> list[Assessment]:
    return [
        run(course, [*two_levels(ids), *extra], order_day=order_day, **kw)
        for ids in ID_ORDERS.values()
    ]


@pytest.mark.parametrize("course", sorted(COURSES))
def test_two_levels_of_one_day_give_one_answer_whatever_the_ids(course: str) -> None:
    first, second = both(*COURSES[course])
    assert answer(first) == answer(second)


@pytest.mark.parametrize("course", sorted(COURSES))
def test_an_order_of_one_level_is_repeat_imaging_that_misses_the_other(course: str) -> None:
    data, order_day = COURSES[course]
    for a in both(data, order_day):
        assert a.covering == ("ServiceRequest/sr1",)  # the lumbar MRI images the lumbar level
        (note,) = [n for n in a.notes if n.code == "order-misses-level"]
        assert note.data["levels"] == ["thoracic", "lumbar"]
        (card,) = render_response(a, CTX)["cards"]
        assert (
            "The infection is at more than one level (thoracic and lumbar): the lumbar MRI "
            "ordered will not show all of it" in card["detail"]
        ), card["detail"]
        assert "thoracic spine" not in str(card.get("suggestions"))  # never the other level alone
    expected = Recommendation.ADVISE_AGAINST if course == "improving" else Recommendation.SUPPORT
    assert {a.recommendation for a in both(data, order_day)} == {expected}


def test_on_a_plateau_the_one_level_order_cannot_answer_and_the_whole_spine_is_asked() -> None:
    for a in both(*COURSES["plateau"]):
        assert a.study_gaps == {"ServiceRequest/sr1": "level"}
        assert a.answering_study is not None and a.answering_study.region == "spine"
        body = render_response(a, CTX)
        (card,) = body["cards"]
        assert "MRI of the whole spine with gadolinium" in card["detail"]
        assert list(ratings_by_id(body).values()) == ["not-appropriate"]


@pytest.mark.parametrize("course", sorted(COURSES))
def test_an_order_of_neither_level_is_held_to_the_level_rule(course: str) -> None:
    """Cervical and thoracic entries, a lumbar MRI: it images no infected level. Without
    a red flag, no card (not repeat imaging of the infection); with one, the card names
    both levels and asks for the whole spine."""
    data, order_day = COURSES[course]
    entries = [
        condition("M46.22", ref="Condition/a", region="cervical"),
        thoracic("Condition/b"),
    ]
    a = run(data, entries, order_day=order_day)
    assert a.covering == ()
    if course == "improving":
        assert a.not_applicable_reason is NotApplicableReason.ORDER_OUTSIDE_INFECTION
        return
    assert a.recommendation is Recommendation.SUPPORT
    assert a.study_gaps == {"ServiceRequest/sr1": "level"}
    (card,) = render_response(a, CTX)["cards"]
    assert (
        "The infection is at more than one level (cervical and thoracic): the lumbar MRI "
        "ordered will not show it; MRI of the whole spine with gadolinium." in card["detail"]
    ), card["detail"]
    assert "misses the infected levels (cervical and thoracic)" in card["summary"], card["summary"]


@pytest.mark.parametrize("course", sorted(COURSES))
def test_a_whole_spine_order_images_both_levels(course: str) -> None:
    data, order_day = COURSES[course]
    whole = order(order_day, region="spine", code="72156")
    for a in both(data, order_day, orders=[whole]):
        assert "order-misses-level" not in [n.code for n in a.notes]
        assert not a.study_gaps


def test_the_episode_line_names_both_levels() -> None:
    for a in both(*COURSES["plateau"]):
        (card,) = render_response(a, CTX)["cards"]
        assert (
            "Vertebral osteomyelitis (spondylodiscitis) at more than one level (thoracic and "
            "lumbar), recorded from" in card["detail"]
        )


def test_an_entry_coded_multiple_sites_beside_a_level_is_named_as_such() -> None:
    multiple = condition("M46.29", ref="Condition/a", region="multiple")
    a = run(PLATEAU, [lumbar("Condition/b"), multiple], order_day=28)
    (card,) = render_response(a, CTX)["cards"]
    assert "at more than one level (lumbar and multiple sites)" in card["detail"]
    assert a.episode is not None and a.episode.levels == ("lumbar", "multiple")


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(lambda: [lumbar("Condition/a")], id="one-entry"),
        pytest.param(lambda: [lumbar("Condition/a"), lumbar("Condition/b")], id="two-entries"),
        # an entry with no level (site unspecified) gives way to one that names it, as
        # the codes of one Condition do (fhir_mappers.conditions): whichever the ids chose
        pytest.param(
            lambda: [lumbar("Condition/a"), condition("M46.20", ref="Condition/b")],
            id="unspecified-chosen",
        ),
        pytest.param(
            lambda: [lumbar("Condition/b"), condition("M46.20", ref="Condition/a")],
            id="lumbar-chosen",
        ),
    ],
)
def test_an_infection_at_one_level_is_read_at_that_level(entries: Any) -> None:
    outside = run(IMPROVING, entries(), orders=[order(29, region="thoracic", code="72157")])
    assert outside.not_applicable_reason is NotApplicableReason.ORDER_OUTSIDE_INFECTION
    assert outside.episode is not None and outside.episode.levels == ("lumbar",)
    assert outside.infection_region == "lumbar"
    covered = run(IMPROVING, entries(), order_day=29)
    assert covered.recommendation is Recommendation.ADVISE_AGAINST
    flagged = run(PLATEAU, entries(), orders=[order(28, region="thoracic", code="72157")])
    assert "order-misses-level" in [n.code for n in flagged.notes]
    (card,) = render_response(flagged, CTX)["cards"]
    assert "more than one level" not in card["detail"]
    assert "The infection is lumbar: the thoracic MRI ordered will not show it" in card["detail"]


def test_a_deficit_level_is_compared_with_both_levels_whatever_the_ids() -> None:
    """A new paraplegia (thoracic cord or above) in an infection at the thoracic and
    lumbar levels, a lumbar MRI ordered: read from the thoracic entry alone the deficit sat
    at the infected level and went unnamed; from the lumbar entry it was named."""
    paraplegia = condition(
        "G82.20", ConditionCategory.NEURO_DEFICIT, onset=20, region="thoracic", name="paraplegia"
    )
    first, second = both(TO_DAY_20, 22, paraplegia)
    assert answer(first) == answer(second)
    assert first.recommendation is Recommendation.SUPPORT_URGENT
    # the deficit's level is an infected level: the lumbar MRI misses it, as the note says
    (note,) = [n for n in first.notes if n.code == "order-misses-level"]
    assert note.data["levels"] == ["thoracic", "lumbar"]
    assert "ServiceRequest/sr1" in first.study_gaps


def test_a_new_level_names_every_level_treated_whatever_the_ids() -> None:
    """Cervical and lumbar entries of day 0, a thoracic one on day 22, a lumbar MRI: one
    order of ids read the day-0 start from the cervical entry, which the lumbar MRI does
    not image, and gave no card; the other named only the lumbar level as treated."""
    new = thoracic("Condition/z", onset=22)
    answers = [
        run(IMPROVING, [cervical, lumbar_entry, new], order_day=29)
        for cervical, lumbar_entry in (
            (condition("M46.22", ref="Condition/a", region="cervical"), lumbar("Condition/b")),
            (condition("M46.22", ref="Condition/b", region="cervical"), lumbar("Condition/a")),
        )
    ]
    assert answer(answers[0]) == answer(answers[1])
    a = answers[0]
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (card,) = render_response(a, CTX)["cards"]
    assert (
        "A new level of infection, thoracic, recorded on day 22 while the infection at more "
        "than one level (cervical and lumbar) was treated" in card["detail"]
    )
