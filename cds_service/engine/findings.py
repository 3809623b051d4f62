"""What was known at diagnosis, and whether the order images the infected level.

clinical-rules.md (revised 2026-12-06): a deficit or complication found with the
infection is named on every card with its date, never dropped and never a "new" red
flag; a known deficit leaves the decision to the neurologic exam; a known abscess keeps
advise-against with the undrained-abscess line. An order that misses the infected level
is named with both levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from fhir_mappers.model import ConditionCategory, ConditionFact, ImagingOrder, SpineSurgery

from .assessment import Episode, Remark
from .episode import (
    ENDED_STATUSES,
    RELAPSE_STATUSES,
    UNCERTAIN_VERIFICATION,
    counts_now,
    covers,
    covers_some,
)
from .thresholds import RuleSettings


def clinical_label(c: ConditionFact) -> str | None:
    """The condition's clinical name as the record gives it: the value set's name for its
    code, else the record's display; None when it has neither."""
    if c.name:
        return c.name
    for code in c.codes:
        if code.display and code.display.strip():
            return code.display.strip()
    return None


def label_or_code(c: ConditionFact) -> str:
    """What a condition is called in the data, for matching words in it ("abscess")."""
    return clinical_label(c) or (c.codes[0].code if c.codes else "")


def latest_start(c: ConditionFact) -> date | None:
    """The last day a finding may have begun: its onset's day (else its recordedDate's).

    A month or a year ("2026-09") is the whole period, so its last day, unless a full
    recordedDate inside that period says it was on record earlier (a finding is recorded
    no earlier than it begins): the record then places it more precisely. A recordedDate
    outside the onset's period contradicts it and is not used. None when undated.
    """
    onset, recorded = c.onset, c.recorded
    if onset is None:
        return None if recorded is None else recorded.last_day
    if onset.partial is None:
        return onset.day
    if recorded is not None and recorded.partial is None:
        if onset.day <= recorded.day <= onset.last_day:
            return recorded.day
    return onset.last_day


def condition_facts(c: ConditionFact, t0_day: date | None) -> dict[str, Any]:
    """What a sentence about a condition is made from: its clinical name (else its first
    code), the date it was first dated (onset, else recordedDate) as the record holds it
    and, with a treatment start, that date's day of treatment, whether it was there when
    treatment started (``atStart``: on or before T0), and the later recording day of one
    that was. A month or a year ("2026-09") has no day of treatment: it is ``partial``,
    with the last day it allows (``latestDate``) and the day it was recorded, if known."""
    out: dict[str, Any] = {}
    label = clinical_label(c)
    if label:
        out["name"] = label
    elif c.codes:
        out["code"] = c.codes[0].code
    if c.verification_status in UNCERTAIN_VERIFICATION:
        # still a finding (missing a red flag is the worse error), but the card says the
        # record does not confirm it (a clinician reviewer: a provisional paraplegia read
        # as a certain one)
        out["verification"] = c.verification_status
    if c.clinical_status in RELAPSE_STATUSES:
        # came back after it had resolved: its date is the first one's, not when it came
        # back (``rules.is_known_at_diagnosis``), so never "present at diagnosis"
        out["recurred"] = c.clinical_status
    first = c.start
    if first is not None:
        out["date"] = first.shown
    if t0_day is None:
        return out
    if first is None:
        out["undated"] = True
        return out
    if first.partial is not None:
        latest = latest_start(c)
        assert latest is not None  # dated
        out["partial"] = True
        out["latestDate"] = latest.isoformat()
        if c.onset is not None and c.recorded is not None and c.recorded.partial is None:
            out["recordedDay"] = (c.recorded.day - t0_day).days
        return out
    out["day"] = (first.day - t0_day).days
    out["atStart"] = first.day <= t0_day and "recurred" not in out
    if c.onset is None:
        # dated by its recordedDate alone: the day it was recorded, not the day it began
        # (a clinician reviewer read "New cauda equina syndrome (day 4)" for a deficit
        # recorded on day 4 with no onset)
        out["recordedOnly"] = True
    recorded = c.recorded.day if c.recorded is not None else None
    if out["atStart"] and recorded is not None and recorded > t0_day:
        out["recordedDay"] = (recorded - t0_day).days
    return out


