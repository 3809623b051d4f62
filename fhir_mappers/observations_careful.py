"""The careful reading of an Observation: element by element, from the resource as JSON.

``observations.map_observations`` reads every Observation typed first and measures the
usual shape with few calls; whatever that declines comes here, as the dict JSON makes of
the resource. This path reads any shape: it selects by LOINC code, then checks strictly,
by type, only the elements the rules read (code, status, effective[x]/issued, value[x]).
A selected Observation whose elements are malformed or unusable is skipped with a
DataIssue that says why, in the audit's words and a clinician's (``plain``), and for a
CRP, ESR or pain what it holds (value, unit, time, status, comparator, a text result:
``observations_skipped``), so that a card can name it; nothing raises. The rest of the
resource is not validated, by design: the rules do not read it. It is the answer the
typed reader is held to by the property tests (tests/fhir_mappers/test_observations_usual.py,
test_wire.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir_mappers.model import Coding, Measurement, MeasurementKind, When
from fhir_mappers.rawjson import MODIFIER_PLAIN, modifier_extensions, modifier_reason
from fhir_mappers.timeutil import parse_fhir_time
from fhir_mappers.valuesets import ObservationEntry, ObservationKind, canonical_system
from fhir_mappers.wire import codings

USED_STATUSES = frozenset({"final", "amended", "corrected"})
COMPARATORS = frozenset({"<", "<=", ">=", ">"})

# Units compared lower-case, so "mg/l" and "MG/DL" from hand-typed unit strings work too.
# Mass concentrations in UCUM, each by its factor to mg/L (ug/mL is mg/L: 1 ug in a mL is
# 1 mg in a L).
CRP_MASS_TO_MG_PER_L = {"mg/l": 1.0, "mg/dl": 10.0, "g/l": 1000.0, "ug/ml": 1.0}
CRP_MOLAR_UNITS = frozenset({"nmol/l"})
ESR_UNITS = frozenset({"mm/h", "mm/hr"})
PAIN_MAX = 10.0
# A UCUM annotation ("mg/L{CRP}"): curly braces around text that carries no meaning for
# the unit, so "mg/L{CRP}" is mg/L. UCUM nests no braces.
_ANNOTATION = re.compile(r"\{[^{}]*\}")


def unit_key(unit: str) -> str:
    """A unit as the tables above spell it: lower-case, without UCUM annotations
    ("mg/L{CRP}" -> "mg/l"). One alone ("{score}") leaves no unit ("")."""
    if "{" in unit:
        unit = _ANNOTATION.sub("", unit)
    return unit.lower()


# Each unit above by its scale: a unit text and a code that name two of them of another
# scale (mg/dL and mg/L, mg/L and nmol/L) say two different values, and neither is taken.
_SCALES: dict[str, tuple[str, float]] = {
    **{unit: ("mass", factor) for unit, factor in CRP_MASS_TO_MG_PER_L.items()},
    **{unit: ("molar", 1.0) for unit in CRP_MOLAR_UNITS},
    **{unit: ("rate", 1.0) for unit in ESR_UNITS},
}


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


class Skip(Exception):
    """A selected Observation that cannot be used; the message is the DataIssue reason.

    ``plain`` says the same in a clinician's words for the card ("marked
    entered-in-error"); the reason keeps the technical detail for the audit.
    """

    def __init__(self, reason: str, plain: str) -> None:
        super().__init__(reason)
        self.plain = plain


# What a card calls each kind of Observation when it counts the ones left out.
KIND_NAMES = {
    ObservationKind.CRP: "crp",
    ObservationKind.CRP_HS: "crp",
    ObservationKind.CRP_MOLAR: "crp",
    ObservationKind.ESR: "esr",
    ObservationKind.PAIN: "pain",
}


def select_code(
    resource: object, table: Mapping[tuple[str, str], ObservationEntry]
) -> tuple[Coding, ObservationEntry] | None:
    """The first coding of the Observation (typed or a dict: ``wire.codings``) the value
    sets know, with its entry; one of an ignored kind only when no other is known."""
    ignored: tuple[Coding, ObservationEntry] | None = None
    for system, code, display in codings(resource):
        if isinstance(system, str) and isinstance(code, str):
            entry = table.get((canonical_system(system), code))
            if entry is not None:
                found = Coding(system, code, display if isinstance(display, str) else None), entry
                if entry.kind is not ObservationKind.IGNORE:
                    return found
                ignored = ignored or found  # e.g. qualitative CRP beside 1988-5: keep looking
    return ignored


def measure(
    ref: str,
    resource: dict[str, Any],
    coding: Coding,
    entry: ObservationEntry,
    options: MappingOptions,
) -> Measurement | None:
    """The Measurement, None when out of the time window; Skip when unusable."""
    if entry.kind is ObservationKind.IGNORE:
        raise Skip(f"{coding.code} is not read by the rules: ignored", "not a test the rules read")
    if entry.kind is ObservationKind.CRP_MOLAR and options.crp_molar_factor_nmol_per_mg is None:
        raise Skip(
            f"molar CRP ({coding.code}) ignored: no nmol/L to mg/L factor configured",
            "reported in nmol/L (conversion turned off in the settings)",
        )

    status = resource.get("status")
    if not isinstance(status, str):
        raise Skip("status missing or not a string: skipped", "without a result status")
    if status not in USED_STATUSES and not (status == "preliminary" and options.accept_preliminary):
        raise Skip(f"status {status}: ignored", _status_words(status))

    when = _when(resource)
    since = options.since
    if since is not None and when.instant < since and when.day < since.date():
        return None
    modifiers = modifier_extensions(resource)
    if modifiers is not None:
        raise Skip(modifier_reason(modifiers), MODIFIER_PLAIN)

    if entry.kind is ObservationKind.PAIN:
        return _pain(ref, resource, coding, status, when)
    quantity = _quantity(resource)
    number, comparator = _number(quantity)
    units = _units(quantity)
    conflict = disagreeing(units)
    if conflict is not None:
        text, code = conflict
        raise Skip(f"unit text {text!r} and code {code!r} disagree: skipped", _DISAGREE)
    if entry.kind is ObservationKind.ESR:
        unit = _pick(units, ESR_UNITS)
        if unit is None:
            raise Skip(f"ESR unit {_shown(units)} is not mm/h: skipped", _BAD_UNIT)
        kind, value, normal_unit, hs = MeasurementKind.ESR, number, "mm/h", False
    elif entry.kind is ObservationKind.CRP_MOLAR:
        unit = _pick(units, CRP_MOLAR_UNITS)
        factor = options.crp_molar_factor_nmol_per_mg
        if unit is None or factor is None:
            raise Skip(f"molar CRP unit {_shown(units)} is not nmol/L: skipped", _BAD_UNIT)
        kind, value, normal_unit, hs = MeasurementKind.CRP, number / factor, "mg/L", False
    else:
        unit = _pick(units, CRP_MASS_TO_MG_PER_L)
        if unit is None:
            raise Skip(f"CRP unit {_shown(units)} cannot be converted to mg/L: skipped", _BAD_UNIT)
        hs = entry.kind is ObservationKind.CRP_HS
        kind, value, normal_unit = (
            MeasurementKind.CRP,
            number * CRP_MASS_TO_MG_PER_L[unit_key(unit)],
            "mg/L",
        )
    if value < 0:
        raise Skip(f"negative {kind.value} value: skipped", "with a negative value")
    reported = (number, unit, comparator)
    return _made(ref, kind, round(value, 9), normal_unit, when, coding, status, reported, hs)


def _pain(
    ref: str, resource: dict[str, Any], coding: Coding, status: str, when: When
) -> Measurement:
    raw_integer = resource.get("valueInteger")
    if raw_integer is not None:
        if not isinstance(raw_integer, int) or isinstance(raw_integer, bool):
            raise Skip("valueInteger is not an integer: skipped", _NO_VALUE)
        number, comparator, unit = _float(raw_integer), None, None
    else:
        quantity = _quantity(resource, also="valueInteger")
        number, comparator = _number(quantity)
        units = _units(quantity)
        unit = units[0] if units else None
    if not 0 <= number <= PAIN_MAX:
        raise Skip(f"pain score {number:g} outside 0-10: skipped", "outside the 0-10 scale")
    reported = (number, unit, comparator)
    return _made(ref, MeasurementKind.PAIN, number, "{score}", when, coding, status, reported)


def _made(
    ref: str,
    kind: MeasurementKind,
    value: float,
    normal_unit: str,
    when: When,
    coding: Coding,
    status: str,
    reported: tuple[float, str | None, str | None],  # number, unit, comparator as sent
    hs: bool = False,
) -> Measurement:
    """One measurement, the value normalised and what was reported kept beside it."""
    number, unit, comparator = reported
    return Measurement(
        reference=ref,
        kind=kind,
        value=value,
        unit=normal_unit,
        when=when,
        code=coding,
        status=status,
        original_value=number,
        original_unit=unit,
        comparator=comparator,
        high_sensitivity=hs,
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
            raise Skip("effectivePeriod is not an object: skipped", _NO_DATE)
        start = period.get("start")
        if start is not None:
            return _parse_time("effectivePeriod.start", start)
    issued = resource.get("issued")
    if issued is not None:
        return _parse_time("issued", issued)
    raise Skip("no effectiveDateTime, effectivePeriod.start or issued: skipped", _NO_DATE)


def _parse_time(element: str, value: object) -> When:
    try:
        return parse_fhir_time(value)
    except ValueError as exc:
        raise Skip(f"{element} not read ({exc}): skipped", _NO_DATE) from None


def _quantity(resource: dict[str, Any], also: str | None = None) -> dict[str, Any]:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        return quantity
    if quantity is not None:
        raise Skip("valueQuantity is not an object: skipped", _NO_VALUE)
    other = next((key for key in resource if key.startswith("value")), None)
    expected = "valueQuantity" + (f" or {also}" if also else "")
    if other is not None:
        raise Skip(f"{other} is not a usable number ({expected} expected): skipped", _NO_VALUE)
    absent = " (dataAbsentReason given)" if resource.get("dataAbsentReason") is not None else ""
    raise Skip(f"no value{absent}: skipped", _NO_VALUE)


def _number(quantity: dict[str, Any]) -> tuple[float, str | None]:
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise Skip("valueQuantity.value is missing or not a number: skipped", _NO_VALUE)
    number = _float(value)
    if not math.isfinite(number):
        raise Skip("valueQuantity.value is not finite: skipped", _NO_VALUE)
    comparator = quantity.get("comparator")
    if comparator is not None and not isinstance(comparator, str):
        raise Skip("valueQuantity.comparator is not a string (< <= >= >): skipped", _NO_VALUE)
    if comparator is not None and comparator not in COMPARATORS:
        raise Skip(
            f"valueQuantity.comparator {comparator[:8]!r} is not one of < <= >= >: skipped",
            _NO_VALUE,
        )
    return number, comparator


def _float(value: float | Decimal) -> float:
    """``float(value)``, infinite for an integer beyond a float's range (JSON allows any
    integer, and some parsers keep it whole)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _units(quantity: dict[str, Any]) -> tuple[str, ...]:
    """Unit candidates in order of trust: the (UCUM) code, then the human-readable unit."""
    code, unit = quantity.get("code"), quantity.get("unit")
    if code is not None and not isinstance(code, str):
        raise Skip("valueQuantity.code is not a string: skipped", _BAD_UNIT)
    if unit is not None and not isinstance(unit, str):
        raise Skip("valueQuantity.unit is not a string: skipped", _BAD_UNIT)
    code = code.strip() if code else ""
    unit = unit.strip() if unit else ""
    if code and unit:
        return (code, unit)
    return (code,) if code else (unit,) if unit else ()


