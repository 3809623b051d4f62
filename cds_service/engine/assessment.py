"""The engine's answer: a recommendation with everything needed to explain and audit it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from fhir_mappers.model import (
    AntibioticStart,
    ConditionFact,
    DataIssue,
    ImagingOrder,
    Measurement,
    MeasurementKind,
    Modality,
    When,
)

from .records import (
    antibiotic_to_dict,
    condition_to_dict,
    figure,
    measurement_to_dict,
    order_to_dict,
)
from .thresholds import RuleSettings


class Recommendation(StrEnum):
    ADVISE_AGAINST = "advise-against"
    SUPPORT = "support"
    SUPPORT_URGENT = "support-urgent"
    INSUFFICIENT_DATA = "insufficient-data"
    NOT_APPLICABLE = "not-applicable"


class NotApplicableReason(StrEnum):
    """Why no card is given (clinical-rules.md, "When the service applies")."""

    NO_SPINE_ORDER = "no-spine-imaging-order"
    NO_EPISODE = "no-active-nvo-episode"
    # an out-of-scope infection (tuberculous/brucellar spondylitis, implant-associated)
    # and no pyogenic NVO episode
    NON_PYOGENIC_ONLY = "non-pyogenic-spondylitis-only"
    # an out-of-scope infection recorded beside a pyogenic NVO episode: the evidence
    # covers pyogenic NVO alone, so the patient is outside it
    EXCLUDED_INFECTION = "excluded-infection"
    # no red flag, and no spine order covers the infected level: the order is not repeat
    # imaging of the infection (clinical-rules.md, "Level", 2026-12-06)
    ORDER_OUTSIDE_INFECTION = "order-outside-infection-level"
    # no red flag, and the order is urgent/asap/stat or states another reason than the
    # infection or spinal pain: not routine follow-up (clinical-rules.md, "Imaging")
    NOT_ROUTINE = "not-routine-follow-up"
    # younger than min_age_years: the evidence is adult-only (clinical-rules.md, "Imaging")
    UNDER_MIN_AGE = "under-minimum-age"


# Red flags in the order clinical-rules.md lists them; any one supports imaging.
RULE_NEURO = "neuro"
RULE_COMPLICATION = "complication"
# a new collapse, fracture, instability or kyphosis (clinical-rules.md, "Imaging",
# 2026-12-06): supported, but the study is standing radiographs (and CT), not MRI
RULE_MECHANICAL = "mechanical"
RULE_UNCERTAIN_DX = "uncertain-dx"
RULE_MARKERS = "markers-not-responding"
RULE_PAIN = "pain-worse"
RED_FLAG_RULES: tuple[str, ...] = (
    RULE_NEURO,
    RULE_COMPLICATION,
    RULE_MECHANICAL,
    RULE_UNCERTAIN_DX,
    RULE_MARKERS,
    RULE_PAIN,
)
# The two outcomes when no red flag fired, recorded as findings so every decision has one.
RULE_ADVISE_AGAINST = "advise-against"
RULE_INSUFFICIENT_DATA = "insufficient-data"


@dataclass(frozen=True)
class RuleFinding:
    """One rule that fired, with the data it used (JSON-able, camelCase keys).

    The cards' phrasebook makes the sentences a clinician reads from ``rule_id`` and
    ``data``: every figure, date and name they need is here. What only the sentences
    need, and the card does not publish, is under ``data[FACTS]``.
    """

    rule_id: str
    recommendation: Recommendation
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "recommendation": self.recommendation.value,
            "data": dict(self.data),
        }


# The key of a finding's data that holds what its sentences are made from and the card
# does not publish (e.g. a condition's name and the day it was found).
FACTS = "facts"


@dataclass(frozen=True)
class Remark:
    """A coded statement: a missing datum, an unmet criterion or a note, with the
    figures, dates and names its sentence is made from (JSON-able, camelCase keys)."""

    code: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code}
        if self.data:
            out["data"] = dict(self.data)
        return out


# Where T0 came from (clinical-rules.md, "T0, the treatment start", 2026-12-06).
T0_FROM_ANTIBIOTIC = "antibiotic-order"
T0_FROM_EPISODE = "episode-date"


@dataclass(frozen=True)
class Episode:
    """The NVO Condition the decision is about and its treatment start T0.

    T0 is the start of the first antibiotic order near the episode date when there is
    one (``antibiotic``), else the episode date (the Condition's onset or recordedDate):
    the 28-day marks count days of treatment, not days since symptoms began.
    """

    condition: ConditionFact
    t0: When | None  # None when neither an antibiotic order nor the Condition gives a date
    t0_source: str = T0_FROM_EPISODE
    antibiotic: AntibioticStart | None = None
    # orders on record when none started in the window: why T0 is the episode date (with
    # no episode date, no window: every order on record, none tied to the infection)
    outside_window: tuple[AntibioticStart, ...] = ()
    # the distinct levels the entries of this infection name (episode.infection_levels),
    # from the top of the spine down; empty when not read (the entry's own region stands)
    levels: tuple[str, ...] = ()

    @property
    def episode_start(self) -> When | None:
        """The Condition's own date (onset, else recordedDate)."""
        return self.condition.start

    @property
    def region(self) -> str | None:
        """The infected region as one word, for the record and the card: "multiple" when
        the entries of the infection name more than one level (the level rule reads each,
        ``regions``), and the one level they name when an entry has none (site
        unspecified), so that which entry was chosen (by resource id, between two of one
        day) never decides which level an order must image."""
        if len(self.levels) > 1:
            return "multiple"
        return self.levels[0] if self.levels else self.condition.region

    @property
    def regions(self) -> tuple[str | None, ...]:
        """The infected levels an order is held to: each level the entries name (imaging
        one is repeat imaging of the infection; answering a red flag images all: read as
        "multiple", a lumbar MRI was rated appropriate for a cervical and thoracic one)."""
        return self.levels if len(self.levels) > 1 else (self.region,)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": condition_to_dict(self.condition)}
        if self.t0 is not None:
            out["t0"] = self.t0.day.isoformat()
            out["t0Source"] = self.t0_source
        if self.antibiotic is not None:
            out["antibiotic"] = antibiotic_to_dict(self.antibiotic)
        if self.outside_window:
            out["antibioticsOutsideWindow"] = [antibiotic_to_dict(x) for x in self.outside_window]
        if len(self.levels) > 1:
            out["levels"] = list(self.levels)
        return out


@dataclass(frozen=True)
class Study:
    """The study that answers a card's question (clinical-rules.md, "Imaging", 2026-12-06)."""

    modality: Modality
    region: str  # "cervical" | "thoracic" | "lumbar" | "spine" (whole)
    contrast: str  # "without-and-with"

    def to_dict(self) -> dict[str, str]:
        return {"modality": self.modality.value, "region": self.region, "contrast": self.contrast}


# Why no antibiotic order gave T0 (``NextSteps.antibiotics_not_counted``): none on
# record, only undated ones, or ones that do not count as treatment (a draft, a topical one).
NO_ORDER, UNDATED_ORDERS, ORDERS_NOT_COUNTED = "none", "undated", "not-counted"


@dataclass(frozen=True)
class NextSteps:
    """What a card asks for beside its recommendation, judged once (``next_steps.py``):
    the cards word it and build their suggestions from it, deciding none of it."""

    # an emergency MRI now: urgent, and no new deficit seen on a study of the last days
    emergency_mri: bool = False
    # a CT is ordered for a question a red flag raises that MRI answers better
    mri_preferred_to_ct: bool = False
    # the lab orders the card offers: CRP and ESR, a CRP alone, or none
    marker_orders: tuple[MeasurementKind, ...] = ()
    # those it would have offered that a draft lab order of the order set already orders
    markers_drafted: tuple[MeasurementKind, ...] = ()
    # what an insufficient-data summary asks of the markers (a code of next_steps.py)
    markers_asked: str | None = None
    # the drafts the card makes STAT (every one that answers, e.g. all three parts of a
    # CPT whole-spine study), and whether the one click also extends the one draft made
    # STAT to the study that answers (the whole spine; several are made STAT as they are)
    stat_orders: tuple[str, ...] = ()
    stat_extended: bool = False
    # the draft that cannot answer the card's question, which the card offers to change
    # into the study that can (answering_study); or that study ordered beside the drafts,
    # when each was ordered for another reason (study_added)
    replaced_order: str | None = None
    study_added: bool = False
    # the drafts of the order set not in question (unselected) that answer the question
    other_answering: tuple[ImagingOrder, ...] = ()
    # the drafts a support or urgent card leaves unrated (next_steps.unrated_orders)
    unrated_orders: frozenset[str] = frozenset()
    # the evidence statements the card cites, in order (keys of cards' STATEMENTS)
    evidence: tuple[str, ...] = ()
    # why no antibiotic order gave T0 (a code of next_steps.py)
    antibiotics_not_counted: str = NO_ORDER
    # an advise-against card recommends removing the order, unless CRP and ESR are still at
    # the levels that predicted failure (Yoon 2010): then the removal is only offered
    removal_recommended: bool = True


@dataclass(frozen=True)
class KeyFigures:
    """The numbers a card, an integrator or an auditor reads first."""

    t0_day: date | None = None
    days_since_t0: int | None = None  # evaluation day - T0 day
    crp_baseline: Measurement | None = None
    crp_latest: Measurement | None = None
    # the lowest CRP since T0 and from the baseline on, before the latest
    crp_lowest_earlier: Measurement | None = None
    crp_percent_change: float | None = None  # (latest - baseline) / baseline * 100, signed
    crp_rise_pct: float | None = None  # (latest - lowest earlier) / lowest earlier * 100
    pain_first: Measurement | None = None
    pain_lowest: Measurement | None = None
    pain_latest: Measurement | None = None
    esr_first: Measurement | None = None
    esr_latest: Measurement | None = None
    # the latest CRP was taken within crp_max_age_days of the order (judged here once;
    # the next steps read it to decide whether to ask for CRP/ESR)
    crp_recent: bool = False
    # the latest ESR is as recent as a CRP must be: then only a CRP is asked for
    esr_recent: bool = False
    # the CRP baseline lies within baseline_window_days of T0 (else it is the first value
    # after the start)
    crp_baseline_in_window: bool = False
    # the latest CRP above its lowest earlier one, in % above it, when that rise does not
    # fire the rise rule (over the normal limit, not on the lowest's day); and whether
    # it is over the rise threshold, kept from counting only by its day (by day
    # rise_after_days): a rise too early to count
    crp_up_from_lowest_pct: float | None = None
    crp_rise_too_early: bool = False
    # the CRP search was cut off short of the baseline window (read_gaps.read_short): its
    # first value read may not be the baseline, on every card (the gap it makes, only
    # where no red flag decides)
    crp_read_short: bool = False
    # pain scores since T0 that could not be used (read_gaps.unusable_pain): a card with
    # none usable says so, never "no pain score"
    pain_unusable: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Key figures with absent values left out (CDS Hooks forbids nulls)."""
        out: dict[str, Any] = {}
        if self.t0_day is not None:
            out["t0"] = self.t0_day.isoformat()
        if self.days_since_t0 is not None:
            out["daysSinceT0"] = self.days_since_t0
        for key, m in (
            ("crpBaseline", self.crp_baseline),
            ("crpLatest", self.crp_latest),
            ("crpLowestEarlier", self.crp_lowest_earlier),
            ("painFirst", self.pain_first),
            ("painLowest", self.pain_lowest),
            ("painLatest", self.pain_latest),
            ("esrFirst", self.esr_first),
            ("esrLatest", self.esr_latest),
        ):
            if m is not None:
                out[key] = figure(m, self.t0_day)
        if self.crp_percent_change is not None:
            out["crpPercentChange"] = round(self.crp_percent_change, 1)
        if self.crp_rise_pct is not None:
            out["crpRisePct"] = round(self.crp_rise_pct, 1)
        return out


@dataclass(frozen=True)
class Assessment:
    """The decision for one invocation, with the data behind it."""

    recommendation: Recommendation
    evaluated_at: datetime
    evaluation_day: date
    evaluation_time_source: str  # "authoredOn" | "now"
    orders: tuple[ImagingOrder, ...]
    settings: RuleSettings
    not_applicable_reason: NotApplicableReason | None = None
    episode: Episode | None = None
    rules_fired: tuple[RuleFinding, ...] = ()
    crp: tuple[Measurement, ...] = ()
    pain: tuple[Measurement, ...] = ()
    esr: tuple[Measurement, ...] = ()
    figures: KeyFigures = field(default_factory=KeyFigures)
    missing: tuple[Remark, ...] = ()
    unmet: tuple[Remark, ...] = ()
    notes: tuple[Remark, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    issues: tuple[DataIssue, ...] = ()
    # deficits and complications found with the infection (dated no later than the
    # diagnosis window): named on every card, never a "new" red flag
    known: tuple[ConditionFact, ...] = ()
    # the orders that image the infected level (all of them when the level is unknown);
    # advise-against and its delete suggestion apply to these only
    covering: tuple[str, ...] = ()
    # the infected region from the episode's codes (None: unknown, unspecified)
    infection_region: str | None = None
    # optional kinds of data that could not be read (e.g. "antibiotics")
    unavailable: frozenset[str] = frozenset()
    # on a support or urgent card: the orders that cannot answer its question, each with
    # why (engine/study.py), and the study that can (None for a mechanical question)
    study_gaps: Mapping[str, str] = field(default_factory=dict)
    answering_study: Study | None = None
    # completed years at the evaluation day; None when the birthDate is not known (the
    # decision then goes ahead as for an adult, and the audit says so)
    age_years: int | None = None
    # the birthDate read lies after the evaluation day (a placeholder such as 9999-12-31):
    # no age, and not a child's either
    birth_after_evaluation: bool = False
    # what the card asks for next; not in to_dict: each follows from what the record
    # holds (the recommendation, figures, notes, orders and study gaps)
    next_steps: NextSteps = field(default_factory=NextSteps)

    @property
    def applicable(self) -> bool:
        return self.recommendation is not Recommendation.NOT_APPLICABLE

    @property
    def red_flags(self) -> tuple[RuleFinding, ...]:
        return tuple(f for f in self.rules_fired if f.rule_id in RED_FLAG_RULES)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able audit record: the decision, its inputs and the settings used."""
        out: dict[str, Any] = {
            "recommendation": self.recommendation.value,
            "evaluatedAt": self.evaluated_at.isoformat(),
            "evaluationDay": self.evaluation_day.isoformat(),
            "evaluationTimeSource": self.evaluation_time_source,
            "orders": [order_to_dict(o) for o in self.orders],
            "settings": self.settings.to_dict(),
            "rulesFired": [f.to_dict() for f in self.rules_fired],
            "crp": [measurement_to_dict(m) for m in self.crp],
            "pain": [measurement_to_dict(m) for m in self.pain],
            "esr": [measurement_to_dict(m) for m in self.esr],
            "figures": self.figures.to_dict(),
            "missing": [r.to_dict() for r in self.missing],
            "unmet": [r.to_dict() for r in self.unmet],
            "notes": [r.to_dict() for r in self.notes],
            "counts": dict(self.counts),
            "issues": [{"reference": i.reference, "reason": i.reason} for i in self.issues],
        }
        if self.not_applicable_reason is not None:
            out["notApplicableReason"] = self.not_applicable_reason.value
        if self.age_years is not None:
            out["ageYears"] = self.age_years
        else:
            out["ageUnknown"] = True  # no birthDate: decided as for an adult
        if self.birth_after_evaluation:
            out["birthDateAfterOrder"] = True
        if self.episode is not None:
            out["episode"] = self.episode.to_dict()
        if self.known:
            out["knownAtDiagnosis"] = [condition_to_dict(c) for c in self.known]
        if self.orders:
            out["coveringOrders"] = list(self.covering)
        if self.infection_region is not None:
            out["infectionRegion"] = self.infection_region
        if self.study_gaps:
            out["studyGaps"] = dict(self.study_gaps)
        if self.answering_study is not None:
            out["answeringStudy"] = self.answering_study.to_dict()
        return out