def ended_facts(c: ConditionFact, t0_day: date | None) -> dict[str, Any]:
    """How a finding no longer active is recorded: its clinicalStatus (``status``:
    inactive, remission or resolved, FHIR's three codes for it, none when only an
    abatement says it ended) and, with a treatment start, the day it ended (``endedDay``,
    with its date). The card says the status recorded: an outside clinician saw a cauda
    equina syndrome recorded inactive shown as "now recorded resolved"."""
    out: dict[str, Any] = {"ended": True}
    if c.clinical_status in ENDED_STATUSES:
        out["status"] = c.clinical_status
    if c.abatement is not None and t0_day is not None and c.abatement.partial is None:
        out["endedDay"] = (c.abatement.day - t0_day).days
        out["endedDate"] = c.abatement.day.isoformat()
    return out


# From the earlier of T0 and the episode date to the last day of the diagnosis window.
DiagnosisSpan = tuple[date, date]

# The findings the rules date against the diagnosis window (known at diagnosis, new or
# now resolved), in the order cards name them.
FINDING_CATEGORIES = (
    ConditionCategory.NEURO_DEFICIT,
    ConditionCategory.COMPLICATION,
    ConditionCategory.MECHANICAL,
)


def diagnosis_span(episode: Episode, settings: RuleSettings) -> DiagnosisSpan | None:
    """The days an NVO entry's diagnosis covers: from the earlier of its T0 and its date
    (the start of that episode) to ``diagnosis_window_days`` after the later of them."""
    days = [w.day for w in (episode.t0, episode.episode_start) if w is not None]
    if not days:
        return None
    return min(days), max(days) + timedelta(days=settings.diagnosis_window_days)


def separate_diagnoses(
    reading: Episode, entries: Sequence[Episode], settings: RuleSettings
) -> tuple[DiagnosisSpan, ...]:
    """The diagnosis spans of the active NVO entries that cannot be entries of the episode
    read from ``reading``: one treatment start cannot serve both, because the windows in
    which each takes its first antibiotic order (episode date - ``antibiotic_before_days``
    to + ``antibiotic_after_days``, clinical-rules.md "T0") do not overlap. Such an entry
    is another diagnosis of the infection (an old entry never closed, or a new episode).
    """
    start = reading.episode_start
    if start is None:
        return ()
    apart = settings.antibiotic_before_days + settings.antibiotic_after_days
    spans = []
    for entry in entries:
        other = entry.episode_start
        if other is None or abs((other.day - start.day).days) <= apart:
            continue
        span = diagnosis_span(entry, settings)
        if span is not None:
            spans.append(span)
    return tuple(spans)


def found_with_another_diagnosis(
    conditions: Sequence[ConditionFact], cutoff: date | None, spans: Sequence[DiagnosisSpan]
) -> frozenset[ConditionFact]:
    """The active, valid deficits and complications not known at this reading's diagnosis
    whose whole date lies within the diagnosis span of a separate NVO entry: found with
    that diagnosis, so known at diagnosis whichever entry is read as the episode."""
    found = set()
    for c in conditions:
        if c.category not in FINDING_CATEGORIES or not counts_now(c) or c.start is None:
            continue
        latest = latest_start(c)
        assert latest is not None  # dated
        if cutoff is not None and latest <= cutoff:
            continue  # known at this reading's own diagnosis already
        if any(low <= c.start.day and latest <= high for low, high in spans):
            found.add(c)
    return frozenset(found)


