"""The state an advise-against card opens with is said in one place and never claims more
than the evidence shows.

An outside clinical review (2026-12-07, c10 m40): the only pain score was 8/10 on day 0,
CRP 120 -> 15 mg/L; the card said "improving ... pain 8 (one value)". A score on T0's day
counts as "since T0" (clinical-rules.md), so the advice stands, but it shows nothing of the
pain on treatment: the card says so and asks for a score. And a site that moves the
plateau day moves the Yoon note's "4 weeks" with it (a code review: fixed text).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.engine import Recommendation, RuleSettings
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, esr, pain, run


def test_pain_only_on_day_0_is_no_advice_against() -> None:
    """An outside clinician saw advise-against, and a delete, beside "record a pain score
    now": a pain score only on T0's day shows no course of the pain on treatment."""
    a = run([crp(0, 120), crp(14, 40), crp(28, 15), pain(0, 8)], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["pain-none-on-treatment"]
    c = card(a)
    said = c["summary"] + c["detail"]
    assert "mprov" not in said.replace("improves", ""), said
    assert "Pain recorded only on day 0 (8/10), before treatment could act" in c["detail"]
    assert not any(a["type"] == "delete" for s in c.get("suggestions", []) for a in s["actions"]), (
        c.get("suggestions")
    )


def test_pain_on_treatment_keeps_improving() -> None:
    a = run([crp(0, 120), crp(14, 40), crp(28, 15), pain(0, 8), pain(28, 3)], order_day=29)
    c = card(a)
    assert "improving" in c["summary"] and "Improving, no red flag recorded." in c["detail"]


def test_the_yoon_note_follows_the_plateau_day() -> None:
    values = [crp(0, 200), crp(14, 90), crp(42, 40), esr(42, 80), pain(0, 8), pain(42, 3)]
    a = run(values, order_day=43, settings=replace(RuleSettings(), plateau_after_days=42))
    c = card(a)
    assert "at 6 weeks" in c["detail"] and "4 weeks:" not in c["detail"], c["detail"]
    default = card(run(values, order_day=43))
    assert "CRP 40 mg/L and ESR 80 mm/h at 4 weeks" in default["detail"]


def test_a_summary_too_short_for_the_flag_still_names_it() -> None:
    # c10 o13: an upper cervical infection, CRP plateau, thoracic MRI: "Red flag recorded;
    # the thoracic MRI ordered misses ..." did not say which flag
    from tests.engine.builders import nvo, order

    thoracic = order(29, code="72147", region="thoracic")
    values = [crp(0, 120), crp(14, 110), crp(29, 100), pain(0, 5), pain(29, 5)]
    a = run(values, [nvo(region="occipito-atlanto-axial")], orders=[thoracic])
    summary = card(a)["summary"]
    assert summary.startswith("CRP not responding; the thoracic MRI ordered misses"), summary


def test_every_red_flag_has_a_short_name() -> None:
    from cds_service.cards.text import FLAG_NAMES
    from cds_service.engine import assessment

    flags = {v for k, v in vars(assessment).items() if k.startswith("RULE_")} - {
        assessment.RULE_ADVISE_AGAINST,
        assessment.RULE_INSUFFICIENT_DATA,
    }
    assert set(FLAG_NAMES) == flags


def test_a_deficit_that_arose_on_treatment_and_resolved_is_named() -> None:
    # c10 n07: cauda equina syndrome on day 10, marked resolved on day 20; the card said
    # "Improving, no red flag recorded." and never named it
    from tests.engine.builders import neuro, nvo

    values = [crp(0, 150), crp(14, 60), crp(28, 12), pain(0, 7), pain(14, 5), pain(28, 3)]
    deficit = neuro(10, clinical="resolved", abatement=20)
    a = run(values, [nvo(), deficit], order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # only active ones count
    detail = card(a)["detail"]
    assert "no active red flag recorded" in detail
    assert "Now recorded resolved: cauda equina syndrome (day 10, resolved day 20)" in detail
    # one known at diagnosis and resolved is named as such, never dropped (c11 x12)
    early = card(run(values, [nvo(), neuro(1, clinical="resolved", abatement=20)], order_day=29))
    assert "Now recorded resolved: cauda equina syndrome (present at diagnosis" in early["detail"]
    assert "no red flag recorded" not in early["detail"]


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("inactive", "Now recorded inactive: cauda equina syndrome (day 20)."),
        ("remission", "Now recorded in remission: cauda equina syndrome (day 20)."),
    ],
)
def test_a_finding_recorded_inactive_or_in_remission_is_not_called_resolved(
    status: str, said: str
) -> None:
    # an outside clinician's review (h94): a cauda equina syndrome of day 20 recorded
    # inactive read "Now recorded resolved"; FHIR's inactive and remission are other codes
    from tests.engine.builders import neuro, nvo

    values = [crp(0, 150), crp(14, 60), crp(28, 12), pain(0, 7), pain(14, 5), pain(28, 3)]
    detail = card(run(values, [nvo(), neuro(20, clinical=status)], order_day=29))["detail"]
    assert said in detail, detail
    assert "resolved" not in detail
    # one ended on a day says so under its own status, beside one resolved
    both = [nvo(), neuro(20, clinical=status, abatement=25), neuro(10, clinical="resolved")]
    detail = card(run(values, both, order_day=29))["detail"]
    assert f"{said[:-2]}, ended day 25)." in detail, detail
    assert "Now recorded resolved: cauda equina syndrome (day 10)." in detail


def test_a_finding_of_an_earlier_infection_is_said_by_its_dates() -> None:
    """A clinician reviewer read "cauda equina syndrome (present at diagnosis (day -578),
    resolved day -518)" for a syndrome of an infection treated the year before: it is
    said by its dates, before this treatment's start, never "present at diagnosis"."""
    from tests.engine.builders import neuro, nvo

    values = [crp(0, 150), crp(14, 60), crp(28, 12), pain(0, 7), pain(14, 5), pain(28, 3)]
    old = neuro(-578, clinical="resolved", abatement=-518)
    detail = card(run(values, [nvo(), old], order_day=29))["detail"]
    assert (
        "Now recorded resolved: cauda equina syndrome (2022-08-04, 578 days before treatment "
        "start, resolved 2022-10-03)" in detail
    ), detail
    assert "day -" not in detail
