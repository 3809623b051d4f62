"""Several spine drafts signed together: the STAT suggestion of an urgent card makes STAT
every draft that answers the question (all three parts of a CPT whole-spine study, not
only the first), and no draft is changed into the study that answers when another draft
of the call already is that study (an outside clinician's review: the cervical part alone
made STAT beside a new cauda equina syndrome; a cervical MRI changed into a second lumbar
MRI with gadolinium beside the lumbar one ordered)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ImagingOrder
from tests.engine.builders import PATIENT, crp, improving, neuro, nvo, order, pain, run
from tests.support.ratings import rating_of, ratings_by_id

CTX = CardContext(patient_id=PATIENT, value_sets=load_value_sets())
PLATEAU = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]
LUMBAR = [nvo(region="lumbar")]
CES = [nvo(region="lumbar"), neuro(onset=15, region="lumbosacral")]
THIRDS = (("cervical", "72156"), ("thoracic", "72157"), ("lumbar", "72158"))


def draft(region: str, code: str, authored: int = 16, **kw: Any) -> ImagingOrder:
    o = order(authored, ref=f"ServiceRequest/{region}", region=region, code=code)
    return replace(o, **kw) if kw else o


def triple(**kw: Any) -> list[ImagingOrder]:
    return [draft(region, code, **kw) for region, code in THIRDS]


def card(a: Assessment, ctx: CardContext = CTX) -> dict[str, Any]:
    (only,) = render_response(a, ctx)["cards"]
    return dict(only)


def ratings(a: Assessment) -> dict[str, str]:
    return ratings_by_id(render_response(a, CTX))


# --- F2: the STAT suggestion makes the whole study STAT --------------------------------------


def test_a_cpt_whole_spine_triple_is_made_stat_whole() -> None:
    a = run(improving()[:2], CES, orders=triple())
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    (suggestion,) = card(a)["suggestions"]
    assert suggestion["label"] == "Make the whole spine MRI orders STAT"
    assert suggestion["isRecommended"]
    actions = suggestion["actions"]
    assert [x["type"] for x in actions] == ["update"] * 3
    assert sorted(x["resource"]["id"] for x in actions) == ["cervical", "lumbar", "thoracic"]
    for x in actions:
        resource = x["resource"]
        assert resource["priority"] == "stat"
        # each part keeps its own study: only the priority changes
        assert resource["code"]["coding"][0]["code"] == dict(THIRDS)[resource["id"]]
        assert x["description"] == "Make the draft whole spine MRI order STAT"
        assert rating_of(resource) == "appropriate"
    assert a.next_steps.emergency_mri
    assert a.next_steps.stat_orders == (
        "ServiceRequest/cervical",
        "ServiceRequest/lumbar",
        "ServiceRequest/thoracic",
    )
    assert not a.next_steps.stat_extended  # together they are the whole spine
    # one whole-spine draft: one update, worded as before
    whole = replace(order(16), region="spine")
    (single,) = card(run(improving()[:2], CES, orders=[whole]))["suggestions"]
    assert single["label"] == "Make the spine MRI STAT"
    (action,) = single["actions"]
    assert action["description"] == "Change the draft order to spine MRI STAT"


def test_a_part_already_stat_leaves_the_others_to_be_made_stat() -> None:
    orders = triple()
    orders[2] = replace(orders[2], priority="stat")  # the lumbar part
    a = run(improving()[:2], CES, orders=orders)
    (suggestion,) = card(a)["suggestions"]
    assert sorted(x["resource"]["id"] for x in suggestion["actions"]) == ["cervical", "thoracic"]
    assert a.next_steps.stat_orders == ("ServiceRequest/cervical", "ServiceRequest/thoracic")


def test_the_triple_made_stat_by_delete_and_create_where_the_ehr_applies_those() -> None:
    a = run(improving()[:2], CES, orders=triple())
    (suggestion,) = card(a, replace(CTX, replace_with_delete_create=True))["suggestions"]
    actions = suggestion["actions"]
    assert [x["type"] for x in actions] == ["delete", "create"] * 3
    assert sorted(x["resourceId"] for x in actions[::2]) == [
        "ServiceRequest/cervical",
        "ServiceRequest/lumbar",
        "ServiceRequest/thoracic",
    ]
    assert {x["resource"]["priority"] for x in actions[1::2]} == {"stat"}
    assert {x["description"] for x in actions[1::2]} == {"Order the whole spine MRI STAT"}


def test_two_drafts_that_answer_are_both_made_stat_as_they_are() -> None:
    """Both image the infected (thoracolumbar) level and the deficit, which takes it: both
    are made STAT, neither extended (extending one to the whole spine would order again
    what the other images); the card's first line still asks for the whole spine."""
    conditions = [nvo(region="thoracolumbar"), neuro(onset=15)]
    orders = [draft("thoracic", "72157"), draft("lumbar", "72158")]
    a = run(improving()[:2], conditions, orders=orders)
    assert a.recommendation is Recommendation.SUPPORT_URGENT and a.study_gaps == {}
    (suggestion,) = card(a)["suggestions"]
    assert suggestion["label"] == "Make the lumbar spine MRI and thoracic spine MRI orders STAT"
    codes = {
        x["resource"]["id"]: x["resource"]["code"]["coding"][0]["code"]
        for x in suggestion["actions"]
    }
    assert codes == {"lumbar": "72158", "thoracic": "72157"}
    assert a.next_steps.stat_orders == ("ServiceRequest/lumbar", "ServiceRequest/thoracic")
    assert not a.next_steps.stat_extended


