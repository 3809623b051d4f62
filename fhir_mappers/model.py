"""Domain objects the rules read, independent of FHIR's shape.

The mappers turn FHIR resources into these; the engine reads only these. They are
frozen so that an Assessment can hold them and be audited later without anyone
having changed them in between.

Why the domain model lives in ``fhir_mappers`` and not in the engine: the project's
design fixes the top-level packages (``cds_service/`` and ``fhir_mappers/``), and the
mappers must not import from ``cds_service``; so the types both sides share sit here,
at the mappers' output, and the engine (``cds_service/engine``) imports them.

Time: every instant is a timezone-aware ``datetime``. A date-only FHIR value becomes
midnight UTC of that day for ordering, and ``day`` keeps the calendar date as written
(for a dateTime: the date in its own offset), because the rules count whole days the
way clinicians do ("CRP on day 28").

Records made once per resource (Coding, When, Measurement, ConditionFact, DataIssue) are
frozen ``msgspec.Struct`` classes, not frozen dataclasses: a request maps hundreds of
Observations, and a frozen dataclass of eleven fields costs over ten times as much to
build as a frozen Struct (one ``object.__setattr__`` per field; bench/records.py times
both), which made them most of the mapper's time. They behave the same for the
code that reads them: immutable, compared and hashed by value, built by keyword or
position; ``msgspec.structs.replace`` stands in for ``dataclasses.replace``. They are
not tracked by the cyclic garbage collector (``gc=False``): they hold only strings,
numbers, dates and other such records, so they can never be part of a cycle, and
hundreds per request no longer count towards triggering collections. Records made once
per request stay dataclasses.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from msgspec import Struct


class Coding(Struct, frozen=True, gc=False):
    """A code as it appeared on the resource (display is optional)."""

    system: str
    code: str
    display: str | None = None


class When(Struct, frozen=True, gc=False):
    """A point in time as the data gave it: an instant for ordering, a day for counting.

    A partial date ("2026-09", "2026") is a whole month or year, not its first day:
    ``partial`` says which ("month" or "year"; None for a full date or a dateTime), and
    ``day`` is then only the period's first day, for ordering. What the record says is
    ``shown``; the last day it allows is ``last_day``.
    """

    instant: datetime
    day: date
    date_only: bool = False
    partial: str | None = None  # "month" | "year": the precision of a partial date

    @property
    def last_day(self) -> date:
        """The last day the value may mean: the day itself, or the end of its month/year."""
        if self.partial == "year":
            return date(self.day.year, 12, 31)
        if self.partial == "month":
            days = calendar.monthrange(self.day.year, self.day.month)[1]
            return date(self.day.year, self.day.month, days)
        return self.day

    @property
    def shown(self) -> str:
        """The date as the record holds it: "2026", "2026-09", else the day."""
        if self.partial == "year":
            return f"{self.day.year:04d}"
        if self.partial == "month":
            return self.day.isoformat()[:7]
        return self.day.isoformat()


class Modality(StrEnum):
    MRI = "MRI"
    CT = "CT"


@dataclass(frozen=True)
class OrderReason:
    """One stated reason of an imaging order (reasonCode or reasonReference).

    ``routine`` says whether it is the infection or spinal pain (clinical-rules.md,
    "Imaging", 2026-12-06: routine follow-up of the infection); None for a reference,
    which the engine resolves against the patient's Conditions.
    """

    name: str | None  # the value set's clinical name, else the display or text
    routine: bool | None
    reference: str | None = None  # "Condition/<id>" for a reasonReference
    # a reasonCode with a code of the conditions value set: anything else (text only, a
    # local code) may well mean the infection, but cannot be read as it
    read: bool = True


@dataclass(frozen=True)
class ImagingOrder:
    """A draft spine MRI/CT order recognised from ServiceRequest.code."""

    reference: str  # "ServiceRequest/<id>"
    modality: Modality
    region: str  # "cervical" | "thoracic" | "lumbar" | "spine" (whole or unspecified)
    contrast: str | None  # "without" | "with" | "without-and-with" | None when unknown
    codes: tuple[Coding, ...]  # the codings that matched the value set
    authored_on: When | None
    resource: dict[str, object] = field(
        compare=False, repr=False
    )  # the raw draft, for update/delete actions
    # ServiceRequest.priority (routine | urgent | asap | stat), None when absent
    priority: str | None = None
    reasons: tuple[OrderReason, ...] = ()
    # False for an order read in part because it is not valid R4: assessed, but never
    # written back in an update (a rating, a changed study), which would echo what could
    # not be validated (control characters, a list where a code belongs)
    valid: bool = True

    @property
    def identified(self) -> bool:
        """The draft has an id: a suggestion can name it in a delete or an update. One
        without gets none (its reference, "ServiceRequest/#0", is the service's own
        label, which no EHR knows: an integrator's review found it in both)."""
        ident = self.resource.get("id")
        return isinstance(ident, str) and bool(ident)


class ConditionCategory(StrEnum):
    NVO = "nvo"  # pyogenic vertebral osteomyelitis / discitis, in scope
    NVO_UNSPECIFIED = (
        "nvo-unspecified"  # in scope, but an uncertain diagnosis unless confirmed (M46.4x)
    )
    NVO_OTHER_INFECTIVE = "nvo-other-infective"  # M46.5x: in scope only when the setting says so
    OUT_OF_SCOPE = "out-of-scope"  # tuberculous/brucellar spondylitis, implant-associated infection
    COMPLICATION = "complication"  # epidural/intraspinal, psoas or retroperitoneal abscess
    # collapse, pathological fracture, instability, kyphosis: the study is standing
    # radiographs (and CT), not MRI (clinical-rules.md, "Imaging", 2026-12-06)
    MECHANICAL = "mechanical"
    NEURO_DEFICIT = "neuro-deficit"  # cauda equina, paraplegia, myelopathy, ...
    MIMIC = "mimic"  # degenerative disc disease, vertebral neoplasm/metastasis
    # transplant, neutropenia, immunodeficiency, HIV, systemic steroids: no advise-against
    # (clinical-rules.md, "Imaging", 2026-12-06)
    IMMUNOSUPPRESSION = "immunosuppression"
    # bacteraemia: recorded after the diagnosis window, no favourable response (an outside
    # clinician's review, 2026-12-07, to be confirmed by the clinical reviewers)
    BACTERAEMIA = "bacteraemia"
    # back or neck pain: read only as an imaging order's stated reason (routine follow-up)
    SPINAL_PAIN = "spinal-pain"
    OTHER = "other"


class ConditionFact(Struct, frozen=True, gc=False):
    """What the rules need from one Condition."""

    reference: str  # "Condition/<id>" (or "Condition/#<index>" when it has no id)
    category: ConditionCategory
    codes: tuple[Coding, ...]
    # condition-clinical: active | recurrence | relapse | inactive | remission | resolved
    clinical_status: str | None
    # condition-ver-status: unconfirmed | provisional | differential | confirmed | refuted |
    # entered-in-error
    verification_status: str | None
    onset: When | None  # onsetDateTime, else onsetPeriod.start
    recorded: When | None  # recordedDate
    abatement: When | None  # abatementDateTime, else abatementPeriod.start (or .end)
    # any abatement[x] at all, also one without a time (abatementAge/Range/String)
    abatement_present: bool = False
    # the clinical name of the value-set entry that matched ("cauda equina syndrome"), for
    # cards; None when no entry names it
    name: str | None = None
    # where on the spine (fhir_mappers.valuesets.CONDITION_REGIONS): the entry's region, else
    # from an ICD-10-CM M46.2x-M46.5x code's fifth character; None: unknown or unspecified
    region: str | None = None

    @property
    def start(self) -> When | None:
        """Onset, or the recorded date when onset is absent (clinical-rules.md)."""
        return self.onset or self.recorded


class MeasurementKind(StrEnum):
    CRP = "crp"  # mg/L
    ESR = "esr"  # mm/h
    PAIN = "pain"  # 0-10


class Measurement(Struct, frozen=True, gc=False):
    """One usable observation value, normalised to the kind's unit."""

    reference: str  # "Observation/<id>"
    kind: MeasurementKind
    value: float  # normalised: CRP mg/L, ESR mm/h, pain 0-10
    unit: str  # the normalised unit: "mg/L", "mm/h", "{score}"
    when: When
    code: Coding  # the LOINC coding that identified it
    status: str
    original_value: float
    original_unit: str | None
    comparator: str | None = None  # "<", "<=", ">=", ">" when the value is a limit
    high_sensitivity: bool = False  # hs-CRP (used only when no standard CRP exists)


class DataIssue(Struct, frozen=True, gc=False):
    """A resource (or part of one) that was skipped, with the reason, for the audit.

    ``kind`` and ``plain`` let a card name what was left out in clinical words ("1 CRP
    marked entered-in-error was ignored") without showing resource ids or parser text.
    """

    reference: str
    reason: str
    kind: str | None = None  # "crp" | "esr" | "pain" when an Observation of a known kind
    plain: str | None = None  # e.g. "marked entered-in-error", for the card
    # What the chart shows of a left-out value, so a card can name it ("a preliminary CRP
    # of 95 mg/L on day 30") and a pending rise can block advise-against: the value
    # normalised to the kind's unit, its time, status and comparator; a text result quoted.
    value: float | None = None
    unit: str | None = None
    when: When | None = None
    status: str | None = None
    comparator: str | None = None
    text: str | None = None
    # A number with no value above (its unit cannot be converted, none is given, or the
    # conversion is off): as the chart shows it, so a card can name it; never converted.
    reported: ReportedValue | None = None
    # The resource was still used, read in part (an element taken as absent, a red flag
    # kept for its code): the card does not count it among what was "not used".
    kept: bool = False
    # What became of a medication order, for the decisions the card makes on it (never
    # read from the words above): one of ORDER_CODES, else None.
    code: str | None = None


# DataIssue.code of an order (fhir_mappers/medications.py): it has no start that can be
# read, so it does not count; its start was read from authoredOn, and it counts; it does
# not count for another reason (a draft, not systemic, a drug that could not be read).
ORDER_UNDATED = "order-undated"
ORDER_DATED_FROM_AUTHORED_ON = "order-dated-from-authoredOn"
ORDER_NOT_COUNTED = "order-not-counted"
ORDER_CODES = frozenset({ORDER_UNDATED, ORDER_DATED_FROM_AUTHORED_ON, ORDER_NOT_COUNTED})


class ReportedValue(Struct, frozen=True, gc=False):
    """A left-out number as reported (clinical-rules.md, "Reading the data": a unit that
    cannot be converted is skipped and reported)."""

    value: float
    unit: str | None  # the unit as the record writes it; None: none given
    comparator: str | None = None
    # a CRP whose unit belongs to the other CRP code: "crp" (a mass unit, mg/L, mg/dL or g/L,
    # under the molar code) or "crp-molar" (nmol/L under a mass-concentration code)
    unit_of: str | None = None
    # the UCUM code when it names a unit of another scale than the unit text (``unit``):
    # "mg/L" beside "mg/dL"; the value could be either, so it was not read
    code: str | None = None


@dataclass(frozen=True)
class PatientData:
    """Everything mapped from the prefetch/fetch for one invocation."""

    conditions: tuple[ConditionFact, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    issues: tuple[DataIssue, ...] = ()
    # The kinds of data ("conditions", "crp", "esr", "pain") whose search paging was cut
    # off (page limit, runaway or looping next links): older results may be missing.
    cut_off: frozenset[str] = frozenset()
    # The kinds whose search failed in part (the EHR's search result carried an error
    # OperationOutcome, and it could not be fetched again): any result may be missing,
    # the newest as well as the oldest.
    failed_in_part: frozenset[str] = frozenset()
    # systemic antibiotic orders with their start, for T0 (clinical-rules.md, 2026-12-06)
    antibiotics: tuple[AntibioticStart, ...] = ()
    # optional kinds of data that could not be read at all (e.g. "antibiotics")
    unavailable: frozenset[str] = frozenset()
    # the Patient's birthDate (adults only); None: not recorded or not read
    birth_date: date | None = None
    # spine operations on record (fusion, debridement): a CT after one is not advised against
    spine_surgery: tuple[SpineSurgery, ...] = ()
    # spine MRI/CT studies done (ImagingStudy, DiagnosticReport): the last one is named
    prior_studies: tuple[PriorStudy, ...] = ()
    # order-select: the spine drafts of the order set that are not selected (not in
    # question: the card never judges them, but never orders what one already orders)
    other_drafts: tuple[ImagingOrder, ...] = ()
    # the markers a draft lab order of the order set already measures (a CRP or ESR
    # ServiceRequest, selected or not): a card never orders them again
    drafted_markers: frozenset[MeasurementKind] = frozenset()


class PriorStudy(Struct, frozen=True, gc=False):
    """A spine study already done (clinical-rules.md, "Imaging", 2026-12-06)."""

    reference: str  # "ImagingStudy/<id>" or "DiagnosticReport/<id>"
    modality: Modality
    region: str
    when: When
    # as the imaging value set gives it for the study's code: "without" | "with" |
    # "without-and-with", None when the code does not say (whether it can have shown
    # an abscess or a deficit depends on it)
    contrast: str | None = None


class SpineSurgery(Struct, frozen=True, gc=False):
    """A spine operation on record (clinical-rules.md, "Imaging", 2026-12-06)."""

    reference: str  # "Procedure/<id>"
    name: str  # the value set's name, e.g. "lumbar fusion"
    when: When | None  # performed; None when the record gives no readable time
    kind: str | None = None  # the value set's kind: "fusion", "debridement" or not said


class AntibioticStart(Struct, frozen=True, gc=False):
    """The start of one systemic antibiotic order (clinical-rules.md 'T0, the treatment start')."""

    reference: str  # "MedicationRequest/<id>"
    when: When
    name: str  # the clinical ingredient name, e.g. "vancomycin"
    source: str  # the element that gave the start: "boundsPeriod.start" or "authoredOn"
