"""What was known at diagnosis, and whether the order images the infected level.

clinical-rules.md (revised 2026-12-06): a deficit or complication found with the
infection is named on every card with its date, never dropped and never a "new" red
flag; a known deficit leaves the decision to the neurologic exam; a known abscess keeps
advise-against with the undrained-abscess line. An order that misses the infected level
is named with both levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fhir_mappers.model import ConditionCategory, ConditionFact, ImagingOrder

from .assessment import Episode, Remark
from .wording import condition_name, lower_first, upper_first


def _relative(day: date, t0_day: date | None) -> str:
    """ "3 days before treatment start", "the day treatment started", "day 2"."""
    if t0_day is None:
        return day.isoformat()
    offset = (day - t0_day).days
    if offset == 0:
        return f"{day.isoformat()}, the day treatment started"
    if offset < 0:
        n = -offset
        return f"{day.isoformat()}, {n} day{'s' if n != 1 else ''} before treatment start"
    return f"{day.isoformat()}, day {offset}"


def _dated(c: ConditionFact, t0_day: date | None) -> str:
    name = lower_first(condition_name(c))
    start = c.start
    return f"{name} ({_relative(start.day, t0_day)})" if start is not None else name


def is_abscess(c: ConditionFact) -> bool:
    """A complication whose clinical name says abscess (epidural, intraspinal, psoas)."""
    return c.category is ConditionCategory.COMPLICATION and "abscess" in condition_name(c).lower()


def known_notes(known: Sequence[ConditionFact], episode: Episode) -> list[Remark]:
    """One line naming every finding known at diagnosis with its date; for a known
    abscess, the undrained-abscess line (Park 2016)."""
    if not known:
        return []
    t0_day = episode.t0.day if episode.t0 is not None else None
    listed = "; ".join(_dated(c, t0_day) for c in known)
    notes = [
        Remark(
            "known-at-diagnosis",
            f"Recorded at diagnosis: {listed}. Known findings are not new red flags; a worse "
            "neurologic exam or new symptoms are.",
            "known at diagnosis: " + ", ".join(lower_first(condition_name(c)) for c in known),
        )
    ]
    if any(is_abscess(c) for c in known):
        notes.append(
            Remark(
                "known-abscess",
                "If the abscess was not drained, a follow-up MRI before stopping antibiotics "
                "may be reasonable (an undrained paravertebral or psoas abscess relapses more "
                "often and needs at least 8 weeks of treatment, Park 2016).",
                "abscess at diagnosis",
            )
        )
    return notes


def known_deficit_remark(known: Sequence[ConditionFact], episode: Episode) -> Remark | None:
    """A deficit known at diagnosis: the service cannot see whether the exam changed, so
    the decision rests on it (insufficient-data, never advise-against, never urgent)."""
    deficits = [c for c in known if c.category is ConditionCategory.NEURO_DEFICIT]
    if not deficits:
        return None
    t0_day = episode.t0.day if episode.t0 is not None else None
    first = deficits[0]
    name = upper_first(_dated(first, t0_day))
    return Remark(
        "known-deficit",
        f"{name} recorded at diagnosis: whether repeat imaging is needed rests on the "
        "neurologic exam. Image urgently if it is worse; if it is unchanged or better and "
        "the patient improves, routine repeat imaging is not needed.",
        f"{lower_first(condition_name(first))} known since diagnosis: compare the neurologic exam",
    )


REGION_WORDS = {
    "occipito-atlanto-axial": "at the skull base (C0-C2)",
    "cervicothoracic": "at the cervicothoracic junction",
    "thoracolumbar": "at the thoracolumbar junction",
    "lumbosacral": "lumbosacral",
    "sacral": "sacral",
}


def region_words(region: str) -> str:
    """ "thoracic", "at the thoracolumbar junction"."""
    return REGION_WORDS.get(region, region)


def level_note(
    orders: Sequence[ImagingOrder], covering: Sequence[str], region: str | None
) -> Remark | None:
    """The orders that do not image the infected level, named with both levels."""
    missed = [o for o in orders if o.reference not in covering]
    if not missed or region is None:
        return None
    studies = ", ".join(sorted({f"{o.region} {o.modality.value}" for o in missed}))
    target = "upper cervical" if region == "occipito-atlanto-axial" else region
    return Remark(
        "order-misses-level",
        f"The infection is {region_words(region)}: the {studies} ordered will not show it; "
        f"MRI of the {target} or whole spine with gadolinium.",
        f"the {studies} ordered will not show the {target} infection",
    )
