"""The Patient resource -> the birth date (clinical-rules.md, "Imaging", 2026-12-06:
adults only; the evidence is adult-only).

Only the Patient the invocation is about counts: a Patient with another id is reported
and ignored. A birthDate with year or year-month precision is read as the latest day it
allows (31 December, or the month's last day), so that a child is never taken for an
adult; one that cannot be read is reported and left unknown.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from fhir_mappers.model import DataIssue

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def is_this_patient(resource: object, patient_id: str) -> bool:
    """A Patient resource of this request: its id, or none (a read of ``Patient/<id>``
    answers with the one asked for). The one test of it, for the birth date and for
    whether the request holds its Patient at all."""
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Patient"
        and resource.get("id") in (None, patient_id)
    )


def map_birth_date(
    resources: Iterable[Any], patient_id: str
) -> tuple[date | None, tuple[DataIssue, ...]]:
    """The birth date of ``Patient/<patient_id>``; None when no such Patient or no
    readable birthDate. Never raises on bad data."""
    issues: list[DataIssue] = []
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        ref = f"Patient/{resource.get('id', '?')}"
        if not is_this_patient(resource, patient_id):
            # another patient's id is a patient identifier: the audit keeps none in plain
            # (audit_patient_id hashes or omits the patient's own; an integration review)
            issues.append(DataIssue("Patient", "another patient, not this request's: ignored"))
            continue
        raw = resource.get("birthDate")
        if raw is None:
            return None, tuple(issues)
        born = _latest_day(raw)
        if born is None:
            issues.append(DataIssue(ref, f"birthDate not read: {raw!r} is not a FHIR date"))
        return born, tuple(issues)
    return None, tuple(issues)


def _latest_day(raw: object) -> date | None:
    match = _DATE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    assert year is not None
    try:
        if month is None:
            return date(year, 12, 31)
        if day is None:
            return date(year, month, calendar.monthrange(year, month)[1])
        return date(year, month, day)
    except ValueError:
        return None


def age_in_years(born: date, on: date) -> int:
    """Completed years on ``on`` (a birthday on ``on`` counts)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
