"""MedicationRequest resources -> the starts of systemic antibiotic orders, for T0.

clinical-rules.md ("T0, the treatment start", "Antibiotic orders"): T0 is the start of the
first antibiotic order for the episode. This module only finds the orders and their
starts; which one is T0 (the window around the episode date) is the engine's choice.

The antibiotics value set is data, checked and indexed by ``fhir_mappers.antibiotics``
(re-exported here for the callers that read orders with it).

An order counts when all of these hold:
- its medication is a systemic antibacterial: a coding is an RxNorm code of the value
  set, or any coding's display or the concept text names one of its words (whole words,
  any case), or an ATC coding is under one of its ATC prefixes or equals one of its ATC
  codes. The medication is ``medicationCodeableConcept`` or ``medicationReference`` to a
  contained Medication ("#id") or to a Medication in the same list ("Medication/id", as a
  search with ``_include`` returns it); a Medication is read by its ``code`` and its
  ingredients' concepts;
- nothing names a form or route that is not systemic treatment (eye drops, skin, bone
  cement; vancomycin by mouth);
- status active, completed or stopped; intent order, plan or original-order; not
  ``doNotPerform``; no ``modifierExtension`` (on it or a ``dosageInstruction``);
- it has a start: ``dosageInstruction[0].timing.repeat.boundsPeriod.start``, else
  ``authoredOn``.

Medications that are not antibacterials are not this module's data: they are skipped
without a word. An antibacterial order that fails a condition is skipped with a DataIssue
that says why in plain words. Nothing raises on odd JSON: a value of the wrong type reads
as absent and is reported when it mattered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappers.antibiotics import Antibiotics, Ingredient, normal_text, word_pattern
from fhir_mappers.model import (
    ORDER_DATED_FROM_AUTHORED_ON,
    ORDER_NOT_COUNTED,
    ORDER_UNDATED,
    AntibioticStart,
    DataIssue,
    When,
)
from fhir_mappers.rawjson import (
    BAD_SHAPE,
    MISSING,
    MODIFIER_PLAIN,
    modifier_extensions,
    modifier_reason,
    reference,
    walk,
)
from fhir_mappers.timeutil import parse_fhir_time

USED_STATUSES = frozenset({"active", "completed", "stopped"})
USED_INTENTS = frozenset({"order", "plan", "original-order"})

BOUNDS_START = "boundsPeriod.start"
AUTHORED_ON = "authoredOn"
KIND = "antibiotic"  # DataIssue.kind for the orders this module reports


# ---------------------------------------------------------------------------------------
# The orders


class _Skip(Exception):
    """An antibacterial order that does not count; the message is the audit reason, the
    code (DataIssue.code) why it does not count for the card's decisions."""

    def __init__(self, reason: str, plain: str, code: str = ORDER_NOT_COUNTED) -> None:
        super().__init__(reason)
        self.plain, self.code = plain, code


@dataclass(frozen=True)
class _Medication:
    """What an order says its medication is: codings and texts, from wherever they came."""

    codings: tuple[tuple[str | None, str | None, str | None], ...]  # (system, code, display)
    texts: tuple[str, ...]  # concept texts, coding displays, the reference's display


def map_antibiotic_orders(
    resources: Iterable[Any], antibiotics: Antibiotics
) -> tuple[tuple[AntibioticStart, ...], tuple[DataIssue, ...]]:
    """The starts of the systemic antibiotic orders, earliest first, and the antibacterial
    orders that were skipped. ``resources`` are MedicationRequest dicts (Bundle entries
    already unwrapped) and the Medications an ``_include`` brought with them."""
    starts: list[AntibioticStart] = []
    issues: list[DataIssue] = []
    items = _items(resources, issues)
    medications = _medications(items)
    for index, resource in enumerate(items):
        if not isinstance(resource, dict):
            issues.append(DataIssue(f"#{index}", "not a JSON object: skipped"))
            continue
        kind = resource.get("resourceType")
        if kind == "Medication":
            continue  # read through the orders that refer to it
        ref = reference(resource, index)
        if kind != "MedicationRequest":
            issues.append(DataIssue(ref, "not a MedicationRequest or Medication: skipped"))
            continue
        try:
            start = _order(ref, resource, medications, antibiotics, issues)
        except _Skip as skip:
            issues.append(DataIssue(ref, str(skip), kind=KIND, plain=skip.plain, code=skip.code))
            continue
        if start is not None:
            starts.append(start)
    starts.sort(key=lambda s: (s.when.instant, s.reference))
    return tuple(starts), tuple(issues)


