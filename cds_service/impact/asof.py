"""What was on a patient's record at a past moment: the as-of view a replayed order sees.

A Bulk export holds each resource as it is now. For an order placed at time T the
replay keeps only what the chart could have shown then, and says what it left out:

- an Observation whose effective time (a period's end, else its start) and, when
  given, its ``issued`` are both before T;
- a Condition recorded before T (``recordedDate``, else its onset); one whose
  abatement falls after T was still going on at T, so the as-of copy has no abatement
  and reads as active;
- a MedicationRequest authored before T;
- a Medication, referenced by an order kept, as is (a catalogue entry has no date);
- a Procedure performed before T (``performedDateTime``, else ``performedPeriod.start``);
- an ImagingStudy ``started`` before T;
- a DiagnosticReport whose effective time (``effectiveDateTime``, else a period's end,
  else its start) and ``issued``, each when given, are before T (at least one given):
  a study done before the order but reported after it was not on the chart;
- the Patient, always (a birth date does not change with time).

Each type a declared data source reads (``cds_service.datasources``) has one rule in
``RULES``; a type without one is an error, never data dropped or kept unseen.

"Before" is strict. A value with a time is compared as an instant; a date without a
time (or a partial date: a month, a year) is before T only when its whole span ends
before the order's day as written: a test result known only as "on the order's day"
cannot be shown to have been there when the order was signed, so it is left out.
Statuses changed later (an Observation amended, a Condition entered in error) cannot
be dated from an export and are taken as they are now. Nothing here reads a clock or
a file.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cds_service.datasources import SOURCES
from fhir_mappers.model import When
from fhir_mappers.timeutil import parse_fhir_time

__all__ = [
    "RULES",
    "VIEW_TYPES",
    "AsOf",
    "as_of",
    "is_before",
    "missing_rules",
    "order_time",
    "rules_problem",
    "when_of",
]

# A rule's verdict: the resource (or its as-of copy) when it was on record before the
# order, None when it came after, a gap kind when it cannot be dated.
Verdict = dict[str, Any] | str | None
_ABATEMENT_TIMES = (("abatementDateTime",), ("abatementPeriod", "start"))
_ACTIVE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active",
        }
    ]
}


def when_of(value: object) -> When | None:
    """A FHIR date/dateTime/instant read, or None when it is missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return parse_fhir_time(value)
    except ValueError:
        return None


def _span_end(text: str, when: When) -> date:
    """The last day a date-only value may mean: the day, or the end of its month/year."""
    if len(text) == 4:
        return date(when.day.year, 12, 31)
    if len(text) == 7:
        last = calendar.monthrange(when.day.year, when.day.month)[1]
        return date(when.day.year, when.day.month, last)
    return when.day


def is_before(value: object, order: When) -> bool | None:
    """Whether the time ``value`` is certainly before the order; None when unreadable."""
    when = when_of(value)
    if when is None:
        return None
    if when.date_only:
        assert isinstance(value, str)  # when_of read it
        return _span_end(value, when) < order.day
    if order.date_only:
        return when.day < order.day
    return when.instant < order.instant


def order_time(order: Mapping[str, Any]) -> When | None:
    """The order's authoredOn; None when it has none that can be read."""
    return when_of(order.get("authoredOn"))


def _get(resource: Mapping[str, Any], *path: str) -> object:
    node: object = resource
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _first_of(resource: Mapping[str, Any], paths: tuple[tuple[str, ...], ...]) -> object:
    """The value at the first of ``paths`` that ``resource`` has, else None."""
    for path in paths:
        value = _get(resource, *path)
        if value is not None:
            return value
    return None


def _observation_time(resource: Mapping[str, Any]) -> object:
    return _first_of(resource, _OBSERVATION_EFFECTIVE)


# effective[x] as each type has it (R4: an Observation also has effectiveInstant).
_OBSERVATION_EFFECTIVE = (
    ("effectiveDateTime",),
    ("effectiveInstant",),
    ("effectivePeriod", "end"),
    ("effectivePeriod", "start"),
)
_REPORT_EFFECTIVE = (
    ("effectiveDateTime",),
    ("effectivePeriod", "end"),
    ("effectivePeriod", "start"),
)


