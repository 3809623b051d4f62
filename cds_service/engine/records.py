"""The JSON of the data the engine reads (camelCase keys, absent values left out): the
audit record (``Assessment.to_dict``; an Episode's and the KeyFigures' own ``to_dict``
sit beside their types), the data of the findings and remarks, and the card's
machine-readable result are made of these. Split from ``assessment.py`` along the data
flow; it imports nothing of the engine, so the types may import it."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir_mappers.model import AntibioticStart, Coding, ConditionFact, ImagingOrder, Measurement


def coding_to_dict(c: Coding) -> dict[str, str]:
    out = {"system": c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


def order_to_dict(o: ImagingOrder) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference": o.reference,
        "modality": o.modality.value,
        "region": o.region,
    }
    if o.codes:
        out["codes"] = [coding_to_dict(c) for c in o.codes]
    if o.contrast:
        out["contrast"] = o.contrast
    if o.authored_on is not None:
        out["authoredOn"] = o.authored_on.instant.isoformat()
    if o.priority is not None:
        out["priority"] = o.priority
    if o.reasons:
        out["reasons"] = [
            {
                k: v
                for k, v in (
                    ("name", r.name),
                    ("reference", r.reference),
                    ("routine", r.routine),
                )
                if v is not None
            }
            for r in o.reasons
        ]
    return out


def condition_to_dict(c: ConditionFact) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": c.reference, "category": c.category.value}
    if c.codes:
        out["codes"] = [coding_to_dict(x) for x in c.codes]
    if c.clinical_status:
        out["clinicalStatus"] = c.clinical_status
    if c.verification_status:
        out["verificationStatus"] = c.verification_status
    start = c.start
    if start is not None:
        out["start"] = start.shown  # as recorded: "2026-09" is a month, not its 1st
    if c.abatement is not None:
        out["abatement"] = c.abatement.shown
    return out


def antibiotic_to_dict(a: AntibioticStart) -> dict[str, str]:
    return {"reference": a.reference, "name": a.name, "start": a.when.day.isoformat()}


def measurement_to_dict(m: Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference": m.reference,
        "value": m.value,
        "unit": m.unit,
        "date": m.when.day.isoformat(),
        "code": m.code.code,
        "status": m.status,
    }
    if m.comparator:
        out["comparator"] = m.comparator
    if m.original_unit and (m.original_unit != m.unit or m.original_value != m.value):
        out["originalValue"] = m.original_value
        out["originalUnit"] = m.original_unit
    if m.high_sensitivity:
        out["highSensitivity"] = True
    return out


def figure(m: Measurement, t0_day: date | None) -> dict[str, Any]:
    """One value as the machine-readable result carries it."""
    out: dict[str, Any] = {
        "value": m.value,
        "unit": m.unit,
        "date": m.when.day.isoformat(),
        "reference": m.reference,
    }
    if t0_day is not None:
        out["day"] = (m.when.day - t0_day).days
    if m.comparator:
        out["comparator"] = m.comparator
    return out
