"""Procedure resources -> spine surgery (clinical-rules.md, "Imaging", 2026-12-06: after
spine surgery in the episode, a CT is not advised against).

Only a Procedure whose code is in the procedures value set counts, with status completed
or in-progress (a planned, stopped-before-start or entered-in-error one did not happen);
its time is performedDateTime, else performedPeriod.start. One without a readable time
is reported and kept undated: the engine counts it, the cautious reading. One with a
``modifierExtension`` is counted too, and reported: an operation that may not have happened
only keeps a CT from being advised against.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_mappers.model import DataIssue, SpineSurgery, When
from fhir_mappers.rawjson import codings, modifier_extensions, reference
from fhir_mappers.timeutil import parse_fhir_time
from fhir_mappers.valuesets import ValueSets

DONE = frozenset({"completed", "in-progress"})


def map_spine_surgery(
    resources: Iterable[Any], vs: ValueSets
) -> tuple[tuple[SpineSurgery, ...], tuple[DataIssue, ...]]:
    """The spine operations on record; never raises on bad data."""
    found: list[SpineSurgery] = []
    issues: list[DataIssue] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or resource.get("resourceType") != "Procedure":
            continue
        entries = [
            e for c in codings(resource.get("code")) if (e := vs.procedure_entry(c.system, c.code))
        ]
        if not entries or resource.get("status") not in DONE:
            continue
        ref = reference(resource, index)
        modifiers = modifier_extensions(resource)
        if modifiers is not None:  # ignored by FHIR's rule, but dropping it is less cautious
            issues.append(
                DataIssue(
                    ref,
                    f"modifierExtension not understood ({modifiers}); counted as done, the "
                    "cautious reading",
                    kept=True,
                )
            )
        found.append(
            SpineSurgery(
                reference=ref,
                name=entries[0].name,
                when=_when(ref, resource, issues),
                kind=entries[0].kind,
            )
        )
    return tuple(found), tuple(issues)


def _when(ref: str, resource: dict[str, Any], issues: list[DataIssue]) -> When | None:
    raw = resource.get("performedDateTime")
    if raw is None and isinstance(resource.get("performedPeriod"), dict):
        raw = resource["performedPeriod"].get("start")
    if raw is None:
        return None
    try:
        return parse_fhir_time(raw)
    except ValueError as exc:
        issues.append(DataIssue(ref, f"performed time not read: {exc}", kept=True))
        return None
