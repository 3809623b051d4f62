"""Whether the order is routine follow-up of the infection (clinical-rules.md, "Imaging",
2026-12-06, "Not routine follow-up"), and whether the host is one in whom "improving"
reassures (immunosuppression).

An order with priority urgent, asap or stat, or with a stated reason other than the
infection or spinal pain (a fall, trauma, cancer staging, surgery), is not routine
repeat imaging of the infection: it is never advised against. Without a red flag there
is no card at all (asking for a CRP instead of a STAT CT after a fall would be wrong)
and the audit keeps the stated reason; with a red flag the card names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from fhir_mappers.model import (
    ConditionCategory,
    ConditionFact,
    ImagingOrder,
    Modality,
    OrderReason,
    PriorStudy,
    SpineSurgery,
)

from . import sources
from .assessment import FACTS, RULE_NEURO, Remark, RuleFinding
from .episode import counts_now
from .findings import condition_facts
from .study import SEEN_RULES, shows_finding, whole_spine_prior

URGENT_PRIORITIES = ("urgent", "asap", "stat")
# A reasonReference to one of these Conditions is the infection or spinal pain.
ROUTINE_CATEGORIES = frozenset(
    {
        ConditionCategory.NVO,
        ConditionCategory.NVO_UNSPECIFIED,
        ConditionCategory.NVO_OTHER_INFECTIVE,
        ConditionCategory.SPINAL_PAIN,
    }
)


def _routine(reason: OrderReason, conditions: dict[str, ConditionFact]) -> bool:
    if reason.routine is not None:
        return reason.routine
    target = conditions.get(reason.reference or "")
    return target is not None and target.category in ROUTINE_CATEGORIES


def _name(reason: OrderReason, conditions: dict[str, ConditionFact]) -> str | None:
    target = conditions.get(reason.reference or "")
    if target is not None and target.name:
        return target.name
    return reason.name


# The not-routine remark's list of the drafts ordered for a reason the service does not
# read as the infection (a fall, a tumour search).
STATED_ORDERS = "otherReasonOrders"


def not_routine(
    orders: Sequence[ImagingOrder], conditions: Sequence[ConditionFact]
) -> Remark | None:
    """What makes the orders not routine follow-up (the urgent priorities, the other
    stated reasons by name), or None when they are routine."""
    by_ref = {c.reference: c for c in conditions}
    priorities = sorted(
        {o.priority for o in orders if o.priority in URGENT_PRIORITIES},
        key=URGENT_PRIORITIES.index,
    )
    other = [r for o in orders for r in o.reasons if not _routine(r, by_ref)]
    if not priorities and not other:
        return None
    names = list(dict.fromkeys(n for r in other if (n := _name(r, by_ref))))
    data: dict[str, Any] = {}
    if priorities:
        data["priority"] = priorities[-1]  # the most pressing: stat > asap > urgent
    if names:
        data["reasons"] = names
    if len(names) < len({(r.name, r.reference) for r in other}):
        data["unnamedReasons"] = True  # a reason whose name the record does not give
    unread = [n for r in other if not _read(r, by_ref) and (n := _name(r, by_ref))]
    if unread:  # text or codes the value set does not hold: not known to be the infection
        data["unreadReasons"] = list(dict.fromkeys(unread))
    stated = sorted(o.reference for o in orders if any(not _routine(r, by_ref) for r in o.reasons))
    if stated:
        # each draft ordered for another reason: beside a red flag the card neither
        # changes it nor rates it (``next_steps``), as it cannot judge that reason
        data[STATED_ORDERS] = stated
    return Remark("not-routine", data)


def _read(reason: OrderReason, conditions: dict[str, ConditionFact]) -> bool:
    """The reason is one the service can read: a code of the conditions value set, or a
    reference to a Condition of the record read as one of its categories."""
    if reason.reference is None:
        return reason.read
    target = conditions.get(reason.reference)
    return target is not None and target.category is not ConditionCategory.OTHER


def immunosuppression(conditions: Sequence[ConditionFact], t0_day: date | None) -> Remark | None:
    """An active, valid immunosuppression Condition, whatever its date (clinical-rules.md,
    "Imaging", 2026-12-06): a blunted CRP and less pain make "improving" less reassuring,
    so no advise-against; insufficient-data names the reason."""
    found = sorted(
        (
            c
            for c in conditions
            if c.category is ConditionCategory.IMMUNOSUPPRESSION and counts_now(c)
        ),
        key=lambda c: c.reference,
    )
    if not found:
        return None
    return Remark("immunocompromised", {"conditions": [condition_facts(c, t0_day) for c in found]})


def spine_surgery(
    orders: Sequence[ImagingOrder],
    surgeries: Sequence[SpineSurgery],
    episode_day: date | None,
    t0_day: date | None,
) -> Remark | None:
    """Spine surgery in the episode (performed on or after the earlier of T0 and the
    episode date; an undated one counts): a CT after it assesses the hardware or the
    fusion, so it is not advised against (clinical-rules.md, "Imaging", 2026-12-06).
    ``ct`` says whether a CT is among the orders: then the remark blocks advise-against."""
    days = [d for d in (episode_day, t0_day) if d is not None]
    start = min(days) if days else None
    found = [s for s in surgeries if s.when is None or start is None or s.when.day >= start]
    if not found:
        return None
    first = min(found, key=lambda s: (s.when is None, s.when.day if s.when else date.max))
    data: dict[str, Any] = {
        "name": first.name,
        "ct": any(o.modality is Modality.CT for o in orders),
        # a fusion (or an operation whose kind the value set does not give) may leave
        # hardware: the card names hardware and fusion only then
        "hardware": any(s.kind != "debridement" for s in found),
    }
    if first.when is not None and t0_day is not None:
        data["day"] = (first.when.day - t0_day).days
    return Remark("after-spine-surgery", data)


def prior_imaging(
    studies: Sequence[PriorStudy],
    flags: Sequence[RuleFinding],
    conditions: Sequence[ConditionFact],
    infection_regions: Sequence[str | None],
    t0_day: date | None,
    episode_day: date | None,
    eval_day: date,
    lookback_days: int,
    recent_days: int,
) -> list[Remark]:
    """The last spine study of the episode (from T0 - lookback, as the other data), and
    the red-flag findings seen on a study done within ``recent_days`` of the order
    (clinical-rules.md, "Imaging", 2026-12-06): a deficit or an abscess is seen on a study
    that can show it (``study.shows_finding``: an MRI with gadolinium of its level, done
    after it), the latest such. One note per study that saw any; ``allRedFlags`` says
    whether every red flag was seen so (then a new MRI is needed only if the exam changed),
    ``flagsSeen`` which red flags had every finding seen so (``deciding_flags``).
    """
    days = [d for d in (t0_day, episode_day) if d is not None]
    start = min(days) - timedelta(days=lookback_days) if days else None
    done = whole_spine_prior(
        [s for s in studies if s.when.day <= eval_day and (start is None or s.when.day >= start)]
    )
    if not done:
        return []
    last = max(done, key=_when)
    notes = [Remark("last-spine-study", _study_data(last, t0_day, eval_day))]
    recent = [s for s in done if (eval_day - s.when.day).days <= recent_days]
    by_ref = {c.reference: c for c in conditions}
    seen: dict[str, list[dict[str, Any]]] = {}
    every = bool(flags)
    wholly: list[str] = []  # the red flags every finding of which was seen
    for flag in flags:
        if flag.rule_id not in SEEN_RULES:
            # worse pain, the markers, an unconfirmed diagnosis, a mechanical finding: no
            # study on record answers them as a new one would
            every = False
            continue
        all_seen = True
        for ref, facts in zip(flag.data["conditions"], flag.data[FACTS]["found"], strict=True):
            c = by_ref.get(ref["reference"])
            on = [s for s in recent if c is not None and shows_finding(s, c, infection_regions)]
            if not on:
                every = all_seen = False
                continue
            seen.setdefault(max(on, key=_when).reference, []).append(facts)
        if all_seen:
            wholly.append(flag.rule_id)
    for study in sorted((s for s in recent if s.reference in seen), key=_when):
        data = {**_study_data(study, t0_day, eval_day), "conditions": seen[study.reference]}
        notes.append(
            Remark("flag-seen-on-study", {**data, "allRedFlags": every, "flagsSeen": wholly})
        )
    return notes


def _when(s: PriorStudy) -> tuple[Any, ...]:
    return (s.when.instant, s.reference)


def _study_data(s: PriorStudy, t0_day: date | None, eval_day: date) -> dict[str, Any]:
    data: dict[str, Any] = {
        "modality": s.modality.value,
        "region": s.region,
        "date": s.when.day.isoformat(),
        "daysAgo": (eval_day - s.when.day).days,
    }
    if t0_day is not None:
        data["day"] = (s.when.day - t0_day).days
    return data


def deciding_flags(
    flags: Sequence[RuleFinding], notes: Sequence[Remark]
) -> tuple[RuleFinding, ...]:
    """The red flags that decide the card, judged flag by flag (``prior_imaging``'s
    notes): a flag every finding of which was seen on a recent study that could show it
    needs a new MRI only if the exam changed, which the service cannot see, so it does
    not drive support while another flag was not seen; the note names it as seen. A new
    neurologic deficit always stands: the study changes whether a new MRI is needed, not
    the urgency of the exam and the surgeon (a clinician reader: a seen cauda equina
    syndrome beside worse pain made an info card with no surgeon). When every red flag
    was seen, all of them stand (``seen_on_every_flag``)."""
    if seen_on_every_flag(notes) is not None:
        return tuple(flags)
    aside = seen_flags(notes) - {RULE_NEURO}
    return tuple(f for f in flags if f.rule_id not in aside)


def seen_flags(notes: Sequence[Remark]) -> set[str]:
    """The red flags every finding of which was seen on a recent study (``prior_imaging``)."""
    return {r for n in notes if n.code == "flag-seen-on-study" for r in n.data["flagsSeen"]}


def neuro_seen_on_study(notes: Sequence[Remark]) -> Remark | None:
    """The note saying a new neurologic deficit was seen on a recent study (with every
    other red flag, or beside one that was not): no emergency MRI for it."""
    return next(
        (n for n in notes if n.code == "flag-seen-on-study" and RULE_NEURO in n.data["flagsSeen"]),
        None,
    )


def seen_on_every_flag(notes: Sequence[Remark]) -> Remark | None:
    """The note saying where the red flags were seen, when every one of them was seen on
    a recent study (``prior_imaging``): then a new MRI only if the exam changed."""
    return next(
        (n for n in notes if n.code == "flag-seen-on-study" and n.data["allRedFlags"]), None
    )


def scope_unread(unavailable: frozenset[str], orders: Sequence[ImagingOrder]) -> list[Remark]:
    """Sources not read (neither prefetched nor fetched) that leave unknown whether the
    advice applies at all: without the Patient the age is unknown (the advice is for
    adults only), and without the procedures a CT may follow spine surgery (never advised
    against). Advise-against does not stand on either; the card names what was not read
    (an outside clinician's review: a 12-year-old and a CT after fusion were advised
    against when the EHR sent neither key and no fhirServer)."""
    gaps: list[Remark] = []
    if sources.PATIENT in unavailable:
        gaps.append(Remark("age-unread"))
    if sources.PROCEDURES in unavailable and any(o.modality is Modality.CT for o in orders):
        gaps.append(Remark("surgery-unread"))
    return gaps
