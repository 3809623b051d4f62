"""Whether the ordered study can answer the card's question (clinical-rules.md, "Imaging",
2026-12-06, "The study must answer the question").

On a support or urgent card the rating goes by the study, not by the decision alone: a
study that misses the infected or deficit level, a CT for a new deficit (MRI with
gadolinium is the study of choice, IDSA 2015), or a study without contrast (a CT whose
code leaves its contrast unknown counts as one) for a soft-tissue question (abscess,
deficit, markers, pain, an unconfirmed diagnosis) cannot answer it and is never rated
appropriate; the card offers the study that can. A
mechanical question (collapse, fracture, instability) is one of alignment and stability:
a CT answers it, and an MRI ordered for it alone gets no rating. Worse pain while the CRP
keeps falling (the favourable response of advise-against, from a CRP that was raised, and
no markers flag) is that question too ("think mechanical: upright radiographs or CT"): a
CT answers it with or without contrast, and so does an MRI. Worse pain with a CRP that is
not clearly falling points to failure or an abscess: MRI with gadolinium.

A deficit or an abscess already seen on a study done in the last days (an MRI with
gadolinium of its level, done after it) needs a new MRI only if the exam changed: when
every red flag was seen so, an order that could answer gets no rating.

A new deficit or a new abscess asks for the whole spine (the infection and what it
compresses may reach beyond the level: "Urgent ... Detail: whole spine"; "Abscess: MRI of
the whole spine"); the markers and an unconfirmed diagnosis, for the infected level.

The engine says which orders fall short and why, and which study answers (modality,
region, contrast); the cards choose its code and word it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

from msgspec import structs

from fhir_mappers.model import ConditionFact, ImagingOrder, Measurement, Modality, PriorStudy, When

from .assessment import (
    FACTS,
    RULE_COMPLICATION,
    RULE_MECHANICAL,
    RULE_NEURO,
    RULE_PAIN,
    RuleFinding,
    Study,
)
from .episode import covers_all
from .findings import is_abscess, latest_start
from .response import crp_favourable
from .rules import CrpTrend
from .series import never_raised
from .thresholds import RuleSettings

# Why an order cannot answer the question (one code per order, the first that applies).
GAP_LEVEL = "level"  # it does not image the infected or the deficit level
GAP_MODALITY = "modality"  # a CT for a new neurologic deficit
GAP_CONTRAST = "contrast"  # without contrast (a CT: or not known), for a soft-tissue question
# an MRI for a mechanical question alone: not wrong, but not the study that answers it
GAP_MECHANICAL_MRI = "mri-for-mechanical"
# every red flag was seen on a study of the last days: a new one only if the exam changed,
# which the service cannot see (no rating)
GAP_SEEN = "seen-on-study"

# The order region that images a condition region (whole spine when no single one does).
_STUDY_REGION = {
    "occipito-atlanto-axial": "cervical",
    "cervical": "cervical",
    "thoracic": "thoracic",
    "lumbar": "lumbar",
    "lumbosacral": "lumbar",
    "sacral": "lumbar",
}


SPINE_THIRDS = frozenset({"cervical", "thoracic", "lumbar"})
# The thirds a study region images (a combined study images two).
_THIRDS_OF = {
    "cervical": {"cervical"},
    "thoracic": {"thoracic"},
    "lumbar": {"lumbar"},
    "thoracolumbar": {"thoracic", "lumbar"},
    "lumbosacral": {"lumbar"},
}


def whole_spine_studies(orders: Sequence[ImagingOrder]) -> tuple[ImagingOrder, ...]:
    """Cervical, thoracic and lumbar studies of one modality in question together (CPT
    has no whole-spine code: 72156 + 72157 + 72158 and the without / with variants) are
    one whole-spine study: each is read as region "spine" before the level rule
    (clinical-rules.md, "Imaging", 2026-12-06)."""
    out = list(orders)
    for modality in Modality:
        thirds = {t for o in orders if o.modality is modality for t in _THIRDS_OF.get(o.region, ())}
        if SPINE_THIRDS <= thirds:
            out = [
                replace(o, region="spine")
                if o.modality is modality and o.region in _THIRDS_OF
                else o
                for o in out
            ]
    return tuple(out)


def whole_spine_prior(studies: Sequence[PriorStudy]) -> list[PriorStudy]:
    """Cervical, thoracic and lumbar studies of one modality done on one day are one
    whole-spine study, as orders in question together are (``whole_spine_studies``): each
    is read as region "spine", with its own contrast (an outside clinician's re-run: a
    whole-spine MRI recorded as 72156, 72157 and 72158 was not seen as the whole spine,
    and the abscess card asked to extend the MRI ordered to it the day after)."""
    out = list(studies)
    groups: dict[tuple[Modality, date], list[PriorStudy]] = {}
    for s in studies:
        if s.region in _THIRDS_OF:
            groups.setdefault((s.modality, s.when.day), []).append(s)
    for parts in groups.values():
        thirds = {t for s in parts for t in _THIRDS_OF[s.region]}
        if SPINE_THIRDS <= thirds:
            whole = {id(s) for s in parts}
            out = [structs.replace(s, region="spine") if id(s) in whole else s for s in out]
    return out


def mechanical_only(flags: Sequence[RuleFinding]) -> bool:
    """Every red flag is mechanical: a question of alignment and stability."""
    return bool(flags) and all(f.rule_id == RULE_MECHANICAL for f in flags)


def crp_keeps_falling(
    trend: CrpTrend,
    crp: Sequence[Measurement],
    t0_day: date,
    settings: RuleSettings,
    markers_fired: bool,
    discordant: bool,
) -> bool:
    """ "A CRP that keeps falling" (clinical-rules.md, "Support cards give IDSA's next
    steps"): the favourable CRP response advise-against asks for (a fall of at least
    25%, or below the normal limit, not a slow fall; ``response.crp_favourable``), no
    markers flag (plateau or rise), the latest two CRPs not a discordant pair, and a CRP
    that rose above the normal limit at all (one that never did "cannot show the
    response"). Anything less leaves worse pain a question of failure or abscess."""
    if markers_fired or discordant or never_raised(crp, settings) is not None:
        return False
    return crp_favourable(trend, t0_day, settings)


def pain_with_falling_crp(flags: Sequence[RuleFinding]) -> bool:
    """Worse pain is among the red flags, and the CRP keeps falling (``crp_keeps_falling``,
    judged when the pain flag was made): "think mechanical"."""
    return any(f.rule_id == RULE_PAIN and f.data[FACTS]["crpFalls"] for f in flags)


def pain_while_crp_falls(flags: Sequence[RuleFinding]) -> bool:
    """The only red flag is worse pain, and the CRP keeps falling: a mechanical question
    as much as a soft-tissue one (clinical-rules.md, "Support cards give IDSA's next
    steps": "worse pain with a CRP that keeps falling: think mechanical (collapse,
    instability): upright radiographs or CT")."""
    return (
        bool(flags) and all(f.rule_id == RULE_PAIN for f in flags) and pain_with_falling_crp(flags)
    )


def mri_preferred_to_ct(orders: Sequence[ImagingOrder], flags: Sequence[RuleFinding]) -> bool:
    """A CT is ordered for a question a red flag raises that MRI answers better (the soft
    tissue): not a mechanical question alone, nor worse pain while the CRP keeps falling,
    which a CT answers as well."""
    return (
        bool(flags)
        and any(o.modality is Modality.CT for o in orders)
        and not mechanical_only(flags)
        and not pain_while_crp_falls(flags)
    )


def study_gaps(
    orders: Sequence[ImagingOrder],
    flags: Sequence[RuleFinding],
    urgent: bool,
    infection_regions: Sequence[str | None],
    deficits: Sequence[ConditionFact],
    seen: bool = False,
) -> Mapping[str, str]:
    """Order reference -> why it cannot answer the question, or (``seen``: every red flag
    was seen on a recent study) that it would repeat that study; orders that can answer
    are absent."""
    gaps: dict[str, str] = {}
    mechanical = mechanical_only(flags)
    either = pain_while_crp_falls(flags)  # a CT or an MRI answers it
    deficit_regions = [d.region for d in deficits if d.region is not None]
    for order in orders:
        levels = [*infection_regions, *deficit_regions]
        if not covers_all(order.region, levels):
            gaps[order.reference] = GAP_LEVEL
        elif either:
            continue
        elif mechanical:
            if order.modality is Modality.MRI:
                gaps[order.reference] = GAP_MECHANICAL_MRI
        elif urgent and order.modality is Modality.CT:
            gaps[order.reference] = GAP_MODALITY
        elif order.contrast == "without" or (
            order.modality is Modality.CT and order.contrast is None
        ):
            # a CT whose code does not say it has contrast may be one without: it cannot
            # be counted on to show an abscess (MRI is preferred in any case)
            gaps[order.reference] = GAP_CONTRAST
        if seen and order.reference not in gaps:
            gaps[order.reference] = GAP_SEEN
    return gaps


# What a study already done can show: the soft-tissue findings (a deficit, an abscess)
# whose study is MRI with gadolinium ("emergency MRI ... with gadolinium"; "Abscess: MRI
# ... without and with gadolinium"). A mechanical finding's study is standing
# radiographs, which no spine MRI or CT on record replaces: it is never "seen".
SEEN_RULES = frozenset({RULE_NEURO, RULE_COMPLICATION})
GADOLINIUM = frozenset({"with", "without-and-with"})


def done_after(study: When, finding: When) -> bool:
    """The study was done after the finding: by instant when both have a time; with a
    date-only side, on a later day (a same-day date-only pair cannot show the order)."""
    if not study.date_only and not finding.date_only:
        return study.instant > finding.instant
    return study.day > finding.day


def shows_finding(
    study: PriorStudy, finding: ConditionFact, infection_regions: Sequence[str | None]
) -> bool:
    """A study done can have shown a new deficit or abscess: an MRI with gadolinium (its
    code says so: one that does not may have been without), of the infected level and
    the finding's own level (of the whole spine for an abscess), done after the finding
    (clinical-rules.md, "Imaging", 2026-12-06: "The study must answer the question":
    level, contrast, modality)."""
    if study.modality is not Modality.MRI or study.contrast not in GADOLINIUM:
        return False
    if is_abscess(finding) and study.region != "spine":
        # "Abscess: MRI of the whole spine ... if not just done": a study of one level has
        # not looked for its extent (an outside clinician saw an abscess "seen on the
        # lumbar MRI" end the whole-spine advice of the same card)
        return False
    if not covers_all(study.region, (*infection_regions, finding.region)):
        return False
    start = finding.start
    if start is None:
        return False
    if start.partial is not None:  # "2026-09": done after the last day it may have begun
        latest = latest_start(finding)
        return latest is not None and study.when.day > latest
    return done_after(study.when, start)


def answering_study(
    flags: Sequence[RuleFinding],
    infection_regions: Sequence[str | None],
    deficits: Sequence[ConditionFact],
) -> Study | None:
    """MRI without and with gadolinium: of the whole spine for a new deficit or abscess,
    else of the level in question (the whole spine when a deficit's level differs from
    the infection's); None for a mechanical question, which radiographs and CT answer."""
    if not flags or mechanical_only(flags):
        return None
    if any(f.rule_id in (RULE_NEURO, RULE_COMPLICATION) for f in flags):
        return Study(Modality.MRI, "spine", "without-and-with")
    regions = {_STUDY_REGION.get(r or "", "spine") for r in infection_regions}
    regions |= {_STUDY_REGION.get(d.region, "spine") for d in deficits if d.region is not None}
    region = regions.pop() if len(regions) == 1 else "spine"
    return Study(Modality.MRI, region, "without-and-with")