@dataclass
class AsOf:
    """The resources on record before the order, and what was left out for want of a date
    (gap kind -> count; "after the order" is not a gap, it is the point)."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    undated: dict[str, int] = field(default_factory=dict)

    def _undated(self, kind: str) -> None:
        self.undated[kind] = self.undated.get(kind, 0) + 1


def _condition_as_of(resource: dict[str, Any], order: When) -> dict[str, Any]:
    for path in _ABATEMENT_TIMES:
        value = _get(resource, *path)
        if value is not None and is_before(value, order) is False:
            copy = {k: v for k, v in resource.items() if not k.startswith("abatement")}
            copy["clinicalStatus"] = _ACTIVE
            return copy
    return resource


def _observation_rule(resource: dict[str, Any], order: When) -> Verdict:
    effective = is_before(_observation_time(resource), order)
    if effective is None:
        return "Observation without a readable effective time"
    if not effective:
        return None
    issued = resource.get("issued")
    known = True if issued is None else is_before(issued, order)
    if known is None:
        return "Observation with an unreadable issued time"
    return resource if known else None


def _condition_rule(resource: dict[str, Any], order: When) -> Verdict:
    recorded = resource.get("recordedDate")
    before = is_before(recorded if recorded is not None else _onset(resource), order)
    if before is None:
        return "Condition without a readable recordedDate or onset"
    return _condition_as_of(resource, order) if before else None


def _medication_request_rule(resource: dict[str, Any], order: When) -> Verdict:
    before = is_before(resource.get("authoredOn"), order)
    if before is None:
        return "MedicationRequest without a readable authoredOn"
    return resource if before else None


def _procedure_rule(resource: dict[str, Any], order: When) -> Verdict:
    performed = resource.get("performedDateTime")
    if performed is None:
        performed = _get(resource, "performedPeriod", "start")
    before = is_before(performed, order)
    if before is None:
        return "Procedure without a readable performed time"
    return resource if before else None


def _imaging_study_rule(resource: dict[str, Any], order: When) -> Verdict:
    before = is_before(resource.get("started"), order)
    if before is None:
        return "ImagingStudy without a readable started time"
    return resource if before else None


def _report_time(resource: Mapping[str, Any]) -> object:
    return _first_of(resource, _REPORT_EFFECTIVE)


def _diagnostic_report_rule(resource: dict[str, Any], order: When) -> Verdict:
    times = [t for t in (_report_time(resource), resource.get("issued")) if t is not None]
    if not times:
        return "DiagnosticReport without an effective or issued time"
    verdicts = [is_before(t, order) for t in times]
    if None in verdicts:
        return "DiagnosticReport with an unreadable effective or issued time"
    return resource if all(verdicts) else None


def _patient_rule(resource: dict[str, Any], order: When) -> Verdict:
    return resource  # who the patient is (birthDate, gender) does not change with time


# Each resource type a hook's data can hold -> what was on record before the order.
# One rule a type; ``missing_rules`` names a declared type without one, and the replay
# refuses to start rather than drop or keep such data unseen.
RULES: Mapping[str, Callable[[dict[str, Any], When], Verdict]] = {
    "Patient": _patient_rule,
    "Observation": _observation_rule,
    "Condition": _condition_rule,
    "MedicationRequest": _medication_request_rule,
    "Procedure": _procedure_rule,
    "ImagingStudy": _imaging_study_rule,
    "DiagnosticReport": _diagnostic_report_rule,
}

#: What a hook's data can hold: the Patient and the type each declared data source reads
#: (``cds_service.datasources``); a Medication comes in only through an order kept.
VIEW_TYPES = frozenset({"Patient", *(s.resource_type for s in SOURCES)})


def missing_rules(types: Iterable[str] | None = None) -> list[str]:
    """The types among ``types`` (by default ``VIEW_TYPES``) that have no as-of rule,
    sorted: none, when all is well."""
    return sorted(set(VIEW_TYPES if types is None else types) - set(RULES))


def rules_problem() -> str | None:
    """Why a replay must not start (a data source the as-of view cannot date), or None."""
    missing = missing_rules()
    if not missing:
        return None
    return (
        "no as-of rule (cds_service/impact/asof.py) for the data source type "
        + ", ".join(missing)
        + ": its data would be dropped or leak from after the order"
    )


def as_of(
    resources: Iterable[dict[str, Any]],
    order: When,
    medications: Mapping[str, dict[str, Any]] | None = None,
) -> AsOf:
    """The patient's resources on record before ``order`` (see the module's rules), with
    the Medications the orders kept reference. A resource of a type with no rule is a
    ValueError: left out it would hide data, kept it could leak the future."""
    out = AsOf()
    wanted_medications: set[str] = set()
    for resource in resources:
        rtype = resource.get("resourceType")
        rule = RULES.get(rtype) if isinstance(rtype, str) else None
        if rule is None:
            raise ValueError(f"no as-of rule for resources of type {rtype!r}")
        verdict = rule(resource, order)
        if isinstance(verdict, str):
            out._undated(verdict)
        elif verdict is not None:
            out.resources.append(verdict)
            ref = _get(verdict, "medicationReference", "reference")
            if rtype == "MedicationRequest" and isinstance(ref, str):
                wanted_medications.add(ref)
    for ref in sorted(wanted_medications):
        medication = (medications or {}).get(ref)
        if medication is not None:
            out.resources.append(medication)
    return out


def _onset(resource: Mapping[str, Any]) -> object:
    onset = resource.get("onsetDateTime")
    return onset if onset is not None else _get(resource, "onsetPeriod", "start")
