"""What the record says of the infection's course that its treatment start cannot hold:
a relapse or recurrence recorded on its Condition, a treatment start the record does not
hold to a day of treatment, a new infected level recorded while it is treated, and
bacteraemia recorded while it is treated. Each blocks advise-against (``course_remarks``).

A relapse or recurrence (``clinicalStatus``).

The treatment start is read from the Condition's own date (clinical-rules.md, "T0"),
which a relapse recorded on the original entry leaves at the first course, months back:
the CRP baseline, the 28-day marks and the fall are then those of the first course, and a
relapse whose CRP is falling slowly read "improving" against it (an outside clinician's
review, 2026-12-07: "CRP 150→70 mg/L, -53%" on day 229, while the relapse course's CRP
had gone 120→70 mg/L by its day 28). The design notes take relapse and recurrence as
active and say nothing of their treatment start, so the service does not advise against
imaging on a relapse whose record holds an antibiotic order started after the first
course's window: the card says the courses cannot be told apart and names that order
(the service's own reading, to be confirmed by the clinical reviewers). Without such an
order the Condition's date is the course's own (a recurrence recorded as a new entry, or
the only course on record), and the relapse is read as any episode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from fhir_mappers.model import (
    AntibioticStart,
    ConditionCategory,
    ConditionFact,
    ImagingOrder,
    When,
)

from .assessment import T0_FROM_EPISODE, Episode, Remark
from .episode import (
    RELAPSE_STATUSES,
    counts_now,
    covers,
    episode_entries,
    in_scope_categories,
    infection_levels,
    is_valid,
)
from .findings import condition_facts, ended_facts
from .records import antibiotic_to_dict
from .thresholds import RuleSettings


def course_remarks(
    episode: Episode,
    conditions: Sequence[ConditionFact],
    antibiotics: Sequence[AntibioticStart],
    orders: Sequence[ImagingOrder],
    cutoff: date | None,
    settings: RuleSettings,
    start_unclear: Remark | None,
) -> list[Remark]:
    """The remarks that keep this reading from advising against imaging;
    ``start_unclear``: ``treatment_start_unclear``'s, judged once by the caller, which
    also keeps the markers rule from a start not held to a day."""
    found = (
        relapse_recorded(episode, antibiotics, settings),
        start_unclear,
        new_level(episode, conditions, orders, cutoff, settings),
        bacteraemia_on_treatment(episode, conditions, cutoff),
    )
    return [r for r in found if r is not None]


def relapse_recorded(
    episode: Episode, antibiotics: Sequence[AntibioticStart], settings: RuleSettings
) -> Remark | None:
    """The remark that blocks advise-against on a relapse or recurrence whose record
    holds an antibiotic order started after the window in which the first course's start
    is read (the first such order is named): only then may T0 be the first course's."""
    status = episode.condition.clinical_status
    if status not in RELAPSE_STATUSES:
        return None
    start = episode.episode_start
    if start is None:
        return None
    later = _started_after_window(start, antibiotics, settings)
    if not later:
        # the Condition's date is this course's (a recurrence recorded as a new entry,
        # or the only course on record): the record tells the courses apart (an outside
        # clinician's re-run saw the rule fire there, and disown a count that was right)
        return None
    data = {"status": status, "since": start.day.isoformat()}
    return Remark("relapse-recorded", {**data, "laterOrder": antibiotic_to_dict(later[0])})


