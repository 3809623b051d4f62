"""Applicability: which time we evaluate at, which episode, and whether to answer at all.

Decisions documented here (clinical-rules.md leaves them open):
- Episode: among in-scope NVO Conditions that are active and not refuted, the one with
  the most recent start (onset, else recordedDate); ties broken by reference so the
  answer never depends on input order. An entry whose diagnosis is uncertain
  (provisional, differential, unconfirmed; discitis, unspecified, not confirmed) gives
  way to a certain entry of the same infection (``episode_entries``).
- Level: the one the level rule reads is the infection's, not the chosen entry's: the
  levels its entries name (``infection_levels``, ``Episode.regions``): an order imaging
  one of them is repeat imaging of the infection, one answering a red flag images them
  all, so a tie broken by reference never picks a level.
- Exclusions: any active, valid Condition the value set classes as out of scope
  (tuberculous or brucellar spondylitis, implant-associated infection) excludes the
  patient, alone or beside a pyogenic NVO episode: the evidence covers pyogenic NVO only
  (clinical-rules.md, revised 2026-11-28). The mapper classifies codes; this module reads
  only the category, so a site's own value sets extend the exclusions too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from fhir_mappers.model import AntibioticStart, ConditionCategory, ConditionFact, ImagingOrder

from .assessment import T0_FROM_ANTIBIOTIC, Episode, NotApplicableReason
from .thresholds import RuleSettings

# A Condition that came back after it had resolved: active again, and not the entry it was
# when first recorded (its onset stays the first one's).
RELAPSE_STATUSES = frozenset({"recurrence", "relapse"})
ACTIVE_STATUSES = frozenset({"active"}) | RELAPSE_STATUSES
# No longer active, each its own code: inactive and remission are not resolved.
ENDED_STATUSES = frozenset({"inactive", "remission", "resolved"})
INVALID_VERIFICATION = frozenset({"refuted", "entered-in-error"})
UNCERTAIN_VERIFICATION = frozenset({"provisional", "differential", "unconfirmed"})


def is_active(c: ConditionFact) -> bool:
    """Active/recurrence/relapse, or no clinicalStatus and no abatement (clinical-rules.md).

    Any abatement[x] counts, also one without a time (abatementString "resolved"): the
    record says the condition ended, whether or not it says when.
    """
    if c.clinical_status is None:
        return not c.abatement_present and c.abatement is None
    return c.clinical_status in ACTIVE_STATUSES


def is_valid(c: ConditionFact) -> bool:
    """Not refuted and not entered-in-error."""
    return c.verification_status not in INVALID_VERIFICATION


def counts_now(c: ConditionFact) -> bool:
    return is_active(c) and is_valid(c)


def in_scope_categories(settings: RuleSettings) -> frozenset[ConditionCategory]:
    cats = {ConditionCategory.NVO, ConditionCategory.NVO_UNSPECIFIED}
    if settings.include_other_infective:
        cats.add(ConditionCategory.NVO_OTHER_INFECTIVE)
    return frozenset(cats)


def treatment_start(
    entry: Episode, antibiotics: Sequence[AntibioticStart], settings: RuleSettings
) -> Episode:
    """The episode with its T0: the earliest antibiotic start within [episode date - 14 d,
    episode date + 28 d], else the episode date (clinical-rules.md, 2026-12-06), with the
    orders that start outside that window; the entry's levels kept.

    Antibiotics given for something else long before or after do not move T0; without an
    episode date no window can be drawn, so no antibiotic is taken either (T0 unknown).
    """
    condition, levels = entry.condition, entry.levels
    start = condition.start
    if start is None:
        # the orders on record, none tied to the infection: named on the card, which
        # never says no treatment start is recorded while an order gives one
        undated = tuple(sorted(antibiotics, key=lambda a: (a.when.instant, a.reference)))
        return Episode(condition=condition, t0=None, outside_window=undated, levels=levels)
    first = start.day - timedelta(days=settings.antibiotic_before_days)
    last = start.day + timedelta(days=settings.antibiotic_after_days)
    near = [a for a in antibiotics if first <= a.when.day <= last]
    if not near:
        # the orders on record all start outside the window: named on the card, so that
        # "no antibiotic order found" is never said while one is on record
        outside = tuple(sorted(antibiotics, key=lambda a: (a.when.instant, a.reference)))
        return Episode(condition=condition, t0=start, outside_window=outside, levels=levels)
    earliest = min(near, key=lambda a: (a.when.instant, a.reference))
    return Episode(
        condition=condition,
        t0=earliest.when,
        t0_source=T0_FROM_ANTIBIOTIC,
        antibiotic=earliest,
        levels=levels,
    )


def diagnosis_cutoff(episode: Episode, settings: RuleSettings) -> date | None:
    """The last day a finding counts as known at diagnosis: the later of T0 and the
    episode date, plus ``diagnosis_window_days`` (antibiotics started empirically before
    the diagnostic MRI must not make its findings "new")."""
    days = [w.day for w in (episode.t0, episode.episode_start) if w is not None]
    if not days:
        return None
    return max(days) + timedelta(days=settings.diagnosis_window_days)


# Which order regions image an infected region (clinical-rules.md, "Level", 2026-12-06):
# a junction is seen from either side; the sacrum from a lumbar study. A combined study
# (imaging, 2026-12-06) sees what each of its parts sees: thoracolumbar is thoracic and
# lumbar, lumbosacral is lumbar and sacral.
_SEEN_FROM = {
    "occipito-atlanto-axial": frozenset({"cervical"}),
    "cervical": frozenset({"cervical"}),
    "cervicothoracic": frozenset({"cervical", "thoracic", "thoracolumbar"}),
    "thoracic": frozenset({"thoracic", "thoracolumbar"}),
    "thoracolumbar": frozenset({"thoracic", "lumbar", "thoracolumbar", "lumbosacral"}),
    "lumbar": frozenset({"lumbar", "thoracolumbar", "lumbosacral"}),
    "lumbosacral": frozenset({"lumbar", "thoracolumbar", "lumbosacral", "sacral"}),
    "sacral": frozenset({"lumbar", "thoracolumbar", "lumbosacral", "sacral"}),
}


def covers(order_region: str, infection_region: str | None) -> bool:
    """Whether a study of ``order_region`` images the infection: a whole or unspecified
    spine study always does, and so does any study when the level is unknown,
    unspecified or multiple."""
    if order_region == "spine" or infection_region is None:
        return True
    seen_from = _SEEN_FROM.get(infection_region)
    return seen_from is None or order_region in seen_from


def covers_all(order_region: str, regions: Sequence[str | None]) -> bool:
    """Whether a study of ``order_region`` images every one of ``regions``."""
    return all(covers(order_region, r) for r in regions)


def covers_some(order_region: str, regions: Sequence[str | None]) -> bool:
    """Whether a study of ``order_region`` images one of ``regions`` at least."""
    return any(covers(order_region, r) for r in regions)


def uncertain_diagnosis(c: ConditionFact) -> bool:
    """The entry does not confirm the diagnosis: provisional, differential or unconfirmed,
    or discitis, unspecified (M46.4x) not recorded as confirmed (clinical-rules.md,
    "uncertain-dx")."""
    return c.verification_status in UNCERTAIN_VERIFICATION or cause_unconfirmed(c)


def cause_unconfirmed(c: ConditionFact) -> bool:
    """A discitis entry (M46.4x, unspecified) not recorded as confirmed: the record does
    not confirm an infectious cause."""
    return c.category is ConditionCategory.NVO_UNSPECIFIED and c.verification_status != "confirmed"


def same_infection(a: ConditionFact, b: ConditionFact, settings: RuleSettings) -> bool:
    """Two NVO entries that may share one treatment start: the windows in which each takes
    its first antibiotic order overlap (else they are separate diagnoses, as
    ``findings.separate_diagnoses`` reads them); an undated entry cannot be told apart."""
    if a.start is None or b.start is None:
        return True
    apart = settings.antibiotic_before_days + settings.antibiotic_after_days
    return abs((a.start.day - b.start.day).days) <= apart


def earlier_infection(
    conditions: Iterable[ConditionFact], settings: RuleSettings, episode: Episode
) -> bool:
    """The record holds another valid in-scope NVO entry, active or not, begun before this
    episode and not of the same infection (``same_infection``): an infection a finding
    from before this one may belong to (``findings.known_notes``)."""
    chosen = episode.condition
    if chosen.start is None:
        return False
    cats = in_scope_categories(settings)
    return any(
        c is not chosen
        and c.category in cats
        and is_valid(c)
        and c.start is not None
        and c.start.day < chosen.start.day
        and not same_infection(c, chosen, settings)
        for c in conditions
    )


def episode_entries(
    conditions: Iterable[ConditionFact], settings: RuleSettings
) -> list[ConditionFact]:
    """The in-scope, active, valid NVO Conditions that may mark the episode. An uncertain
    entry (a differential or provisional "discitis") gives way to a certain entry of the
    same infection: a confirmed diagnosis on record is not made unconfirmed by a later
    differential, nor its T0 moved to it (an outside review found "Diagnosis not
    confirmed" on such a record). With only uncertain entries, they stand."""
    cats = in_scope_categories(settings)
    candidates = [c for c in conditions if c.category in cats and counts_now(c)]
    certain = [c for c in candidates if not uncertain_diagnosis(c)]
    return [
        c
        for c in candidates
        if not uncertain_diagnosis(c) or not any(same_infection(c, k, settings) for k in certain)
    ]


# The condition regions from the top of the spine down ("multiple" last): the order in
# which an episode's levels are kept and named.
_TOP_DOWN = (*_SEEN_FROM, "multiple")


def infection_levels(
    entries: Iterable[ConditionFact], chosen: ConditionFact, settings: RuleSettings
) -> tuple[str, ...]:
    """The distinct levels named by the ``episode_entries`` of the chosen entry's infection
    (``same_infection``), from the top down. An infection recorded at two levels (M46.26
    and M46.24 of one day) is infected at each (``Episode.regions``); read from one entry
    alone, the level an order must image, and the whole answer, turned on which entry the
    resource ids chose (a clinician reviewer's re-run)."""
    found = {
        c.region for c in entries if c.region is not None and same_infection(c, chosen, settings)
    }
    return tuple(sorted(found, key=lambda r: (_TOP_DOWN.index(r) if r in _TOP_DOWN else 99, r)))


def choose_episode(conditions: Iterable[ConditionFact], settings: RuleSettings) -> Episode | None:
    """The NVO entry (``episode_entries``) with the most recent start, with the levels of
    its infection."""
    candidates = episode_entries(conditions, settings)
    if not candidates:
        return None

    dated = [(c.start.instant, c.reference, c) for c in candidates if c.start is not None]
    if dated:
        # The most recent start wins; the reference breaks ties so input order never matters.
        chosen = max(dated, key=lambda t: (t[0], t[1]))[2]
    else:
        chosen = max(candidates, key=lambda c: c.reference)
    levels = infection_levels(candidates, chosen, settings)
    return Episode(condition=chosen, t0=chosen.start, levels=levels)


def other_episode_starts(
    conditions: Iterable[ConditionFact], settings: RuleSettings, chosen: Episode
) -> list[Episode]:
    """The other active in-scope NVO Conditions whose start is a different day.

    Several active NVO Conditions may be entries of one episode (an encounter diagnosis
    recorded later) or a stale entry of an old one: which start is T0 cannot be known,
    so the caller evaluates from each and keeps the most cautious answer.
    """
    chosen_day = chosen.t0.day if chosen.t0 is not None else None
    seen = {chosen_day}
    others = []
    entries = episode_entries(conditions, settings)
    for c in sorted(entries, key=lambda c: c.reference):
        start = c.start
        if start is None or start.day in seen:
            continue
        seen.add(start.day)
        # the levels of the infection, not of the entry the reference picked on this day
        others.append(Episode(condition=c, t0=start, levels=infection_levels(entries, c, settings)))
    return others


def applicability(
    orders: Sequence[ImagingOrder], conditions: Sequence[ConditionFact], settings: RuleSettings
) -> tuple[Episode | None, NotApplicableReason | None]:
    """The episode to assess, or why the service does not apply."""
    if not orders:
        return None, NotApplicableReason.NO_SPINE_ORDER
    excluded = any(
        c.category is ConditionCategory.OUT_OF_SCOPE and counts_now(c) for c in conditions
    )
    episode = choose_episode(conditions, settings)
    if excluded:
        reason = (
            NotApplicableReason.NON_PYOGENIC_ONLY
            if episode is None
            else NotApplicableReason.EXCLUDED_INFECTION
        )
        return None, reason
    if episode is None:
        return None, NotApplicableReason.NO_EPISODE
    return episode, None