# --- F3: no change into a study another draft already is -------------------------------------


def test_a_cervical_mri_beside_the_lumbar_one_is_not_changed_into_a_second_lumbar_mri() -> None:
    orders = [draft("lumbar", "72158", 28), draft("cervical", "72156", 28)]
    a = run(PLATEAU, LUMBAR, orders=orders)
    assert a.recommendation is Recommendation.SUPPORT
    assert a.study_gaps == {"ServiceRequest/cervical": "level"}
    assert a.next_steps.replaced_order is None
    c = card(a)
    assert "suggestions" not in c
    # the card still rates both and names the cervical one as outside the infection
    assert ratings(a) == {"lumbar": "appropriate", "cervical": "not-appropriate"}
    assert "the cervical MRI ordered will not show it" in c["detail"]
    # a lumbar MRI without gadolinium does not answer: the change is still offered
    plain = replace(draft("lumbar", "72148", 28), contrast="without")
    a = run(PLATEAU, LUMBAR, orders=[plain, draft("cervical", "72156", 28)])
    assert a.study_gaps == {
        "ServiceRequest/cervical": "level",
        "ServiceRequest/lumbar": "contrast",
    }
    assert a.next_steps.replaced_order == "ServiceRequest/cervical"


def test_a_new_deficit_makes_the_lumbar_mri_stat_not_the_cervical_one_a_whole_spine_mri() -> None:
    orders = [draft("lumbar", "72158", 16), draft("cervical", "72156", 16)]
    a = run(improving()[:2], CES, orders=orders)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.next_steps.replaced_order is None
    assert a.next_steps.stat_orders == ("ServiceRequest/lumbar",)
    assert a.next_steps.stat_extended  # the card asks for the whole spine
    (suggestion,) = card(a)["suggestions"]
    (action,) = suggestion["actions"]
    assert action["resource"]["id"] == "lumbar" and action["resource"]["priority"] == "stat"
    assert ratings(a) == {"lumbar": "appropriate", "cervical": "not-appropriate"}


def test_a_draft_that_answers_without_an_id_still_keeps_the_other_from_being_changed() -> None:
    """No update can name it, but it is signed with the call: changing the cervical draft
    into a lumbar MRI would order that study twice all the same."""
    lumbar = draft("lumbar", "72158", 28)
    lumbar = replace(lumbar, resource={k: v for k, v in lumbar.resource.items() if k != "id"})
    a = run(PLATEAU, LUMBAR, orders=[lumbar, draft("cervical", "72156", 28)])
    assert a.study_gaps == {"ServiceRequest/cervical": "level"}
    assert a.next_steps.replaced_order is None
