"""What the chart shows of a selected Observation that was skipped: for a CRP, ESR or pain
score, its value (in its kind's unit, as a used one would be), unit, time, status,
comparator and a text result, so that a card can name it with its value and day and a
pending rise can block advise-against (clinical-rules.md, "Pending results", 2026-12-06)."""

from __future__ import annotations

import math
from typing import Any

from fhir_mappers.model import DataIssue, ReportedValue, When
from fhir_mappers.observations_careful import (
    CRP_MASS_TO_MG_PER_L,
    CRP_MOLAR_UNITS,
    ESR_UNITS,
    KIND_NAMES,
    MappingOptions,
    Skip,
    _float,
    _number,
    _pick,
    _units,
    _when,
    disagreeing,
    unit_key,
)
from fhir_mappers.valuesets import ObservationKind


def skipped(
    ref: str, skip: Skip, resource: dict[str, Any], kind: ObservationKind, options: MappingOptions
) -> DataIssue:
    """The DataIssue of a skipped Observation; for one of a kind the card names (CRP, ESR,
    pain), also what it holds, as far as it can be read: the chart shows it, so a card
    can name it with its value and day (issue 23, "Pending results" in clinical-rules.md)."""
    name = KIND_NAMES.get(kind)
    if name is None:
        return DataIssue(ref, str(skip), None, skip.plain)
    value, unit, comparator = _value_as_read(resource, kind, options)
    reported = _as_reported(resource, kind) if value is None else None
    status = resource.get("status")
    text = resource.get("valueString")
    try:
        when: When | None = _when(resource)
    except Skip:
        when = None
    return DataIssue(
        ref,
        str(skip),
        name,
        skip.plain,
        value=value,
        unit=unit,
        when=when,
        status=status if isinstance(status, str) else None,
        comparator=comparator,
        text=_quoted(text) if isinstance(text, str) else None,
        reported=reported,
    )


def _as_reported(resource: dict[str, Any], kind: ObservationKind) -> ReportedValue | None:
    """A number that cannot be given in its kind's unit, as reported, with its unit text
    (the unit, else the code; None when there is neither); for a CRP whose unit belongs
    to the other CRP code (mg/L under the molar code, nmol/L under a mass code), that
    code's kind; when the unit text and the code name units of different scale, the
    code beside the text. None when the value holds no usable number."""
    read = _quantity(resource)
    if read is None:
        return None
    number, comparator, units = read
    conflict = disagreeing(units) if kind is not ObservationKind.PAIN else None
    if conflict is not None:
        text, code = conflict
        return ReportedValue(number, text, comparator, code=code)
    unit_of = None
    if kind is ObservationKind.CRP_MOLAR and _pick(units, CRP_MASS_TO_MG_PER_L) is not None:
        unit_of = ObservationKind.CRP.value
    elif kind in MASS_CRP and _pick(units, CRP_MOLAR_UNITS) is not None:
        unit_of = ObservationKind.CRP_MOLAR.value
    return ReportedValue(number, units[-1] if units else None, comparator, unit_of)


MASS_CRP = frozenset({ObservationKind.CRP, ObservationKind.CRP_HS})


def _value_as_read(
    resource: dict[str, Any], kind: ObservationKind, options: MappingOptions
) -> tuple[float | None, str | None, str | None]:
    """(value, unit, comparator) of a skipped Observation, the value converted to the
    kind's unit as a used one would be (CRP mg/L, ESR mm/h, pain 0-10); (None, None, None)
    when it holds no usable number, an unknown comparator, a unit that cannot be
    converted, or a unit text and code that disagree: a value is never given in another
    unit than its kind's."""
    nothing = None, None, None
    integer = resource.get("valueInteger")
    if kind is ObservationKind.PAIN and integer is not None:
        if type(integer) is not int:
            return nothing
        score = _float(integer)
        return (score, "{score}", None) if math.isfinite(score) else nothing
    read = _quantity(resource)
    if read is None:
        return nothing
    number, comparator, units = read
    if kind is ObservationKind.PAIN:
        return number, "{score}", comparator
    if disagreeing(units) is not None:
        return nothing  # in which unit is not known: named as reported
    if kind is ObservationKind.ESR:
        known = _pick(units, ESR_UNITS) is not None
        return (round(number, 9), "mm/h", comparator) if known else nothing
    if kind is ObservationKind.CRP_MOLAR:
        factor = options.crp_molar_factor_nmol_per_mg
        if factor is None or _pick(units, CRP_MOLAR_UNITS) is None:
            return nothing
        return round(number / factor, 9), "mg/L", comparator
    mass = _pick(units, CRP_MASS_TO_MG_PER_L)
    if mass is None:
        return nothing
    return round(number * CRP_MASS_TO_MG_PER_L[unit_key(mass)], 9), "mg/L", comparator


def _quantity(resource: dict[str, Any]) -> tuple[float, str | None, tuple[str, ...]] | None:
    """The valueQuantity's number, comparator and unit texts, as the mapper reads them;
    None when there is no quantity or its number cannot be read."""
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, dict):
        return None
    try:
        number, comparator = _number(quantity)
        units = _units(quantity)
    except Skip:
        return None
    return number, comparator, units


_QUOTED_MAX = 200  # characters of a text result kept for the card and the audit


def _quoted(text: str) -> str:
    """A text result as the card quotes it: its words on one line, at most 200 characters."""
    words = " ".join(text.split())
    return words if len(words) <= _QUOTED_MAX else words[: _QUOTED_MAX - 1] + "\u2026"