def with_known(
    known: Sequence[ConditionFact], more: frozenset[ConditionFact]
) -> tuple[ConditionFact, ...]:
    """Both sets of findings known at diagnosis, in the order cards name them."""
    if not more:
        return tuple(known)
    every = set(known) | more
    return tuple(sorted(every, key=lambda c: (FINDING_CATEGORIES.index(c.category), c.reference)))


def is_abscess(c: ConditionFact) -> bool:
    """A complication whose clinical name says abscess (epidural, intraspinal, psoas)."""
    return c.category is ConditionCategory.COMPLICATION and "abscess" in label_or_code(c).lower()


# Words of an abscess outside the spinal canal and the posterior spine (as "abscess" in
# ``is_abscess``; conditions-imaging.json's psoas and retroperitoneal abscesses): the
# drainages in procedures.json (posterior spine, extradural, and corpectomy) do not drain
# them, so none is ever called their drainage (a re-check: a psoas abscess read "drained
# day 22 (vertebral corpectomy)", and lost the advice to drain it).
NOT_DRAINED_BY_SPINE_SURGERY = ("psoas", "retroperitoneal")


def drained_elsewhere(c: ConditionFact) -> bool:
    """An abscess no spine drainage the service reads can drain (``NOT_DRAINED_BY_...``)."""
    said = label_or_code(c).lower()
    return any(word in said for word in NOT_DRAINED_BY_SPINE_SURGERY)


def drainage_after(
    abscesses: Sequence[ConditionFact], surgeries: Sequence[SpineSurgery], t0_day: date | None
) -> dict[str, Any] | None:
    """The drainage of these abscesses, when the record holds one: the first drainage or
    debridement (``kind`` "debridement" in procedures.json) performed on or after the last
    day each abscess may have begun (``latest_start``), with its name, its date and, with
    a treatment start, its day. None when an abscess is undated, or no drainage is dated
    on or after it: one that cannot be placed after the abscess may have drained an
    earlier collection, and a card that calls an abscess drained drops the advice to
    drain it. Judged once, for a new abscess and one known at diagnosis alike (an outside
    clinician's review: an abscess of day 20, drained on day 22, was still told "consider
    drainage"; the service's own reading, to be confirmed by the clinical reviewers)."""
    if any(drained_elsewhere(c) for c in abscesses):
        return None
    starts = [latest_start(c) for c in abscesses]
    dated = [d for d in starts if d is not None]
    if not dated or len(dated) < len(starts):
        return None
    since = max(dated)
    after = [
        (s.when, s.name)
        for s in surgeries
        if s.kind == "debridement" and s.when is not None and s.when.day >= since
    ]
    if not after:
        return None
    when, name = min(after, key=lambda pair: pair[0].instant)
    out: dict[str, Any] = {"name": name, "date": when.shown}
    if t0_day is not None and when.partial is None:
        out["day"] = (when.day - t0_day).days
    return out


def known_notes(
    known: Sequence[ConditionFact],
    episode: Episode,
    surgeries: Sequence[SpineSurgery] = (),
    before_days: int | None = None,
) -> list[Remark]:
    """One line naming every finding known at diagnosis with its date; for a known
    abscess, the undrained-abscess line (Park 2016), which names a drainage or
    debridement recorded on or after it (``drainage_after``; an outside clinician's
    review: a drained abscess still read "if the abscess was not drained").

    With ``before_days`` (given when the record holds an earlier infection,
    ``episode.earlier_infection``), a finding that began more than that many days (the
    antibiotic window, ``antibiotic_before_days``) before the infection's own date is
    marked ``beforeEpisode``: still active, so not new, but not "recorded at diagnosis"
    either (an outside clinician saw an abscess of an infection three years before called
    so, with this one's undrained-abscess advice). Without an earlier infection on record
    a finding dated weeks before is read as this one's: diagnosis often comes late (the
    clinician's re-run)."""
    if not known:
        return []
    t0_day = episode.t0.day if episode.t0 is not None else None
    start = episode.episode_start
    cutoff = (
        start.day - timedelta(days=before_days)
        if start is not None and before_days is not None
        else None
    )

    def before(c: ConditionFact) -> bool:
        last = latest_start(c)
        return cutoff is not None and last is not None and last < cutoff

    listed = []
    for c in known:
        facts = condition_facts(c, t0_day)
        if before(c):
            facts["beforeEpisode"] = True
        listed.append(facts)
    notes = [Remark("known-at-diagnosis", {"conditions": listed})]
    abscesses = [c for c in known if is_abscess(c) and not before(c)]
    if abscesses:
        drainage = drainage_after(abscesses, surgeries, t0_day)
        data: dict[str, Any] = {} if drainage is None else {"drainage": drainage}
        notes.append(Remark("known-abscess", data))
    return notes


