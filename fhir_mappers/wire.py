"""Observations as they arrive on the wire: a typed decode of only what the rules read.

A prefetch carries hundreds of Observations. Building a dict for every element of each
(``orjson.loads``) and then walking those dicts cost more than the rest of the decision
(issue 13, bench/decoders.py). Here each Observation's bytes are decoded in compiled
code (msgspec) straight into small Structs holding only the elements the mapper reads:
code, status, subject, effectiveDateTime, valueQuantity, valueInteger, id. Every other
element is skipped without building anything.

The types are strict on purpose: an element the mapper reads that is present with an
unexpected type (a null, a number where a string belongs, a coding that is not an
object, a number beyond a float's range) makes the typed decode refuse the resource,
and the resource is then read as a plain dict by the careful path, exactly as if the
typed path did not exist. So an ``ObservationBytes`` always keeps its bytes: the mapper
falls back to them for any Observation outside the usual shape (``observations._usual``).

The same Structs are the mapper's one typed reading of every Observation: from the
bytes of prefetched searches (``cds_service/hookbody.py``) and of fetched search pages
(``cds_service/fhir/exchange.py``, a combined search's too), each read by
``read_resource`` when its Bundle is read; and from an Observation that is already a
dict (the careful parse of an unusual hook body, the command-line tools) by
``typed_observation``, which refuses what the byte decode refuses.

Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType


class WireCoding(Struct, frozen=True, gc=False):
    system: str | UnsetType = UNSET
    code: str | UnsetType = UNSET
    display: str | UnsetType = UNSET


class WireConcept(Struct, frozen=True, gc=False):
    coding: list[WireCoding] | UnsetType = UNSET


class WireQuantity(Struct, frozen=True, gc=False):
    # A JSON integer reads as a float, as the careful path reads it; a number beyond a
    # float's range is refused (the careful path says it is not finite).
    value: float | UnsetType = UNSET
    # Only its presence is read here (any comparator sends the value down the careful
    # path), so any JSON is accepted.
    comparator: Any = UNSET
    unit: str | UnsetType = UNSET
    code: str | UnsetType = UNSET


class WireReference(Struct, frozen=True, gc=False):
    reference: str | UnsetType = UNSET


class WireObservation(Struct, frozen=True, gc=False):
    """The elements of an Observation the mapper reads; UNSET where absent."""

    # Required, and only this value: decoded as a tag, msgspec would also accept a
    # resource with no resourceType, which the careful path refuses.
    resourceType: Literal["Observation"]
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    code: WireConcept | UnsetType = UNSET
    subject: WireReference | UnsetType = UNSET
    # Not an R4 Observation element, but the subject check reads it on every resource.
    patient: WireReference | UnsetType = UNSET
    effectiveDateTime: str | UnsetType = UNSET
    valueQuantity: WireQuantity | UnsetType = UNSET
    valueInteger: int | UnsetType = UNSET
    # Only its presence is read: a resource with one goes down the careful path, which
    # leaves it out (``rawjson.modifier_extensions``).
    modifierExtension: Raw | UnsetType = UNSET


class ObservationBytes:
    """An Observation decoded into ``typed``, with the bytes it came from for the
    careful path (``as_dict``). For code outside the mapper it reads as the resource
    it is: ``resource[name]`` is the element as JSON has it, and it compares equal to
    the dict JSON makes of it (and to another of the same resource)."""

    __slots__ = ("raw", "typed")

    def __init__(self, typed: WireObservation, raw: Raw) -> None:
        self.typed = typed
        self.raw = raw

    def as_dict(self) -> Any:
        """The resource as JSON reads it: what the careful path works on."""
        return _json(self.raw)

    def __getitem__(self, name: str) -> Any:
        return self.as_dict()[name]

    def __eq__(self, other: object) -> bool:
        if type(other) is ObservationBytes:
            return bool(self.as_dict() == other.as_dict())
        if isinstance(other, dict):
            return bool(self.as_dict() == other)
        return NotImplemented


_DECODER: Final = msgspec.json.Decoder(WireObservation)


def read_resource(raw: Raw) -> Any:
    """An ``ObservationBytes`` when ``raw`` is an Observation the typed decode accepts;
    otherwise the JSON value as ``orjson.loads`` reads it (a dict, or whatever it is)."""
    try:
        return ObservationBytes(_DECODER.decode(raw), raw)
    except msgspec.ValidationError:
        return _json(raw)


def codings(resource: object) -> list[tuple[Any, Any, Any]]:
    """(system, code, display) of each coding of a resource's ``code``, the one reading of
    them: from the typed decode of an Observation (``ObservationBytes`` or
    ``WireObservation``: strings or None), else from the resource as JSON (a dict: each
    member as JSON has it, None when absent; a coding that is not an object left out)."""
    if type(resource) is ObservationBytes:
        resource = resource.typed
    if type(resource) is WireObservation:
        concept = resource.code
        if concept is UNSET or concept.coding is UNSET:
            return []
        return [
            (
                None if c.system is UNSET else c.system,
                None if c.code is UNSET else c.code,
                None if c.display is UNSET else c.display,
            )
            for c in concept.coding
        ]
    element = resource.get("code") if isinstance(resource, dict) else None
    items = element.get("coding") if isinstance(element, dict) else None
    if not isinstance(items, list):
        return []
    return [
        (item.get("system"), item.get("code"), item.get("display"))
        for item in items
        if isinstance(item, dict)
    ]


def typed_observation(resource: dict[str, Any]) -> WireObservation | None:
    """The typed reading of an Observation that is already a dict, as JSON parsers build
    them; None where the typed decode of its bytes would refuse it (another resource
    type, a wrong type or a null in an element the mapper reads)."""
    try:
        return msgspec.convert(resource, WireObservation)
    except msgspec.ValidationError:
        return None


def _json(raw: Raw) -> Any:
    """``raw`` (JSON that msgspec accepted) as a Python value: orjson, or the standard
    library for what orjson refuses (integers beyond 64 bits), so that no resource the
    typed decode passed on fails to read."""
    try:
        return orjson.loads(memoryview(raw))
    except orjson.JSONDecodeError:
        return json.loads(bytes(raw))
