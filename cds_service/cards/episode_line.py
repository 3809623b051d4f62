"""The card's episode line: the infection, where its treatment start (T0) came from, and
the day of treatment the order falls on (clinical-rules.md, "T0, the treatment start",
2026-12-06)."""

from __future__ import annotations

from cds_service.cards import text
from cds_service.cards.level_phrases import at_levels
from cds_service.cards.safe_text import quote
from cds_service.cards.words import count_of, upper_first, verification_words
from cds_service.engine import sources
from cds_service.engine.assessment import (
    NO_ORDER,
    ORDERS_NOT_COUNTED,
    T0_FROM_ANTIBIOTIC,
    UNDATED_ORDERS,
    Assessment,
)
from cds_service.engine.episode import UNCERTAIN_VERIFICATION, cause_unconfirmed


def episode_line(a: Assessment) -> str:
    """The infection, where its treatment start came from and the order's day."""
    ep = a.episode
    name = upper_first(text.DISEASE)
    if ep is not None and len(ep.levels) > 1:
        # held to each of its levels: the card names every one, never only the one of the
        # entry the resource ids chose
        name = f"{name} {at_levels(ep.levels)}"
    if ep is not None and ep.condition.verification_status in UNCERTAIN_VERIFICATION:
        # what the record shows, not a confirmed disease (clinical-rules.md, "What a card
        # should say"): "..., a provisional diagnosis, recorded from ..."
        name = f"{name}, {verification_words(ep.condition.verification_status)}"
    elif ep is not None and cause_unconfirmed(ep.condition):
        # a discitis code with no confirmed infectious cause: the summary says "Diagnosis
        # not confirmed", and a clinician reviewer read this line, naming the disease
        # alone, as its contradiction
        name = f"{name}, infectious cause not confirmed"
    if ep is not None and ep.t0 is None and ep.outside_window:
        # an antibiotic order gives a start, but no window can tie it to an undated
        # diagnosis: said so, never "treatment start not recorded" (an outside review)
        first = ep.outside_window[0]
        more = len(ep.outside_window) - 1
        others = f" (and {count_of(more, 'other antibiotic order')})" if more else ""
        return (
            f"{name}, diagnosis undated: the {quote(first.name)} order started "
            f"{first.when.day.isoformat()}{others} is on record, but without a diagnosis "
            "date it cannot be tied to this infection as its treatment start."
        )
    if ep is None or ep.t0 is None:
        return f"{name}; treatment start not recorded."
    day = a.figures.days_since_t0
    return (
        f"{name}, {t0_phrase(a)}; order on day {day} ({a.evaluation_day.isoformat()})."
        + _outside_window(a)
    )


def t0_phrase(a: Assessment) -> str:
    """Where T0 came from, never "treatment started" for a coded onset (clinical-rules.md,
    2026-12-06)."""
    ep = a.episode
    assert ep is not None and ep.t0 is not None
    if ep.t0_source == T0_FROM_ANTIBIOTIC and ep.antibiotic is not None:
        return (
            f"treatment started {ep.t0.day.isoformat()} (first antibiotic order: "
            f"{quote(ep.antibiotic.name)})"
        )
    if sources.ANTIBIOTICS in a.unavailable:
        why = "antibiotic orders could not be read"
    elif ep.outside_window:
        s = a.settings
        why = (
            f"no antibiotic order started from {count_of(s.antibiotic_before_days, 'day')} "
            f"before to {count_of(s.antibiotic_after_days, 'day')} after that date"
        )
    else:
        why = _none_counted(a)
    if ep.t0.partial is not None:
        # "2026-10" is a month, not its first day: said as recorded, with the day counted
        # from (a clinician reviewer read "recorded from 2026-10-01", a day the record does
        # not hold, as the diagnosis's date)
        lacks = "a day" if ep.t0.partial == "month" else "a month or a day"
        return (
            f"recorded from {ep.t0.shown}, a {ep.t0.partial} without {lacks} ({why}; its "
            f"first day, {ep.t0.day.isoformat()}, taken as the treatment start)"
        )
    return f"recorded from {ep.t0.day.isoformat()} ({why}; taken as the treatment start)"


# Why no antibiotic order gave T0 when none started outside its window either, in words
# (the code is the engine's; the card's machine-readable result carries it for the trend
# app).
_NONE_COUNTED_WORDS = {
    NO_ORDER: "no antibiotic order found",
    UNDATED_ORDERS: "no dated antibiotic order",
    ORDERS_NOT_COUNTED: "no antibiotic order counted as treatment",
}


def _none_counted(a: Assessment) -> str:
    return _NONE_COUNTED_WORDS[a.next_steps.antibiotics_not_counted]


# The antibiotic orders named when none started in T0's window: the nearest few.
OUTSIDE_SHOWN = 3


def _outside_window(a: Assessment) -> str:
    """The orders on record when none started in T0's window, with their start and its
    distance from the episode date, so the clinician sees why the days are counted from
    it: "Outside that window: ceftriaxone order started 2026-09-10 (29 days after)."."""
    ep = a.episode
    if ep is None or not ep.outside_window or ep.episode_start is None:
        return ""
    start = ep.episode_start.day
    nearest = sorted(ep.outside_window, key=lambda o: abs((o.when.day - start).days))
    named = []
    for o in sorted(nearest[:OUTSIDE_SHOWN], key=lambda o: (o.when.instant, o.reference)):
        offset = (o.when.day - start).days
        side = "before" if offset < 0 else "after"
        named.append(
            f"{quote(o.name)} order started {o.when.day.isoformat()} "
            f"({count_of(abs(offset), 'day')} {side})"
        )
    more = len(nearest) - len(named)
    if more:
        named.append(f"{count_of(more, 'other order')} further away")
    return f" Outside that window: {'; '.join(named)}."
