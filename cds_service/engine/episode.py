"""Applicability: which time we evaluate at, which episode, and whether to answer at all.

Decisions documented here (clinical-rules.md leaves them open):
- Evaluation time: the latest authoredOn among the orders, else the caller's ``now``.
- Episode: among in-scope NVO Conditions that are active and not refuted, the one with
  the most recent start (onset, else recordedDate); ties broken by reference so the
  answer never depends on input order.
- Exclusions: an active out-of-scope Condition excludes the patient (no card) unless it
  is tuberculous/brucellar spondylitis (listed in out_of_scope.json) and a pyogenic NVO
  episode exists; then the pyogenic episode is assessed and the card notes the other
  diagnosis. Implant-associated infection always excludes: the guideline does not cover it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from fhir_mappers.model import Coding, ConditionCategory, ConditionFact, ImagingOrder

from .assessment import Episode, NotApplicableReason
from .settings import RuleSettings

ACTIVE_STATUSES = frozenset({"active", "recurrence", "relapse"})
INVALID_VERIFICATION = frozenset({"refuted", "entered-in-error"})
UNCERTAIN_VERIFICATION = frozenset({"provisional", "differential", "unconfirmed"})


def evaluation_time(orders: Sequence[ImagingOrder], now: datetime) -> tuple[datetime, date, str]:
    """The order's authoredOn (the latest when several), else ``now``."""
    authored = [o.authored_on for o in orders if o.authored_on is not None]
    if authored:
        latest = max(authored, key=lambda w: (w.instant, w.day))
        return latest.instant, latest.day, "authoredOn"
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now, now.date(), "now"


def is_active(c: ConditionFact) -> bool:
    """Active/recurrence/relapse, or no clinicalStatus and no abatement (clinical-rules.md)."""
    if c.clinical_status is None:
        return c.abatement is None
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


def choose_episode(conditions: Iterable[ConditionFact], settings: RuleSettings) -> Episode | None:
    """The in-scope, active, valid NVO Condition with the most recent start."""
    cats = in_scope_categories(settings)
    candidates = [c for c in conditions if c.category in cats and counts_now(c)]
    if not candidates:
        return None

    dated = [(c.start.instant, c.reference, c) for c in candidates if c.start is not None]
    if dated:
        # The most recent start wins; the reference breaks ties so input order never matters.
        chosen = max(dated, key=lambda t: (t[0], t[1]))[2]
    else:
        chosen = max(candidates, key=lambda c: c.reference)
    return Episode(condition=chosen, t0=chosen.start)


def other_episode_starts(
    conditions: Iterable[ConditionFact], settings: RuleSettings, chosen: Episode
) -> list[Episode]:
    """The other active in-scope NVO Conditions whose start is a different day.

    Several active NVO Conditions may be entries of one episode (an encounter diagnosis
    recorded later) or a stale entry of an old one: which start is T0 cannot be known,
    so the caller evaluates from each and keeps the most cautious answer.
    """
    cats = in_scope_categories(settings)
    chosen_day = chosen.t0.day if chosen.t0 is not None else None
    seen = {chosen_day}
    others = []
    for c in sorted(conditions, key=lambda c: c.reference):
        start = c.start
        if c.category not in cats or not counts_now(c) or start is None or start.day in seen:
            continue
        seen.add(start.day)
        others.append(Episode(condition=c, t0=start))
    return others


@lru_cache(maxsize=1)
def _coexist_allowed() -> tuple[tuple[str, str, str], ...]:
    text = resources.files(__package__).joinpath("out_of_scope.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return tuple((e["system"], e["code"], e["match"]) for e in data["coexistAllowed"])


def is_non_pyogenic_spondylitis(c: ConditionFact) -> bool:
    """True when every code is a tuberculous/brucellar spondylitis code (may coexist)."""
    return bool(c.codes) and all(_coexist_code(code) for code in c.codes)


def _coexist_code(code: Coding) -> bool:
    # ICD-10-CM codes are written with or without the dot (as the value sets accept them).
    given = _plain(code.code)
    for system, value, match in _coexist_allowed():
        if code.system != system:
            continue
        wanted = _plain(value)
        if given == wanted or (match == "prefix" and given.startswith(wanted)):
            return True
    return False


def _plain(code: str) -> str:
    return code.replace(".", "").strip().upper()


def applicability(
    orders: Sequence[ImagingOrder], conditions: Sequence[ConditionFact], settings: RuleSettings
) -> tuple[Episode | None, NotApplicableReason | None, tuple[ConditionFact, ...]]:
    """The episode to assess, or why the service does not apply.

    Also returns the active out-of-scope Conditions that coexist with the episode, for a note.
    """
    if not orders:
        return None, NotApplicableReason.NO_SPINE_ORDER, ()
    out_of_scope = tuple(
        c for c in conditions if c.category is ConditionCategory.OUT_OF_SCOPE and counts_now(c)
    )
    if any(not is_non_pyogenic_spondylitis(c) for c in out_of_scope):
        return None, NotApplicableReason.EXCLUDED_INFECTION, out_of_scope
    episode = choose_episode(conditions, settings)
    if episode is None:
        reason = (
            NotApplicableReason.NON_PYOGENIC_ONLY
            if out_of_scope
            else NotApplicableReason.NO_EPISODE
        )
        return None, reason, out_of_scope
    return episode, None, out_of_scope
