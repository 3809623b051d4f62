"""What was on a patient's record at a past moment: the as-of view a replayed order sees.

A Bulk export holds each resource as it is now. For an order placed at time T the
replay keeps only what the chart could have shown then, and says what it left out:

- an Observation whose effective time (a period's end, else its start) and, when
  given, its ``issued`` are both before T;
- a Condition recorded before T (``recordedDate``, else its onset); one whose
  abatement falls after T was still going on at T, so the as-of copy has no abatement
  and reads as active;
- a MedicationRequest authored before T;
- a Medication, referenced by an order kept, as is (a catalogue entry has no date).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_mappers.model import When
from fhir_mappers.timeutil import parse_fhir_time

__all__ = ["AsOf", "as_of", "is_before", "order_time", "when_of"]

# What the as-of view reads of each type; the others are not part of a hook's data.
DATED_TYPES = ("Observation", "Condition", "MedicationRequest")
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


def _observation_time(resource: Mapping[str, Any]) -> object:
    for path in (
        ("effectiveDateTime",),
        ("effectiveInstant",),
        ("effectivePeriod", "end"),
        ("effectivePeriod", "start"),
    ):
        value = _get(resource, *path)
        if value is not None:
            return value
    return None


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


def as_of(
    resources: Iterable[dict[str, Any]],
    order: When,
    medications: Mapping[str, dict[str, Any]] | None = None,
) -> AsOf:
    """The patient's Observations, Conditions and MedicationRequests on record before
    ``order`` (see the module's rules), with the Medications they reference."""
    out = AsOf()
    wanted_medications: set[str] = set()
    for resource in resources:
        rtype = resource.get("resourceType")
        if rtype == "Observation":
            effective = is_before(_observation_time(resource), order)
            if effective is None:
                out._undated("Observation without a readable effective time")
                continue
            if not effective:
                continue
            issued = resource.get("issued")
            known = True if issued is None else is_before(issued, order)
            if known is None:
                out._undated("Observation with an unreadable issued time")
            elif known:
                out.resources.append(resource)
        elif rtype == "Condition":
            recorded = resource.get("recordedDate")
            source = recorded if recorded is not None else _onset(resource)
            before = is_before(source, order)
            if before is None:
                out._undated("Condition without a readable recordedDate or onset")
            elif before:
                out.resources.append(_condition_as_of(resource, order))
        elif rtype == "MedicationRequest":
            before = is_before(resource.get("authoredOn"), order)
            if before is None:
                out._undated("MedicationRequest without a readable authoredOn")
            elif before:
                out.resources.append(resource)
                ref = _get(resource, "medicationReference", "reference")
                if isinstance(ref, str):
                    wanted_medications.add(ref)
    for ref in sorted(wanted_medications):
        medication = (medications or {}).get(ref)
        if medication is not None:
            out.resources.append(medication)
    return out


def _onset(resource: Mapping[str, Any]) -> object:
    onset = resource.get("onsetDateTime")
    return onset if onset is not None else _get(resource, "onsetPeriod", "start")
