"""Observation resources -> Measurement (CRP mg/L, ESR mm/h, pain 0-10): one reader.

Performance shapes this module (performance-notes.md): a request may carry hundreds of
Observations and the full fhir.resources model costs ~150 us each. So every Observation
is read typed: a ``fhir_mappers.wire`` Struct of only the elements the rules read,
decoded from its bytes (prefetched searches, fetched search pages) or converted from its
dict, and its value measured from the usual shape with few calls (``_usual``). Whatever
that declines (a shape the typed decode refuses, or one outside the usual) is read by the
one careful fallback, ``observations_careful``, from the resource as JSON, which also says
why a value is skipped. The property tests hold the two to one answer.

Policy that needs the whole series (e.g. "hs-CRP only when there is no standard CRP")
is the engine's: this module only marks hs-CRP with ``high_sensitivity``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from msgspec import UNSET

from fhir_mappers.model import Coding, DataIssue, Measurement, MeasurementKind
from fhir_mappers.observations_careful import (
    CRP_MASS_TO_MG_PER_L,
    ESR_UNITS,
    PAIN_MAX,
    USED_STATUSES,
    MappingOptions,
    Skip,
    measure,
    select_code,
    unit_key,
)
from fhir_mappers.observations_skipped import skipped
from fhir_mappers.rawjson import reference
from fhir_mappers.timeutil import usual_time
from fhir_mappers.valuesets import ObservationEntry, ObservationKind, ValueSets
from fhir_mappers.wire import (
    ObservationBytes,
    WireObservation,
    typed_observation,
)

__all__ = ["MappingOptions", "map_observations"]


def map_observations(
    resources: Iterable[Any],
    vs: ValueSets,
    options: MappingOptions,
    *,
    unread: list[Any] | None = None,
) -> tuple[tuple[Measurement, ...], tuple[DataIssue, ...]]:
    """Usable measurements in time order, and the selected Observations that were skipped:
    each read typed (the bytes' Struct of an ``ObservationBytes``, a dict converted) by
    ``_usual``, and what that declines by the careful path from the resource as JSON.

    ``unread``, when given, receives each Observation none of whose codings is one the
    value set knows, as it came in: the mapper has looked every code up already, so the
    audit's list of codes a site could teach (``cds_service.unrecognised``) need not."""
    # (instant, reference, position, value): sorted by time, then reference, without a
    # key function called per value (the position keeps equal keys off the records)
    keyed: list[tuple[datetime, str, int, Measurement]] = []
    issues: list[DataIssue] = []
    table = vs.observations
    # A request's hundreds of Observations carry a handful of distinct codes: each
    # coding, or list of codings, is looked up once (Codings are frozen, so one serves
    # them all).
    by_coding: dict[object, tuple[Coding, ObservationEntry] | None] = {}
    for index, resource in enumerate(resources):
        if type(resource) is ObservationBytes:
            typed: WireObservation | None = resource.typed
        elif type(resource) is dict:
            typed = typed_observation(resource)
        else:
            typed = None
        if typed is not None:
            concept = typed.code
            if concept is not UNSET and (listed := concept.coding) is not UNSET:
                key = listed[0] if len(listed) == 1 else tuple(listed)
                found = by_coding.get(key, _UNKNOWN)
                if found is _UNKNOWN:
                    found = by_coding[key] = select_code(typed, table)
            else:
                found = None
            if found is None:
                if unread is not None:
                    unread.append(resource)
                continue  # not a code the rules read: silently out of scope
            ref = f"Observation/{typed.id}" if typed.id else f"Observation/#{index}"
            measurement = _usual(ref, typed, found[0], found[1].kind, options)
            if measurement is not None:
                keyed.append((measurement.when.instant, ref, index, measurement))
                continue
            if type(resource) is ObservationBytes:
                resource = resource.as_dict()
        else:
            if not isinstance(resource, dict):
                issues.append(DataIssue(f"#{index}", "not a JSON object: skipped"))
                continue
            if resource.get("resourceType") != "Observation":
                issues.append(DataIssue(reference(resource, index), "not an Observation: skipped"))
                continue
            found = select_code(resource, table)
            if found is None:
                if unread is not None:
                    unread.append(resource)
                continue  # not a code the rules read: silently out of scope
            ref = reference(resource, index)
        coding, entry = found
        try:
            measurement = measure(ref, resource, coding, entry, options)
        except Skip as skip:
            issues.append(skipped(ref, skip, resource, entry.kind, options))
            continue
        if measurement is not None:
            keyed.append((measurement.when.instant, ref, index, measurement))
    keyed.sort()
    return tuple(k[3] for k in keyed), tuple(issues)


def _usual(
    ref: str,
    wire: WireObservation,
    coding: Coding,
    kind: ObservationKind,
    options: MappingOptions,
) -> Measurement | None:
    """The Measurement of a typed Observation in the usual shape, read with few calls;
    None for any other shape, which the careful path (``measure``) then reads (and
    explains when unusable).

    Usual: CRP, hs-CRP, ESR or pain; a used status; an effectiveDateTime with seconds
    and offset; a valueQuantity with a plain number, no comparator and a unit code
    (known, for CRP and ESR, UCUM annotations aside: "mg/L{CRP}" is mg/L) and, if any,
    a unit text that is the code itself (another may name another unit: the careful
    path weighs the two), or for pain a valueInteger; a value in range. On the benchmark
    that is every value. The typed decode has already refused wrong types and nulls in
    these elements, so what is left to check is their values.
    """
    status = wire.status
    effective = wire.effectiveDateTime
    if (
        status not in USED_STATUSES
        or effective is UNSET
        or kind not in _USUAL_KINDS
        or options.since is not None
        or wire.modifierExtension is not UNSET
    ):
        return None  # (a modifier extension: the careful path says why it is left out)
    when = usual_time(effective)
    if when is None:
        return None
    score = wire.valueInteger
    if score is not UNSET:
        if kind is not ObservationKind.PAIN or not 0 <= score <= PAIN_MAX:
            return None
        number = float(score)
        return Measurement(
            ref, MeasurementKind.PAIN, number, "{score}", when, coding, status, number, None
        )
    quantity = wire.valueQuantity
    if quantity is UNSET or quantity.comparator is not UNSET:
        return None
    value, unit = quantity.value, quantity.code
    if (
        type(value) is not float
        or type(unit) is not str
        or not math.isfinite(value)
        or value < 0
        or not unit
        or unit != unit.strip()
    ):
        return None
    number = value
    if kind is ObservationKind.PAIN:
        if number > PAIN_MAX:
            return None
        return Measurement(
            ref, MeasurementKind.PAIN, number, "{score}", when, coding, status, number, unit
        )
    text = quantity.unit
    if text is not UNSET and text != unit:
        return None  # a unit text other than the code: the careful path weighs the two
    if kind is ObservationKind.ESR:
        if unit.lower() not in ESR_UNITS and unit_key(unit) not in ESR_UNITS:
            return None  # (an annotation, "mm/h{Westergren}", is stripped only on a miss)
        return Measurement(
            ref, MeasurementKind.ESR, round(number, 9), "mm/h", when, coding, status, number, unit
        )
    factor = CRP_MASS_TO_MG_PER_L.get(unit.lower()) or CRP_MASS_TO_MG_PER_L.get(unit_key(unit))
    if factor is None:
        return None
    return Measurement(
        ref,
        MeasurementKind.CRP,
        round(number * factor, 9),
        "mg/L",
        when,
        coding,
        status,
        number,
        unit,
        None,
        kind is ObservationKind.CRP_HS,
    )


_UNKNOWN: Any = object()  # not yet looked up
_USUAL_KINDS = frozenset(
    {ObservationKind.CRP, ObservationKind.CRP_HS, ObservationKind.ESR, ObservationKind.PAIN}
)