def disagreeing(units: tuple[str, ...]) -> tuple[str, str] | None:
    """(unit text, code) when the two name known units of different scale ("mg/dL" and
    "mg/L"): which the value was measured in cannot be told, so it is not read. None when
    they agree, differ only in spelling ("mg/l", "MG/L", "mg/L{CRP}"), or either is not a known unit
    (the known one is then read, as when it stands alone)."""
    if len(units) != 2:
        return None
    code, text = units
    scale = _SCALES.get(unit_key(code))
    if scale is None:
        return None
    other = _SCALES.get(unit_key(text))
    if other is None or other == scale:
        return None
    return text, code


def _pick(units: tuple[str, ...], known: Collection[str]) -> str | None:
    """The first candidate that is a known unit (compared as ``unit_key`` spells it)."""
    for unit in units:
        if unit_key(unit) in known:
            return unit
    return None


_BAD_UNIT = "in a unit that could not be converted"
_DISAGREE = "with a unit text and code that disagree"
_NO_VALUE = "without a usable value"
_NO_DATE = "without a usable date"


def _status_words(status: str) -> str:
    if status in {"entered-in-error", "cancelled"}:
        return f"marked {status}"
    return f"not final (status {status})"


def _shown(units: tuple[str, ...]) -> str:
    return " / ".join(repr(unit) for unit in units) if units else "(none)"
