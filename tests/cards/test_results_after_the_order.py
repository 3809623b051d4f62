"""An order written days before it is signed is judged as of its date; results since.

An outside clinical review (2026-12-07): a lumbar MRI pended on day 30 and signed on day
53, with a CRP of 20 -> 75 mg/L and pain 3 -> 8/10 on day 45. The card advised against
imaging ("improving, no red flag recorded") and said only "2 results dated after the
order not used". CDS Hooks order-sign may carry re-signed orders (cds-hooks.md), and
clinical-rules.md asks that every left-out value be named with its value and day. Now
those results are named one by one and block advice against imaging: the older picture
cannot say the patient is improving when newer results are on record.
"""

from __future__ import annotations

from typing import Any

from cds_service.cards.render import ASSESSMENT_KEY
from cds_service.engine import Assessment, Recommendation
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, esr, pain
from tests.engine.test_order_day_in_zone import at, decide, written

IMPROVING_TO_DAY_30 = [crp(0, 142), crp(14, 60), crp(28, 20), pain(0, 8), pain(14, 5), pain(28, 3)]


def pended_on_day_30(*later: Any) -> Assessment:
    return decide([*IMPROVING_TO_DAY_30, *later], written(at(30, 10)))


def test_a_rise_after_a_pended_order_blocks_advice_against_and_is_named() -> None:
    a = pended_on_day_30(crp(45, 75), pain(45, 8))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    c = card(a)
    assert "not recommended" not in c["summary"]
    assert "results dated after the order" in c["summary"]
    assert "CRP 75 mg/L on day 45" in c["detail"]
    assert "pain 8/10 on day 45" in c["detail"]
    assert "Improving" not in c["detail"]
    # no suggestion to remove the order from the older picture
    assert not any("Remove" in s["label"] for s in c.get("suggestions", []))


def test_newer_results_are_named_on_a_support_card_too() -> None:
    # a plateau on day 30 already supports imaging; the day-45 ESR is still named
    values = [crp(0, 100), crp(14, 95), crp(30, 90), pain(0, 6), pain(30, 6)]
    a = decide([*values, esr(45, 80)], written(at(30, 10)))
    assert a.recommendation is Recommendation.SUPPORT
    assert "ESR 80 mm/h on day 45" in card(a)["detail"]


def test_the_latest_six_are_named_and_the_rest_counted() -> None:
    later = [crp(31 + i, 20 - i) for i in range(8)]
    a = pended_on_day_30(*later)
    (after,) = [r for r in a.missing if r.code == "after-evaluation"]
    assert [v["day"] for v in after.data["values"]] == [33, 34, 35, 36, 37, 38]
    assert after.data["earlier"] == 2
    assert "and 2 earlier" in card(a)["detail"]


def test_an_order_written_on_the_day_of_its_latest_results_is_unchanged() -> None:
    a = pended_on_day_30()
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert not [r for r in (*a.notes, *a.missing) if r.code == "after-evaluation"]


def test_the_machine_result_lists_the_gap() -> None:
    result = card(pended_on_day_30(crp(45, 75)))["extension"][ASSESSMENT_KEY]
    assert result["missing"] == ["after-evaluation"]
    assert "notes" not in result or "after-evaluation" not in result["notes"]


def test_a_preliminary_rise_after_a_pended_order_blocks_advice_against() -> None:
    # c11 x03: a preliminary CRP of 90 after the order (latest counted 20) neither blocked
    # nor counted; the card advised against imaging and offered "Remove"
    from fhir_mappers.model import DataIssue

    pending = DataIssue(
        reference="Observation/pending",
        reason="status preliminary: not used",
        kind="crp",
        plain="not yet final",
        value=90.0,
        unit="mg/L",
        when=at(40, 8),
        status="preliminary",
    )
    a = decide(IMPROVING_TO_DAY_30, written(at(30, 10)), issues=(pending,))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["crp-pending-rise"]


def test_an_urgent_card_names_later_results_without_asking_to_wait() -> None:
    # c11 z05: "read these results before deciding on imaging" on an emergency card
    from tests.engine.builders import neuro, nvo

    a = decide(
        [*IMPROVING_TO_DAY_30, crp(40, 60)],
        written(at(30, 10)),
        conditions=(nvo(), neuro(20)),
    )
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    detail = card(a)["detail"]
    assert "Dated after the order" in detail and "CRP 60 mg/L on day 40" in detail
    assert "before deciding on imaging" not in detail


def test_an_emergency_card_with_a_mechanical_finding_does_not_wait_for_a_worse_exam() -> None:
    # c11 x08: "MRI only if the neurologic exam or the markers worsen" beside a new deficit
    from cds_service.engine.assessment import RULE_MECHANICAL
    from fhir_mappers.model import ConditionCategory
    from tests.engine.builders import condition, neuro, nvo

    collapse = condition("M48.50XA", ConditionCategory.MECHANICAL, onset=20, name="collapse")
    a = decide(IMPROVING_TO_DAY_30, written(at(30, 10)), conditions=(nvo(), neuro(25), collapse))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert RULE_MECHANICAL in [f.rule_id for f in a.red_flags]
    assert "MRI only if the neurologic exam" not in card(a)["detail"]
