"""Observation resources -> Measurement (CRP mg/L, ESR mm/h, pain 0-10).

Performance shapes this module (performance-notes.md): a request may carry hundreds of
Observations and the full fhir.resources model costs ~150 us each. So it works on the
raw JSON in one pass: select by resourceType, LOINC code, status and time window with
plain dict reads, then check strictly, by type, only the elements the rules read (code,
status, effective[x]/issued, value[x]). A selected Observation whose elements are
malformed is skipped with a DataIssue that says why; nothing raises. The rest of the
resource is not validated, by design: the rules do not read it.

Policy that needs the whole series (e.g. "hs-CRP only when there is no standard CRP")
is the engine's: this module only marks hs-CRP with ``high_sensitivity``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from msgspec import UNSET, UnsetType

from fhir_mappers.model import Coding, DataIssue, Measurement, MeasurementKind, When
from fhir_mappers.rawjson import reference
from fhir_mappers.timeutil import parse_fhir_time, usual_time
from fhir_mappers.valuesets import ObservationEntry, ObservationKind, ValueSets
from fhir_mappers.wire import ObservationBytes, WireConcept, WireObservation

USED_STATUSES = frozenset({"final", "amended", "corrected"})
COMPARATORS = frozenset({"<", "<=", ">=", ">"})

# Units compared lower-case, so "mg/l" and "MG/DL" from hand-typed unit strings work too.
_CRP_MASS_TO_MG_PER_L = {"mg/l": 1.0, "mg/dl": 10.0}
_CRP_MOLAR_UNITS = frozenset({"nmol/l"})
_ESR_UNITS = frozenset({"mm/h", "mm/hr"})
_PAIN_MAX = 10.0


@dataclass(frozen=True)
class MappingOptions:
    """Settings the mapping needs; the defaults follow clinical-rules.md 'Reading the data'."""

    accept_preliminary: bool = False
    # clinical-rules: 1 mg/L = 9.524 nmol/L; molar CRP is used only when this is configured.
    crp_molar_factor_nmol_per_mg: float | None = None
    # Skip observations before this instant (the rules read from T0 - 7 d on). A cheap
    # pre-filter, inclusive by day: a value is dropped only when both its instant and its
    # calendar day are before ``since``, so the engine still applies the exact window.
    since: datetime | None = None

    def __post_init__(self) -> None:
        factor = self.crp_molar_factor_nmol_per_mg
        if factor is not None and not (math.isfinite(factor) and factor > 0):
            raise ValueError("crp_molar_factor_nmol_per_mg must be a positive number")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since must be timezone-aware")


class _Skip(Exception):
    """A selected Observation that cannot be used; the message is the DataIssue reason.

    ``plain`` says the same in a clinician's words for the card ("marked
    entered-in-error"); the reason keeps the technical detail for the audit.
    """

    def __init__(self, reason: str, plain: str) -> None:
        super().__init__(reason)
        self.plain = plain


# What a card calls each kind of Observation when it counts the ones left out.
_KIND_NAMES = {
    ObservationKind.CRP: "crp",
    ObservationKind.CRP_HS: "crp",
    ObservationKind.CRP_MOLAR: "crp",
    ObservationKind.ESR: "esr",
    ObservationKind.PAIN: "pain",
}


def map_observations(
    resources: Iterable[Any], vs: ValueSets, options: MappingOptions
) -> tuple[tuple[Measurement, ...], tuple[DataIssue, ...]]:
    """Usable measurements in time order, and the selected Observations that were skipped."""
    # (instant, reference, position, value): sorted by time, then reference, without a
    # key function called per value (the position keeps equal keys off the records)
    keyed: list[tuple[datetime, str, int, Measurement]] = []
    issues: list[DataIssue] = []
    table = vs.observations
    for index, resource in enumerate(resources):
        if type(resource) is ObservationBytes:
            wire = resource.typed
            found = _select_wire_code(wire.code, table)
            if found is None:
                continue  # not a code the rules read: silently out of scope
            ref = f"Observation/{wire.id}" if wire.id else f"Observation/#{index}"
            measurement = _usual_wire(ref, wire, found[0], found[1], options)
            if measurement is not None:
                keyed.append((measurement.when.instant, ref, index, measurement))
                continue
            resource = resource.as_dict()  # outside the usual shape: the careful path
        if not isinstance(resource, dict):
            issues.append(DataIssue(f"#{index}", "not a JSON object: skipped"))
            continue
        if resource.get("resourceType") != "Observation":
            issues.append(DataIssue(reference(resource, index), "not an Observation: skipped"))
            continue
        found = _select_code(resource.get("code"), table)
        if found is None:
            continue  # not a code the rules read: silently out of scope
        coding, entry = found
        ref = reference(resource, index)
        try:
            measurement = _usual(ref, resource, coding, entry, options) or _measure(
                ref, resource, coding, entry, options
            )
        except _Skip as skip:
            issues.append(DataIssue(ref, str(skip), _KIND_NAMES.get(entry.kind), skip.plain))
            continue
        if measurement is not None:
            keyed.append((measurement.when.instant, ref, index, measurement))
    keyed.sort()
    return tuple(k[3] for k in keyed), tuple(issues)


def _select_code(concept: object, table: Any) -> tuple[Coding, ObservationEntry] | None:
    if not isinstance(concept, dict):
        return None
    items = concept.get("coding")
    if not isinstance(items, list):
        return None
    ignored: tuple[Coding, ObservationEntry] | None = None
    for item in items:
        if not isinstance(item, dict):
            continue
        system, code = item.get("system"), item.get("code")
        if isinstance(system, str) and isinstance(code, str):
            entry = table.get((system, code))
            if entry is not None:
                display = item.get("display")
                found = Coding(system, code, display if isinstance(display, str) else None), entry
                if entry.kind is not ObservationKind.IGNORE:
                    return found
                ignored = ignored or found  # e.g. qualitative CRP beside 1988-5: keep looking
    return ignored


def _select_wire_code(
    concept: WireConcept | UnsetType, table: Any
) -> tuple[Coding, ObservationEntry] | None:
    """``_select_code`` for a typed code (its codings are objects, its strings strings)."""
    if concept is UNSET or concept.coding is UNSET:
        return None
    ignored: tuple[Coding, ObservationEntry] | None = None
    for item in concept.coding:
        system, code = item.system, item.code
        if system is not UNSET and code is not UNSET:
            entry = table.get((system, code))
            if entry is not None:
                display = None if item.display is UNSET else item.display
                found = Coding(system, code, display), entry
                if entry.kind is not ObservationKind.IGNORE:
                    return found
                ignored = ignored or found
    return ignored


def _usual(
    ref: str,
    resource: dict[str, Any],
    coding: Coding,
    entry: ObservationEntry,
    options: MappingOptions,
) -> Measurement | None:
    """The Measurement of an Observation in the usual shape, read with few calls; None
    for any other shape, which ``_measure`` then reads (and explains when unusable).

    Usual: CRP, hs-CRP, ESR or pain; a used status; an effectiveDateTime with seconds
    and offset; a valueQuantity with a plain number, no comparator and a unit code
    (known, for CRP and ESR), or for pain a valueInteger; a value in range. On the benchmark that is
    every value, and it halves the mapper's time. The fast-path tests check that it
    gives ``_measure``'s answer whenever it gives one.
    """
    quantity = resource.get("valueQuantity")
    if type(quantity) is dict and "comparator" not in quantity:
        value, unit, text = quantity.get("value"), quantity.get("code"), quantity.get("unit")
        plain_quantity = True
    else:
        value = unit = text = None
        plain_quantity = False
    return _usual_of(
        ref,
        coding,
        entry.kind,
        options,
        resource.get("status"),
        resource.get("effectiveDateTime"),
        resource.get("valueInteger"),
        plain_quantity,
        value,
        unit,
        text,
    )


def _usual_wire(
    ref: str,
    wire: WireObservation,
    coding: Coding,
    entry: ObservationEntry,
    options: MappingOptions,
) -> Measurement | None:
    """``_usual`` for a typed Observation: the same reads, where an absent element is
    UNSET instead of missing (the typed decode has refused wrong types and nulls)."""
    quantity = wire.valueQuantity
    if quantity is not UNSET and quantity.comparator is UNSET:
        value = None if quantity.value is UNSET else quantity.value
        unit = None if quantity.code is UNSET else quantity.code
        text = None if quantity.unit is UNSET else quantity.unit
        plain_quantity = True
    else:
        value = unit = text = None
        plain_quantity = False
    return _usual_of(
        ref,
        coding,
        entry.kind,
        options,
        None if wire.status is UNSET else wire.status,
        None if wire.effectiveDateTime is UNSET else wire.effectiveDateTime,
        None if wire.valueInteger is UNSET else wire.valueInteger,
        plain_quantity,
        value,
        unit,
        text,
    )


def _usual_of(
    ref: str,
    coding: Coding,
    kind: ObservationKind,
    options: MappingOptions,
    status: object,
    effective: object,
    score: object,
    plain_quantity: bool,
    value: object,
    unit: object,
    text: object,
) -> Measurement | None:
    """The usual-shape reading shared by ``_usual`` and ``_usual_wire``, from the
    elements as read (None where absent); ``plain_quantity``: a valueQuantity object
    without a comparator."""
    if (
        kind not in _USUAL_KINDS
        or type(status) is not str
        or status not in USED_STATUSES
        or type(effective) is not str
        or options.since is not None
    ):
        return None
    when = usual_time(effective)
    if when is None:
        return None
    if score is not None:
        if kind is not ObservationKind.PAIN or type(score) is not int or not 0 <= score <= 10:
            return None
        number = float(score)
        return Measurement(
            ref, MeasurementKind.PAIN, number, "{score}", when, coding, status, number, None
        )
    if (
        not plain_quantity
        or isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or type(unit) is not str
        or not unit
        or unit != unit.strip()
        or not (text is None or type(text) is str)
    ):
        return None
    number = float(value)
    if kind is ObservationKind.PAIN:
        if number > _PAIN_MAX:
            return None
        return Measurement(
            ref, MeasurementKind.PAIN, number, "{score}", when, coding, status, number, unit
        )
    if kind is ObservationKind.ESR:
        if unit.lower() not in _ESR_UNITS:
            return None
        return Measurement(
            ref, MeasurementKind.ESR, round(number, 9), "mm/h", when, coding, status, number, unit
        )
    factor = _CRP_MASS_TO_MG_PER_L.get(unit.lower())
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


_USUAL_KINDS = frozenset(
    {ObservationKind.CRP, ObservationKind.CRP_HS, ObservationKind.ESR, ObservationKind.PAIN}
)


def _measure(
    ref: str,
    resource: dict[str, Any],
    coding: Coding,
    entry: ObservationEntry,
    options: MappingOptions,
) -> Measurement | None:
    """The Measurement, None when out of the time window; _Skip when unusable."""
    if entry.kind is ObservationKind.IGNORE:
        raise _Skip(f"{coding.code} is not read by the rules: ignored", "not a test the rules read")
    if entry.kind is ObservationKind.CRP_MOLAR and options.crp_molar_factor_nmol_per_mg is None:
        raise _Skip(
            f"molar CRP ({coding.code}) ignored: no nmol/L to mg/L factor configured",
            "reported in nmol/L (conversion turned off in the settings)",
        )

    status = resource.get("status")
    if not isinstance(status, str):
        raise _Skip("status missing or not a string: skipped", "without a result status")
    if status not in USED_STATUSES and not (status == "preliminary" and options.accept_preliminary):
        raise _Skip(f"status {status}: ignored", _status_words(status))

    when = _when(resource)
    since = options.since
    if since is not None and when.instant < since and when.day < since.date():
        return None

    if entry.kind is ObservationKind.PAIN:
        return _pain(ref, resource, coding, status, when)
    quantity = _quantity(resource)
    number, comparator = _number(quantity)
    units = _units(quantity)
    if entry.kind is ObservationKind.ESR:
        unit = _pick(units, _ESR_UNITS)
        if unit is None:
            raise _Skip(f"ESR unit {_shown(units)} is not mm/h: skipped", _BAD_UNIT)
        kind, value, normal_unit, hs = MeasurementKind.ESR, number, "mm/h", False
    elif entry.kind is ObservationKind.CRP_MOLAR:
        unit = _pick(units, _CRP_MOLAR_UNITS)
        factor = options.crp_molar_factor_nmol_per_mg
        if unit is None or factor is None:
            raise _Skip(f"molar CRP unit {_shown(units)} is not nmol/L: skipped", _BAD_UNIT)
        kind, value, normal_unit, hs = MeasurementKind.CRP, number / factor, "mg/L", False
    else:
        unit = _pick(units, _CRP_MASS_TO_MG_PER_L)
        if unit is None:
            raise _Skip(f"CRP unit {_shown(units)} cannot be converted to mg/L: skipped", _BAD_UNIT)
        hs = entry.kind is ObservationKind.CRP_HS
        kind, value, normal_unit = (
            MeasurementKind.CRP,
            number * _CRP_MASS_TO_MG_PER_L[unit.lower()],
            "mg/L",
        )
    if value < 0:
        raise _Skip(f"negative {kind.value} value: skipped", "with a negative value")
    return Measurement(
        reference=ref,
        kind=kind,
        value=round(value, 9),
        unit=normal_unit,
        when=when,
        code=coding,
        status=status,
        original_value=number,
        original_unit=unit,
        comparator=comparator,
        high_sensitivity=hs,
    )


def _pain(
    ref: str, resource: dict[str, Any], coding: Coding, status: str, when: When
) -> Measurement:
    raw_integer = resource.get("valueInteger")
    if raw_integer is not None:
        if not isinstance(raw_integer, int) or isinstance(raw_integer, bool):
            raise _Skip("valueInteger is not an integer: skipped", _NO_VALUE)
        number, comparator, unit = float(raw_integer), None, None
    else:
        quantity = _quantity(resource, also="valueInteger")
        number, comparator = _number(quantity)
        units = _units(quantity)
        unit = units[0] if units else None
    if not 0 <= number <= _PAIN_MAX:
        raise _Skip(f"pain score {number:g} outside 0-10: skipped", "outside the 0-10 scale")
    return Measurement(
        reference=ref,
        kind=MeasurementKind.PAIN,
        value=number,
        unit="{score}",
        when=when,
        code=coding,
        status=status,
        original_value=number,
        original_unit=unit,
        comparator=comparator,
    )


def _when(resource: dict[str, Any]) -> When:
    """effectiveDateTime (or effectiveInstant), else effectivePeriod.start, else issued."""
    value = resource.get("effectiveDateTime")
    if value is not None:
        return _parse_time("effectiveDateTime", value)
    value = resource.get("effectiveInstant")
    if value is not None:
        return _parse_time("effectiveInstant", value)
    period = resource.get("effectivePeriod")
    if period is not None:
        if not isinstance(period, dict):
            raise _Skip("effectivePeriod is not an object: skipped", _NO_DATE)
        start = period.get("start")
        if start is not None:
            return _parse_time("effectivePeriod.start", start)
    issued = resource.get("issued")
    if issued is not None:
        return _parse_time("issued", issued)
    raise _Skip("no effectiveDateTime, effectivePeriod.start or issued: skipped", _NO_DATE)


def _parse_time(element: str, value: object) -> When:
    try:
        return parse_fhir_time(value)
    except ValueError as exc:
        raise _Skip(f"{element} not read ({exc}): skipped", _NO_DATE) from None


def _quantity(resource: dict[str, Any], also: str | None = None) -> dict[str, Any]:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        return quantity
    if quantity is not None:
        raise _Skip("valueQuantity is not an object: skipped", _NO_VALUE)
    other = next((key for key in resource if key.startswith("value")), None)
    expected = "valueQuantity" + (f" or {also}" if also else "")
    if other is not None:
        raise _Skip(f"{other} is not a usable number ({expected} expected): skipped", _NO_VALUE)
    absent = " (dataAbsentReason given)" if resource.get("dataAbsentReason") is not None else ""
    raise _Skip(f"no value{absent}: skipped", _NO_VALUE)


def _number(quantity: dict[str, Any]) -> tuple[float, str | None]:
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise _Skip("valueQuantity.value is missing or not a number: skipped", _NO_VALUE)
    number = float(value)
    if not math.isfinite(number):
        raise _Skip("valueQuantity.value is not finite: skipped", _NO_VALUE)
    comparator = quantity.get("comparator")
    if comparator is not None and comparator not in COMPARATORS:
        raise _Skip(
            f"valueQuantity.comparator {comparator!r} is not one of < <= >= >: skipped", _NO_VALUE
        )
    return number, comparator


def _units(quantity: dict[str, Any]) -> tuple[str, ...]:
    """Unit candidates in order of trust: the (UCUM) code, then the human-readable unit."""
    code, unit = quantity.get("code"), quantity.get("unit")
    if code is not None and not isinstance(code, str):
        raise _Skip("valueQuantity.code is not a string: skipped", _BAD_UNIT)
    if unit is not None and not isinstance(unit, str):
        raise _Skip("valueQuantity.unit is not a string: skipped", _BAD_UNIT)
    code = code.strip() if code else ""
    unit = unit.strip() if unit else ""
    if code and unit:
        return (code, unit)
    return (code,) if code else (unit,) if unit else ()


def _pick(units: tuple[str, ...], known: Collection[str]) -> str | None:
    """The first candidate that is a known unit (compared lower-case)."""
    for unit in units:
        if unit.lower() in known:
            return unit
    return None


_BAD_UNIT = "in a unit that could not be converted"
_NO_VALUE = "without a usable value"
_NO_DATE = "without a usable date"


def _status_words(status: str) -> str:
    if status in {"entered-in-error", "cancelled"}:
        return f"marked {status}"
    return f"not final (status {status})"


def _shown(units: tuple[str, ...]) -> str:
    return " / ".join(repr(unit) for unit in units) if units else "(none)"
