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


def modifier_extensions(resource: dict[str, Any], *elements: str) -> str | None:
    """What names the modifier extensions on ``resource`` and on its backbone
    ``elements`` (each a list or an object of the resource), or None without any.

    A modifier extension changes the meaning of what carries it ("not done", "refuted by
    the lab"), and FHIR forbids processing a resource whose modifier extensions are not
    understood. The service understands none, so the mappers leave out what carries one
    and say so (``modifier_reason``). An empty list is no modifier; anything else that is
    not a list of objects is read as one whose url is unknown.
    """
    holders: list[Any] = [resource]
    for name in elements:
        value = resource.get(name)
        holders.extend(value if isinstance(value, list) else [value])
    urls: list[str] = []
    for holder in holders:
        found = holder.get("modifierExtension") if isinstance(holder, dict) else None
        if found is None or found == []:
            continue
        for item in found if isinstance(found, list) else [found]:
            url = item.get("url") if isinstance(item, dict) else None
            urls.append(url[:120] if isinstance(url, str) and url else "(no url)")
    if not urls:
        return None
    shown = ", ".join(dict.fromkeys(urls[:3]))
    return shown if len(urls) <= 3 else f"{shown} and {len(urls) - 3} more"


# The card's words for a resource left out for a modifier extension (``Skip.plain``).
MODIFIER_PLAIN = "marked with a qualifier the service cannot interpret"


def modifier_reason(found: str) -> str:
    """The DataIssue reason (the audit's words) for what ``modifier_extensions`` found."""
    return f"modifierExtension not understood ({found}): not used, as FHIR requires"


MISSING = object()
BAD_SHAPE = object()


def walk(value: object, *path: str | int) -> object:
    """The value at ``path``; MISSING when an element is absent, BAD_SHAPE when one is
    of the wrong type (a list where an object belongs, ...)."""
    for step in path:
        if value is None:
            return MISSING
        if isinstance(step, int):
            if not isinstance(value, list):
                return BAD_SHAPE
            if len(value) <= step:
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, dict):
                return BAD_SHAPE
            value = value.get(step)
    return MISSING if value is None else value
