"""The card's episode line: the infection, where its treatment start (T0) came from, and
the day of treatment the order falls on (clinical-rules.md, "T0, the treatment start",
2026-12-06)."""

from __future__ import annotations

from cds_service.cards import text
from cds_service.cards.safe_text import quote
from cds_service.cards.words import upper_first
from cds_service.engine.assessment import T0_FROM_ANTIBIOTIC, Assessment
from cds_service.engine.episode import UNCERTAIN_VERIFICATION


def episode_line(a: Assessment) -> str:
    """The infection, where its treatment start came from and the order's day."""
    ep = a.episode
    name = upper_first(text.DISEASE)
    if ep is not None and ep.condition.verification_status in UNCERTAIN_VERIFICATION:
        # what the record shows, not a confirmed disease (clinical-rules.md, "What a card
        # should say"): "..., provisional diagnosis, recorded from ..."
        name = f"{name}, {ep.condition.verification_status} diagnosis"
    if ep is None or ep.t0 is None:
        return f"{name}; treatment start not recorded."
    day = a.figures.days_since_t0
    return f"{name}, {t0_phrase(a)}; order on day {day} ({a.evaluation_day.isoformat()})."


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
    why = (
        "antibiotic orders could not be read"
        if "antibiotics" in a.unavailable
        else "no antibiotic order found"
    )
    return f"recorded from {ep.t0.day.isoformat()} ({why}; taken as the treatment start)"