def known_deficit(known: Sequence[ConditionFact]) -> ConditionFact | None:
    """The deficit known at diagnosis that the card names (the first, in reference order)."""
    return next((c for c in known if c.category is ConditionCategory.NEURO_DEFICIT), None)


def known_deficit_remark(deficit: ConditionFact, episode: Episode, window_days: int) -> Remark:
    """A deficit known at diagnosis: the service cannot see whether the exam changed, so
    the decision rests on it (insufficient-data, never advise-against, never urgent).
    ``onsetOnTreatment``: its onset is after treatment started, inside the diagnosis
    window: read as found with the infection by the rules, but the card says that if it
    was not there at diagnosis it is new (an outside clinician's review: a cauda equina
    syndrome with onset on day 3 of antibiotics read only "known since diagnosis")."""
    t0_day = episode.t0.day if episode.t0 is not None else None
    data: dict[str, Any] = {"condition": condition_facts(deficit, t0_day)}
    onset = deficit.onset
    if t0_day is not None and onset is not None and onset.partial is None and onset.day > t0_day:
        data["onsetOnTreatment"] = True
        data["windowDays"] = window_days
    return Remark("known-deficit", data)


def level_note(
    orders: Sequence[ImagingOrder], covering: Sequence[str], episode: Episode, red_flag: bool
) -> Remark | None:
    """The orders that do not image every infected level (``covering``: those that do),
    named with both levels; with a red flag the card also says what to image, without one
    they are only named as outside the infection (clinical-rules.md, "Level of the
    infection and of the order"). An infection its entries put at several levels has them
    all named (``levels``)."""
    missed = [o for o in orders if o.reference not in covering]
    region = episode.region
    if not missed or region is None:
        return None
    data: dict[str, Any] = {"region": region, "studies": _studies(missed), "redFlag": red_flag}
    if len(episode.regions) > 1:
        data["levels"] = list(episode.regions)
        # each missed order images one of the levels (else none: the card says which)
        data["partly"] = all(covers_some(o.region, episode.regions) for o in missed)
    return Remark("order-misses-level", data)


def deficit_level_note(
    orders: Sequence[ImagingOrder], deficits: Sequence[ConditionFact], regions: Sequence[str | None]
) -> Remark | None:
    """A new deficit whose code fixes its own level (cauda equina syndrome: lumbosacral)
    apart from the infection's: the orders that do not image that level. A deficit code
    without a level takes the infection's, which ``level_note`` already compares."""
    for deficit in deficits:
        if deficit.region is None or deficit.region in regions:
            continue
        missed = [o for o in orders if not covers(o.region, deficit.region)]
        if missed:
            return Remark(
                "order-misses-deficit-level",
                {
                    "region": deficit.region,
                    "condition": condition_facts(deficit, None),
                    "studies": _studies(missed),
                },
            )
    return None


def _studies(orders: Sequence[ImagingOrder]) -> list[dict[str, str]]:
    """The studies ordered, each region and modality once, in a stable order."""
    pairs = sorted({(o.region, o.modality.value) for o in orders})
    return [{"region": r, "modality": m} for r, m in pairs]
