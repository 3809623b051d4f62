"""A finding found with one NVO entry's diagnosis is not new under another entry's start.

Several active NVO entries with different starts: which one marks the treatment start is
unknown, so the rules run from each and the most cautious answer is shown (a later entry
of the same episode must never hide a red flag). But an entry from years before, never
closed, made the cauda equina syndrome found the day after the current infection was
diagnosed "new (day 901)": an emergency card, where clinical-rules.md says a deficit
known at diagnosis gives no urgent card on its own.

The rule: two entries whose T0 windows (the episode date - 14 days to + 28 days, in which
each takes its first antibiotic order) do not overlap cannot share one treatment start;
each is a diagnosis of its own. A deficit or complication dated within such an entry's
diagnosis span (from the earlier of its T0 and its date to 3 days after the later) was
found with that diagnosis: known at diagnosis, whichever start is read. Entries whose
windows overlap are read as before.

Days are counted from T0 = 2024-03-04 (builders.T0).
"""

from __future__ import annotations

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation
from tests.engine.builders import antibiotic, complication, improving, neuro, nvo, run


def rules(a: Assessment) -> list[str]:
    return [f.rule_id for f in a.rules_fired]


def codes(a: Assessment) -> set[str]:
    return {r.code for r in (*a.missing, *a.notes)}


STALE = -900  # an entry from about two and a half years before, never closed


def test_a_deficit_found_the_day_after_the_current_diagnosis_is_not_new_under_an_old_entry() -> (
    None
):
    # The tester's k03.
    conditions = [nvo(onset=STALE, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    a = run(improving(), [*conditions, neuro(onset=1)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "neuro" not in rules(a)
    assert {"known-deficit", "several-episode-starts"} <= codes(a)
    assert a.figures.days_since_t0 == 29  # counted from the current entry, not day 929
    (known,) = [r for r in a.missing if r.code == "known-deficit"]
    assert "day 901" not in phrase(known).message


def test_an_abscess_found_with_the_current_diagnosis_keeps_advise_against_under_an_old_entry() -> (
    None
):
    conditions = [nvo(onset=STALE, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    a = run(improving(), [*conditions, complication(onset=2)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert {"known-at-diagnosis", "known-abscess"} <= codes(a)


def test_the_current_diagnosis_window_ends_three_days_after_its_start() -> None:
    conditions = [nvo(onset=STALE, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    on_day_3 = run(improving(), [*conditions, neuro(onset=3)])
    assert on_day_3.recommendation is Recommendation.INSUFFICIENT_DATA
    on_day_4 = run(improving(), [*conditions, neuro(onset=4)])
    assert on_day_4.recommendation is Recommendation.SUPPORT_URGENT


def test_the_span_starts_at_the_first_antibiotic_order_when_it_precedes_the_entry() -> None:
    # Cefazolin from day -5, the current entry dated day 0: that episode began on day -5;
    # a deficit from day -3 was found with it.
    conditions = [nvo(onset=STALE, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    a = run(improving(), [*conditions, neuro(onset=-3)], antibiotics=[antibiotic(-5, "cefazolin")])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "known-deficit" in codes(a)


def test_entries_that_can_share_a_treatment_start_are_still_read_from_each_start() -> None:
    # The earlier entry 43 days before the current one: the windows [-57, -15] and
    # [-14, 28] do not overlap: two diagnoses, the deficit of day 1 found with the second.
    apart = [nvo(onset=-43, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    a = run(improving(), [*apart, neuro(onset=1)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    # 42 days before: the windows [-56, -14] and [-14, 28] share day -14, one treatment
    # start could serve both: one episode, and from the earlier start day 1 is day 43,
    # after its diagnosis window: new.
    sharing = [nvo(onset=-42, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    b = run(improving(), [*sharing, neuro(onset=1)])
    assert b.recommendation is Recommendation.SUPPORT_URGENT
    # A second entry of the same course (day 20, as an encounter diagnosis recorded on
    # readmission) still cannot hide a deficit found the next day.
    course = [nvo(onset=0, ref="Condition/first"), nvo(onset=20, ref="Condition/again")]
    c = run(improving(), [*course, neuro(onset=21)], order_day=29)
    assert c.recommendation is Recommendation.SUPPORT_URGENT


def test_a_finding_before_the_other_entry_s_episode_began_is_still_judged_from_each_start() -> None:
    # The deficit dated 10 days before the current entry (and before any antibiotic): it
    # cannot be placed with the current diagnosis rather than with the old entry's
    # treatment, so the most cautious reading stands (missing a red flag is the worse
    # error). The abscess of day 1, found with the current diagnosis, is known in it.
    conditions = [nvo(onset=STALE, ref="Condition/old"), nvo(onset=0, ref="Condition/now")]
    abscess = complication(onset=1, ref="Condition/abscess")
    a = run(improving(), [*conditions, neuro(onset=-10), abscess])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert rules(a) == ["neuro"]
    assert [c.reference for c in a.known] == ["Condition/abscess"]
