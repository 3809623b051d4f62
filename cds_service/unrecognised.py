"""What the service was sent and did not recognise: the codes a site can teach it.

A site's own order codes (an Epic order sent with only its local procedure code) and
local Condition or Observation codes give no card and, without this, leave no trace.
Each invocation's audit record keeps them (``detail.unrecognised``), so that
``spine-cds report`` can count them over a pilot and the site can add the ones that
mean spine imaging, osteomyelitis, CRP or ESR to its ``valueset_dir``.

What is kept, and why no more:

- orders: each ServiceRequest in question (the selected ones for order-select, every one
  for order-sign) with no coding in the imaging value set, with its codings (system,
  code, display: a catalogue name, which is how a site recognises its own order) and
  ``code.text``;
- reasons: the (system, code) of each coding of a spine order's ``reasonCode`` none of
  whose codings is in the conditions value set (an order for a reason the service cannot
  read as the infection gets no card: a site's own diagnosis codes, taught through
  ``valueset_dir``, make it routine follow-up again);
- Conditions and Observations: the (system, code) of each coding of a resource none of
  whose codings is in a value set the rules read. Never a display or text (a clinician
  may type anything there), never a value, date or reference.

All of it is bounded (entries, codings, characters): the request is the client's text.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from msgspec import UNSET

from fhir_mappers.valuesets import ValueSets
from fhir_mappers.wire import ObservationBytes, codings

MAX_ORDERS = 20
MAX_CODINGS = 10
MAX_CODES = 50  # per resource type and invocation
MAX_CHARS = 200
NUMBER_CODE = "code sent as a JSON number, not a string: not read (FHIR codes are strings)"


def _text(value: Any) -> str | None:
    return value[:MAX_CHARS] if isinstance(value, str) and value else None


def _codings(concept: Any) -> list[dict[str, str]]:
    """The codings of a CodeableConcept as plain dicts, bounded; odd shapes skipped."""
    raw = concept.get("coding") if isinstance(concept, Mapping) else None
    out: list[dict[str, str]] = []
    for coding in raw if isinstance(raw, list) else []:
        if not isinstance(coding, Mapping):
            continue
        kept = {
            name: text
            for name in ("system", "code", "display")
            if (text := _text(coding.get(name))) is not None
        }
        number = coding.get("code")
        if isinstance(number, int | float) and not isinstance(number, bool):
            # FHIR codes are strings: 72158 sent as a number matches no value set. Kept,
            # said so, so the report points at the EHR's serialisation rather than at the
            # order's other codes (an integrator's review).
            kept["code"] = str(number)[:MAX_CHARS]
            kept["display"] = NUMBER_CODE
        if "code" in kept:
            out.append(kept)
        if len(out) == MAX_CODINGS:
            break
    return out


def _selected(selections: Sequence[str] | None) -> set[str] | None:
    if selections is None:
        return None
    return {"/".join(s.rstrip("/").split("/")[-2:]) for s in selections if isinstance(s, str)}


def orders_not_recognised(
    draft_orders: Any, selections: Sequence[str] | None, vs: ValueSets
) -> list[dict[str, Any]]:
    """The ServiceRequests in question whose codes are not spine imaging codes we know.

    An order with no code at all (the sandbox's page-load order, ``code.coding: [{}]``)
    teaches nothing and is left out.
    """
    entries = draft_orders.get("entry") if isinstance(draft_orders, Mapping) else None
    wanted = _selected(selections)
    found: list[dict[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or resource.get("resourceType") != "ServiceRequest":
            continue
        ref = f"ServiceRequest/{resource.get('id')}"
        if wanted is not None and ref not in wanted:
            continue
        concept = resource.get("code")
        kept = _codings(concept)
        text = _text(concept.get("text")) if isinstance(concept, Mapping) else None
        if not kept and text is None:
            continue
        # known from the codings as sent: a code sent as a number (kept above, to be named)
        # is no code a value set holds
        if any(
            isinstance(code, str)
            and code
            and vs.imaging_entry(system if isinstance(system, str) else "", code)
            for system, code, _ in codings(resource)
        ):
            continue
        order: dict[str, Any] = {"reference": ref[:MAX_CHARS], "codings": kept}
        if text is not None:
            order["text"] = text
        found.append(order)
        if len(found) == MAX_ORDERS:
            break
    return found


def reasons_not_recognised(resources: Iterable[Any], vs: ValueSets) -> list[list[str]]:
    """[system, code] of each coding of the orders' (``resources``: the spine orders'
    ServiceRequests) reasons none of whose codings the conditions value set holds; a
    reason with only a text is not listed (no value set can name it)."""
    found: list[list[str]] = []
    for resource in resources:
        reasons = resource.get("reasonCode") if isinstance(resource, Mapping) else None
        for concept in reasons if isinstance(reasons, list) else []:
            coded = _codings(concept)
            if any(vs.condition_entry(c.get("system", ""), c["code"]) for c in coded):
                continue
            for coding in coded:
                pair = [coding.get("system", ""), coding["code"]]
                if pair not in found:
                    found.append(pair)
                if len(found) == MAX_CODES:
                    return found
    return found


def _pairs(resource: Any) -> list[tuple[str, str]]:
    """The (system, code) of the resource's codings as ``_codings`` bounds them, read by
    ``wire.codings`` (an Observation decoded on the wire is not turned back into a dict:
    the fast path stays fast for the Observations that match)."""
    pairs = []
    for system, code, _ in codings(resource):
        kept = _text(code)
        if kept is not None:
            pairs.append((_text(system) or "", kept))
            if len(pairs) == MAX_CODINGS:
                break
    return pairs


def _kind_and_pairs(resource: Any) -> tuple[str | None, list[tuple[str, str]]]:
    if type(resource) is ObservationBytes:
        return "Observation", _pairs(resource)
    if not isinstance(resource, Mapping):
        return None, []
    kind = resource.get("resourceType")
    return (kind if isinstance(kind, str) else None), _pairs(resource)


def codes_not_recognised(
    conditions: Iterable[Any],
    observations: Iterable[Any],
    vs: ValueSets,
    *,
    unread_observations: Sequence[Any] | None = None,
) -> dict[str, list[list[str]]]:
    """``{"Condition": [[system, code], ...], "Observation": [...]}``: the codings of the
    resources of which no coding is one the rules read, each pair once; kinds with none
    are left out.

    ``unread_observations``: the Observations ``map_observations`` found no known code in
    (its ``unread``). The mapper has looked up every coding of the others and found one,
    so only these are read again, and those with more codings than are checked here (a
    known code past the first ``MAX_CODINGS`` counts for the mapper, not here): the
    answer is the one of reading them all, without a second walk over hundreds of
    codings."""
    out: dict[str, list[list[str]]] = {}
    skip_read = unread_observations is not None and _short_keys(vs)
    told = {id(r) for r in unread_observations} if unread_observations is not None else set()
    for kind, resources, known, shortcut in (
        ("Condition", conditions, vs.condition_entry, False),
        ("Observation", observations, vs.observation_entry, skip_read),
    ):
        seen: dict[tuple[str, str], None] = {}
        for resource in resources:
            if shortcut and id(resource) not in told:
                # The mapper found a known code; one among the first MAX_CODINGS is one
                # this check finds too. (A read ObservationBytes has codings: inline.)
                if type(resource) is ObservationBytes:
                    concept = resource.typed.code
                    if concept is UNSET or concept.coding is UNSET:
                        continue
                    if len(concept.coding) <= MAX_CODINGS:
                        continue
                elif not _many_codings(resource):
                    continue
            found_kind, pairs = _kind_and_pairs(resource)
            if (
                found_kind != kind
                or not pairs
                or any(known(system, code) for system, code in pairs)
            ):
                continue
            for pair in pairs:
                seen.setdefault(pair, None)
            if len(seen) >= MAX_CODES:
                break
        if seen:
            out[kind] = [list(pair) for pair in list(seen)[:MAX_CODES]]
    return out


def _many_codings(resource: Any) -> bool:
    """More codings than ``_codings`` reads (a resource as JSON): whether a known one is
    among them is not the mapper's answer, so the resource is read here again."""
    concept = resource.get("code") if isinstance(resource, Mapping) else None
    coding = concept.get("coding") if isinstance(concept, Mapping) else None
    return isinstance(coding, list) and len(coding) > MAX_CODINGS


def _short_keys(vs: ValueSets) -> bool:
    """Every Observation code and system of the value sets is shorter than what is kept
    here, so a code the mapper found is one this module's cut reads unchanged (a site's
    value set could, in principle, hold longer ones: then every resource is read here).
    A handful of codes: cheaper to check per call than to cache."""
    return all(
        len(system) < MAX_CHARS and len(code) < MAX_CHARS for system, code in vs.observations
    )
