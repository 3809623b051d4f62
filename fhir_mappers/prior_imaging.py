"""ImagingStudy and DiagnosticReport resources -> the spine studies done (clinical-rules.md,
"Imaging", 2026-12-06: cards name the last spine study of the episode and its day).

A study counts when its code is in the spine imaging value set: ImagingStudy.procedureCode
(status available), DiagnosticReport.code (status final, amended, corrected or
preliminary: the images exist). Its time: ImagingStudy.started; DiagnosticReport
effectiveDateTime, else effectivePeriod.start, else issued. One without a readable time
is left out and reported: an undated study cannot be placed in the episode. So is one with
a ``modifierExtension`` (FHIR forbids reading it as if it had none): a card must not say a
finding was seen on a study the record may not say was done.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_mappers.model import DataIssue, PriorStudy, When
from fhir_mappers.rawjson import codings, modifier_extensions, modifier_reason, reference
from fhir_mappers.timeutil import parse_fhir_time
from fhir_mappers.valuesets import ValueSets

_STUDY_DONE = frozenset({"available"})
_REPORT_DONE = frozenset({"final", "amended", "corrected", "preliminary"})


def map_prior_imaging(
    resources: Iterable[Any], vs: ValueSets
) -> tuple[tuple[PriorStudy, ...], tuple[DataIssue, ...]]:
    """The spine studies on record; never raises on bad data."""
    found: list[PriorStudy] = []
    issues: list[DataIssue] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind == "ImagingStudy" and resource.get("status") in _STUDY_DONE:
            concepts = resource.get("procedureCode")
            raw_time = resource.get("started")
        elif kind == "DiagnosticReport" and resource.get("status") in _REPORT_DONE:
            concepts = [resource.get("code")]
            period = resource.get("effectivePeriod")
            raw_time = resource.get("effectiveDateTime") or (
                period.get("start") if isinstance(period, dict) else None
            )
            raw_time = raw_time or resource.get("issued")
        else:
            continue
        entries = [
            e
            for concept in (concepts if isinstance(concepts, list) else [])
            for c in codings(concept)
            if (e := vs.imaging_entry(c.system, c.code))
        ]
        if not entries:
            continue
        ref = reference(resource, index)
        modifiers = modifier_extensions(resource)
        if modifiers is not None:
            # a study said to be seen on must be one the record really says was done
            issues.append(DataIssue(ref, f"spine study: {modifier_reason(modifiers)}"))
            continue
        when = _time(ref, raw_time, issues)
        if when is not None:
            first = entries[0]
            found.append(PriorStudy(ref, first.modality, first.region, when, first.contrast))
    return tuple(found), tuple(issues)


def _time(ref: str, raw: object, issues: list[DataIssue]) -> When | None:
    if raw is None:
        issues.append(DataIssue(ref, "spine study without a time: left out"))
        return None
    try:
        return parse_fhir_time(raw)
    except ValueError as exc:
        issues.append(DataIssue(ref, f"study time not read: {exc}"))
        return None