def treatment_start_unclear(
    episode: Episode, antibiotics: Sequence[AntibioticStart], settings: RuleSettings
) -> Remark | None:
    """The remark that blocks advise-against when T0 is the infection's own date and the
    record says treatment may have begun elsewhere: an antibiotic order started after the
    window in which T0 is read (the first such order is named), or a date known only to
    the month or year, which has no day of treatment to count from.

    The rules take T0 from the episode date when no antibiotic order starts within the
    window, and say that date is often when symptoms began, weeks before antibiotics
    (clinical-rules.md, "T0"). An outside clinician's review found the consequence: onset
    6 weeks before diagnosis, the first antibiotic 43 days after it, and a CRP of 250 from
    the emergency visit before treatment taken as the baseline, so a course of 160->120
    mg/L on treatment (a slow fall) read "improving (CRP 250->120 mg/L, -52%)"; and an
    onset recorded as the year alone made 1 January T0 and a CRP from January the
    baseline. The service's own reading, to be confirmed by the clinical reviewers: red
    flags still fire; only the advice against imaging waits for a treatment start the
    record holds to a day. A relapse with a later order is ``relapse_recorded``'s."""
    start = episode.t0
    if start is None or episode.t0_source != T0_FROM_EPISODE:
        return None
    later = _started_after_window(start, antibiotics, settings)
    data: dict[str, Any] = {"since": start.shown}
    if later:
        data["laterOrder"] = antibiotic_to_dict(later[0])
        data["windowDays"] = settings.antibiotic_after_days
    if start.partial is not None:
        # first: "more than 28 days later" than a month or a year says nothing
        data["partial"] = start.partial
    elif not later or episode.condition.clinical_status in RELAPSE_STATUSES:
        return None  # (a relapse's later order is said by relapse_recorded)
    return Remark("treatment-start-unclear", data)


def _started_after_window(
    start: When, antibiotics: Sequence[AntibioticStart], settings: RuleSettings
) -> list[AntibioticStart]:
    """The antibiotic orders started after the last day on which one would have been read
    as the treatment start of an infection dated ``start``, earliest first."""
    window_end = start.day + timedelta(days=settings.antibiotic_after_days)
    return sorted(
        (a for a in antibiotics if a.when.day > window_end),
        key=lambda a: (a.when.instant, a.reference),
    )


def new_level(
    episode: Episode,
    conditions: Sequence[ConditionFact],
    orders: Sequence[ImagingOrder],
    cutoff: date | None,
    settings: RuleSettings,
) -> Remark | None:
    """Another active entry of the infection, at a level none of the orders images, begun
    after this reading's diagnosis window (``cutoff``): a new level on treatment may be
    spread or failure, and the study ordered does not show it. The service reads every
    entry's start as a possible treatment start (``evaluate.assess``), and from the new
    entry's start the order misses the infection, so that reading gives no card: without
    this remark the first entry's reading advised against imaging, the new level unnamed
    (an outside clinician's review, 2026-12-07: a thoracic entry on day 22 of a lumbar
    infection, a lumbar MRI ordered). The service's own reading, to be confirmed by the
    clinical reviewers. The level treated is that of every entry of the infection known by
    the cutoff, "multiple" when they name more than one: not the level of the entry the
    resource ids chose among two of one day."""
    if cutoff is None:
        return None
    known = [c for c in episode_entries(conditions, settings) if not _begun_after(c, cutoff)]
    treated = infection_levels(known, episode.condition, settings)
    if not treated:
        return None
    cats = in_scope_categories(settings)
    for c in sorted(conditions, key=lambda c: c.reference):
        if c.category not in cats or not counts_now(c) or c.region is None:
            continue
        if not _begun_after(c, cutoff):
            continue
        if any(covers(o.region, c.region) for o in orders):
            continue
        data = {
            "condition": condition_facts(c, episode.t0.day if episode.t0 else None),
            "region": c.region,
            "infectionRegion": "multiple" if len(treated) > 1 else treated[0],
        }
        if len(treated) > 1:
            data["infectionLevels"] = list(treated)
        return Remark("new-level-on-treatment", data)
    return None


def bacteraemia_on_treatment(
    episode: Episode, conditions: Sequence[ConditionFact], cutoff: date | None
) -> Remark | None:
    """A valid bacteraemia Condition dated after the diagnosis window, active or since
    resolved: bacteria in the blood on treatment is no favourable response (IDSA 2015:
    follow-up MRI when the response is poor), and clearing two days later does not make
    the course favourable (an outside clinician's re-run: one resolved on day 27 still read
    "improving"), so no advise-against; the card names it (and when it resolved), instead
    of listing "persisting fever or bacteraemia" among what would change its advice while
    one is on record (an outside clinician's review, 2026-12-07). One recorded at
    diagnosis, or undated, is the diagnosis's own. The service's own reading, to be confirmed by the
    clinical reviewers; the code list holds ICD-10-CM R78.81 (a site adds its own)."""
    found = _in_order_begun_after(
        (c for c in conditions if c.category is ConditionCategory.BACTERAEMIA and is_valid(c)),
        cutoff,
    )
    if not found:
        return None
    t0_day = episode.t0.day if episode.t0 is not None else None
    first = found[0]
    facts = condition_facts(first, t0_day)
    if not counts_now(first):
        facts.update(ended_facts(first, t0_day))  # named by the status recorded
    return Remark("bacteraemia-on-treatment", {"condition": facts})