def _items(resources: object, issues: list[DataIssue]) -> list[Any]:
    """The resources as a list; anything that is not a list of them is reported."""
    if resources is None:
        return []
    if isinstance(resources, Mapping):
        return [resources]  # one resource where a list belongs: read it as the list's only one
    if isinstance(resources, (str, bytes)) or not isinstance(resources, Iterable):
        issues.append(DataIssue("MedicationRequest", "not a list of resources: none read"))
        return []
    return list(resources)


def _medications(items: list[Any]) -> dict[str, dict[str, Any]]:
    """The Medications of the list by id (the first one wins a repeated id)."""
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and item.get("resourceType") == "Medication":
            ident = item.get("id")
            if isinstance(ident, str) and ident:
                found.setdefault(ident, item)
    return found


def _order(
    ref: str,
    resource: dict[str, Any],
    medications: Mapping[str, dict[str, Any]],
    antibiotics: Antibiotics,
    issues: list[DataIssue],
) -> AntibioticStart | None:
    """The order's start, or None when it is not an antibacterial; _Skip when it is one
    that does not count."""
    medication, problem = _medication(resource, medications)
    if medication is None:
        # Unknown medication: report it only for an order that would otherwise count.
        if problem is not None and _countable(resource):
            issues.append(
                DataIssue(
                    ref,
                    f"{problem}: whether it is an antibiotic is unknown",
                    kind=None,
                    plain="medication order whose drug could not be read",
                    code=ORDER_NOT_COUNTED,
                )
            )
        return None
    ingredient = antibiotics.classify(medication.codings, medication.texts)
    if ingredient is None:
        return None  # not an antibacterial: not this module's data
    name = ingredient if isinstance(ingredient, str) else ingredient.name

    route_texts = _route_texts(resource)
    _check_systemic(name, ingredient, medication.texts, route_texts, antibiotics)
    _check_order(resource, name)
    when, source = _start(ref, resource, name, issues)
    return AntibioticStart(reference=ref, when=when, name=name, source=source)


def _countable(resource: dict[str, Any]) -> bool:
    return (
        _one_of(resource.get("status"), USED_STATUSES)
        and _one_of(resource.get("intent"), USED_INTENTS)
        and resource.get("doNotPerform") is not True
    )


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    """``value in allowed`` for any JSON value (a list or an object is not hashable)."""
    return isinstance(value, str) and value in allowed


def _medication(
    resource: dict[str, Any], medications: Mapping[str, dict[str, Any]]
) -> tuple[_Medication | None, str | None]:
    """The medication's codings and texts, or None and why it could not be read."""
    if "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
        if not isinstance(concept, dict):
            return None, "medicationCodeableConcept is not an object"
        return _read([concept], ()), None
    if "medicationReference" not in resource:
        return None, "no medicationCodeableConcept or medicationReference"
    link = resource["medicationReference"]
    if not isinstance(link, dict):
        return None, "medicationReference is not an object"
    display = link.get("display")
    extra = (display,) if isinstance(display, str) else ()
    target = link.get("reference")
    found = _resolve(target, resource, medications) if isinstance(target, str) else None
    if found is None:
        if extra:  # the reference's display is all there is to read
            return _read([], extra), None
        if not isinstance(target, str):
            return None, "medicationReference has no reference"
        return None, f"medication {target!r} is not in the order or the results"
    concepts = [found.get("code")]
    ingredients = found.get("ingredient")
    if isinstance(ingredients, list):
        for item in ingredients:
            if isinstance(item, dict):
                concepts.append(item.get("itemCodeableConcept"))  # R4
                inner = item.get("item")
                if isinstance(inner, dict):
                    concepts.append(inner.get("concept"))  # R5
    return _read(concepts, extra), None


