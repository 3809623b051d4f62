"""The engine's objects as JSON (camelCase keys, absent values left out): the audit
record (``Assessment.to_dict``), the data of the findings and remarks, and the card's
machine-readable result are made of these. Split from ``assessment.py`` along the data
flow: that module holds the types, this one their JSON."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from fhir_mappers.model import AntibioticStart, Coding, ConditionFact, ImagingOrder, Measurement

if TYPE_CHECKING:
    from .assessment import Episode, KeyFigures


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


def episode_to_dict(e: Episode) -> dict[str, Any]:
    out: dict[str, Any] = {"condition": condition_to_dict(e.condition)}
    if e.t0 is not None:
        out["t0"] = e.t0.day.isoformat()
        out["t0Source"] = e.t0_source
    if e.antibiotic is not None:
        out["antibiotic"] = antibiotic_to_dict(e.antibiotic)
    if e.outside_window:
        out["antibioticsOutsideWindow"] = [antibiotic_to_dict(x) for x in e.outside_window]
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


def figures_to_dict(f: KeyFigures) -> dict[str, Any]:
    """Key figures with absent values left out (CDS Hooks forbids nulls)."""
    out: dict[str, Any] = {}
    if f.t0_day is not None:
        out["t0"] = f.t0_day.isoformat()
    if f.days_since_t0 is not None:
        out["daysSinceT0"] = f.days_since_t0
    for key, m in (
        ("crpBaseline", f.crp_baseline),
        ("crpLatest", f.crp_latest),
        ("crpLowestEarlier", f.crp_lowest_earlier),
        ("painFirst", f.pain_first),
        ("painLowest", f.pain_lowest),
        ("painLatest", f.pain_latest),
        ("esrFirst", f.esr_first),
        ("esrLatest", f.esr_latest),
    ):
        if m is not None:
            out[key] = figure(m, f.t0_day)
    if f.crp_percent_change is not None:
        out["crpPercentChange"] = round(f.crp_percent_change, 1)
    if f.crp_rise_pct is not None:
        out["crpRisePct"] = round(f.crp_rise_pct, 1)
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