def course_notes(
    conditions: Sequence[ConditionFact], cutoff: date | None, t0_day: date | None
) -> list[Remark]:
    """The notes every card carries about the course: the new diagnoses the service does
    not read, and a bacteraemia found with the infection and still recorded active."""
    found = (
        new_diagnoses_not_read(conditions, cutoff, t0_day),
        bacteraemia_still_recorded(conditions, cutoff, t0_day),
    )
    return [r for r in found if r is not None]


def bacteraemia_still_recorded(
    conditions: Sequence[ConditionFact], cutoff: date | None, t0_day: date | None
) -> Remark | None:
    """A valid bacteraemia Condition found with the infection (dated within the diagnosis
    window, or undated) and still recorded active: named, with a request to confirm that
    blood cultures have cleared. An outside clinician's review found an advice against
    imaging that listed "persisting fever or bacteraemia" among what would change it,
    silent over a bacteraemia of day 0 still active on day 29. Not a block on its own:
    an entry found at diagnosis is often left active after the cultures clear, which the
    service cannot read (the service's own reading, to be confirmed by the clinical
    reviewers; one begun on treatment is ``bacteraemia_on_treatment``'s)."""
    found = sorted(
        (
            c
            for c in conditions
            if c.category is ConditionCategory.BACTERAEMIA
            and counts_now(c)
            and not (cutoff is not None and _begun_after(c, cutoff))
        ),
        key=lambda c: c.reference,
    )
    if not found:
        return None
    return Remark("bacteraemia-still-recorded", {"condition": condition_facts(found[0], t0_day)})


# How many new diagnoses the service does not read a card names (the rest are counted).
NEW_NOT_READ_SHOWN = 3


def new_diagnoses_not_read(
    conditions: Sequence[ConditionFact], cutoff: date | None, t0_day: date | None
) -> Remark | None:
    """Active, valid diagnoses recorded after the diagnosis window that no value set
    reads: a card never says "no red flag recorded" over them, and names them, so that a
    new deficit coded outside the lists (a neurogenic bladder and a foot drop on day 24 of
    a lumbar infection) is seen (an outside clinician's re-run, 2026-12-07). Named, not
    judged: the service cannot tell a new deficit from a new unrelated diagnosis. One
    dated only to a month or a year that may end after the window is named too (a
    re-check: a urinary retention with onset "2026-10" was left out, and the card read
    "no red flag recorded")."""
    found = _in_order_begun_after(
        (c for c in conditions if c.category is ConditionCategory.OTHER and counts_now(c)),
        cutoff,
        may_have=True,
    )
    if not found:
        return None
    shown = [condition_facts(c, t0_day) for c in found[:NEW_NOT_READ_SHOWN]]
    return Remark("new-diagnoses-not-read", {"conditions": shown, "count": len(found)})


def _begun_after(c: ConditionFact, cutoff: date) -> bool:
    """Dated to the day (a month or a year is not), after the diagnosis window."""
    return c.start is not None and c.start.partial is None and c.start.day > cutoff


def _in_order_begun_after(
    conditions: Iterable[ConditionFact], cutoff: date | None, may_have: bool = False
) -> list[ConditionFact]:
    """Those ``_begun_after`` the cutoff (``may_have``: or dated to a month or year that
    ends after it), earliest first (ties by reference); none without a cutoff (no
    diagnosis window: nothing can be told as begun after it)."""
    if cutoff is None:
        return []
    found = [
        c
        for c in conditions
        if _begun_after(c, cutoff)
        or (may_have and c.start is not None and c.start.partial and c.start.last_day > cutoff)
    ]
    return sorted(found, key=lambda c: (c.start.instant if c.start else date.min, c.reference))