def _resolve(
    target: str, resource: dict[str, Any], medications: Mapping[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """A contained Medication ("#id") or one of the list ("Medication/id", also as a full
    URL or with a /_history/ version)."""
    target = target.strip()
    if target.startswith("#"):
        contained = resource.get("contained")
        if not isinstance(contained, list):
            return None
        for item in contained:
            if (
                isinstance(item, dict)
                and item.get("resourceType") == "Medication"
                and item.get("id") == target[1:]
            ):
                return item
        return None
    parts = target.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Medication":
        return medications.get(parts[-1])
    return None


def _read(concepts: Iterable[object], extra: tuple[str, ...]) -> _Medication:
    codings: list[tuple[str | None, str | None, str | None]] = []
    texts: list[str] = []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        text = concept.get("text")
        if isinstance(text, str):
            texts.append(text)
        raw = concept.get("coding")
        if not isinstance(raw, list):
            continue
        for item in raw:
            if not isinstance(item, dict):
                continue
            system, code, display = (
                _str_or_none(item.get(k)) for k in ("system", "code", "display")
            )
            codings.append((system, code, display))
            if display is not None:
                texts.append(display)
    texts.extend(extra)
    return _Medication(codings=tuple(codings), texts=tuple(texts))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _route_texts(resource: dict[str, Any]) -> tuple[str, ...]:
    """The route's text and coding displays of every dosage instruction (not the dosage's
    free text, which may mention anything: "watch the skin for a rash")."""
    texts: list[str] = []
    dosage = resource.get("dosageInstruction")
    if not isinstance(dosage, list):
        return ()
    for item in dosage:
        route = item.get("route") if isinstance(item, dict) else None
        if not isinstance(route, dict):
            continue
        texts.extend(_read([route], ()).texts)
    return tuple(texts)


def _check_systemic(
    name: str,
    ingredient: Ingredient | str,
    medication_texts: tuple[str, ...],
    route_texts: tuple[str, ...],
    antibiotics: Antibiotics,
) -> None:
    texts = [normal_text(t) for t in (*medication_texts, *route_texts)]
    pattern = antibiotics.non_systemic_pattern
    if pattern is not None:
        for text in texts:
            found = pattern.search(text)
            if found:
                raise _Skip(
                    f"{name} as {found.group(0)!r}: not systemic treatment, not counted",
                    f"{name} not given systemically ({found.group(0)})",
                )
    if isinstance(ingredient, Ingredient) and ingredient.not_systemic_when:
        routes = word_pattern(ingredient.not_systemic_when)
        for text in texts:
            found = routes.search(text)
            if found:
                raise _Skip(
                    f"{name} {found.group(0)!r}: not systemic treatment, not counted",
                    f"{name} by a route that does not reach the infection ({found.group(0)})",
                )


def _check_order(resource: dict[str, Any], name: str) -> None:
    modifiers = modifier_extensions(resource, "dosageInstruction")
    if modifiers is not None:
        raise _Skip(modifier_reason(modifiers), f"{name} order {MODIFIER_PLAIN}")
    status = resource.get("status")
    if not _one_of(status, USED_STATUSES):
        if isinstance(status, str) and status:
            raise _Skip(
                f"status {status!r} is not active, completed or stopped",
                f"{name} order marked {status}",
            )
        raise _Skip(f"no readable status ({status!r})", f"{name} order without a status")
    intent = resource.get("intent")
    if not _one_of(intent, USED_INTENTS):
        if isinstance(intent, str) and intent:
            raise _Skip(
                f"intent {intent!r} is not order, plan or original-order",
                f"{name} {intent}, not an order",
            )
        raise _Skip(f"no readable intent ({intent!r})", f"{name} order without an intent")
    do_not = resource.get("doNotPerform")
    if do_not is True:
        raise _Skip("doNotPerform: an order not to give it", f"order not to give {name}")
    if do_not is not None and not isinstance(do_not, bool):
        raise _Skip(
            f"doNotPerform is not true or false ({do_not!r})",
            f"{name} order that may be an order not to give it",
        )


def _start(
    ref: str, resource: dict[str, Any], name: str, issues: list[DataIssue]
) -> tuple[When, str]:
    """boundsPeriod.start of the first dosage instruction, else authoredOn."""
    element = "dosageInstruction[0].timing.repeat.boundsPeriod.start"
    bounds = walk(resource, "dosageInstruction", 0, "timing", "repeat", "boundsPeriod", "start")
    problem = None
    if bounds is BAD_SHAPE:
        problem = f"{element} not read: an element on the way has the wrong type"
    elif bounds is not MISSING:
        try:
            return parse_fhir_time(bounds), BOUNDS_START
        except ValueError as exc:
            problem = f"{element} not read: {exc}"
    authored = resource.get("authoredOn")
    try:
        when = None if authored is None else parse_fhir_time(authored)
    except ValueError as exc:
        reason = f"authoredOn not read: {exc}"
        raise _Skip(
            reason if problem is None else f"{problem}; {reason}",
            f"{name} order with an unreadable start date",
            ORDER_UNDATED,
        ) from None
    if when is None:
        raise _Skip(
            f"no {element} and no authoredOn" if problem is None else f"{problem}; no authoredOn",
            f"{name} order without a start date"
            if problem is None
            else f"{name} order with an unreadable start date",
            ORDER_UNDATED,
        )
    if problem is not None:
        issues.append(
            DataIssue(
                ref,
                f"{problem}; authoredOn used",
                kind=KIND,
                plain=f"{name} order start date unreadable; the order date was used",
                code=ORDER_DATED_FROM_AUTHORED_ON,
            )
        )
    return when, AUTHORED_ON
