"""Cheap reads from FHIR resources still in their JSON (dict) form.

The mappers select on the raw JSON before any model validation (performance-notes.md),
so these helpers must never raise on odd input: a value of the wrong type reads as absent.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fhir_mappers.model import Coding


def reference(resource: dict[str, Any], index: int) -> str:
    """The reference "Type/id", or "Type/#index" (position in the input) without an id."""
    kind = resource.get("resourceType")
    kind = kind if isinstance(kind, str) and kind else "Resource"
    ident = resource.get("id")
    if isinstance(ident, str) and ident:
        return f"{kind}/{ident}"
    return f"{kind}/#{index}"


def codings(concept: object) -> list[Coding]:
    """The codings of a CodeableConcept that have both a system and a code (others are unusable)."""
    if not isinstance(concept, dict):
        return []
    raw = concept.get("coding")
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        system, code, display = item.get("system"), item.get("code"), item.get("display")
        if isinstance(system, str) and isinstance(code, str) and system and code:
            found.append(
                Coding(
                    system=system, code=code, display=display if isinstance(display, str) else None
                )
            )
    return found


def describe_error(exc: Exception) -> str:
    """A short reason for a DataIssue: the first validation error and its element path."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            first = errors[0]
            location = ".".join(str(part) for part in first.get("loc", ()))
            return f"{location}: {first.get('msg', '')} ({len(errors)} error(s))"
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
