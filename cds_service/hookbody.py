"""A hook request body, decoded by type where it has the usual shape.

``jsonbody.parse_json_object`` builds a dict for every element of the body; for the
usual order-select with a few hundred prefetched Observations that, and walking those
dicts afterwards, was the largest cost of a call (issue 13). This decoder reads the
body with msgspec into a skeleton: the envelope's members and the non-Observation
prefetch keys as raw bytes (then read by orjson, exactly as before), and each
prefetched Observation search as a list of its entries (``fhir.bundles.SearchPage``,
the shape fetched search pages are read in too), whose Observations are decoded into
typed Structs (``fhir_mappers.wire``) that keep their bytes, when they are read
(``unwrap_bundle``): a call whose order is not a spine order never reads them.

It is a fast path, never a second behaviour. It answers only for bodies whose shape it
knows: any other (an unknown member, a prefetch key the service does not define, a
Bundle with a ``next`` link or of another type, an OperationOutcome instead of a
Bundle, invalid UTF-8, a body nested deeper than allowed, a number that orjson refuses
in a member kept as bytes) gets None, and the caller reads the body the careful way, so
its answer or its 400 is the one it always was.
Whatever this returns is what ``parse_json_object`` would return, except that each
Observation search's entries are a ``PrefetchedSearch`` (``fhir.bundles``) instead of
a Bundle dict; ``schema_view`` gives the schema check a dict in the old form. One
difference remains: a number beyond a double's range in a prefetched Observation search
is never read here (msgspec skips it, and ``fhir_mappers.wire`` reads each Observation
on its own), where the careful parse refuses the whole body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
import orjson
from msgspec import UNSET, Raw, UnsetType

from cds_service.discovery import Service
from cds_service.fhir.bundles import (
    PREFETCH_BUNDLE_TYPES,
    PrefetchedSearch,
    SearchPage,
    next_link,
    query_shape,
)
from cds_service.jsonbody import max_depth

# The members of a CDS Hooks 2.0 request (CDS Hooks "HTTP Request"); any other sends
# the body down the careful path, so nothing a client sends is dropped.
_ENVELOPE: Final = (
    "hook",
    "hookInstance",
    "context",
    "fhirServer",
    "fhirAuthorization",
    "prefetch",
    "extension",
)


class HookBodyDecoder:
    """The typed decoder for one service's hook bodies (its prefetch keys are known)."""

    def __init__(self, service: Service) -> None:
        fields: list[tuple[str, Any, Any]] = []
        self._searches: set[str] = set()
        for key, template in service.prefetch.items():
            shape = query_shape(template)
            if shape is not None and shape.is_search and shape.resource_type == "Observation":
                self._searches.add(key)
                # the shape fetched pages are read in (fhir.bundles), checked below
                # for what ``gather`` takes as it is: searchset or collection (or no
                # type) and no ``next`` link
                fields.append((key, SearchPage | None | UnsetType, UNSET))
            else:
                fields.append((key, Raw | UnsetType, UNSET))
        prefetch = msgspec.defstruct(
            "Prefetch", fields, forbid_unknown_fields=True, gc=False, kw_only=True
        )
        body = msgspec.defstruct(
            "HookBody",
            [(name, Raw | UnsetType, UNSET) for name in _ENVELOPE if name != "prefetch"]
            + [("prefetch", prefetch | UnsetType, UNSET)],
            forbid_unknown_fields=True,
            gc=False,
            kw_only=True,
        )
        self._decoder = msgspec.json.Decoder(body)
        self._keys = tuple(service.prefetch)

    def decode(self, raw: bytes, depth_limit: int) -> dict[str, Any] | None:
        """The body as ``parse_json_object`` reads it (with ``PrefetchedSearch`` values),
        or None when the careful path must read it."""
        if not raw.isascii():
            try:
                raw.decode("utf-8")  # msgspec does not check strings it skips
            except UnicodeDecodeError:
                return None
        if max_depth(raw, depth_limit) > depth_limit:
            return None  # the careful path says why, in its words
        try:
            decoded = self._decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        try:
            return _body(decoded, self._keys, self._searches)
        except orjson.JSONDecodeError:
            # msgspec skips the text of a member it keeps as bytes without reading its
            # numbers; orjson refuses one beyond a double's range (1e400, 400 digits).
            # The careful parse refuses the body too, saying where.
            return None


def _body(decoded: Any, keys: tuple[str, ...], searches: set[str]) -> dict[str, Any] | None:
    body: dict[str, Any] = {}
    for name in _ENVELOPE:
        member = getattr(decoded, name)
        if member is UNSET:
            continue
        if name != "prefetch":
            body[name] = orjson.loads(memoryview(member))
            continue
        prefetch = _prefetch(member, keys, searches)
        if prefetch is None:
            return None
        body[name] = prefetch
    return body


def _prefetch(decoded: Any, keys: tuple[str, ...], searches: set[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(decoded, key)
        if value is UNSET:
            continue
        if key not in searches:
            out[key] = orjson.loads(memoryview(value))
            continue
        if value is None:
            out[key] = None
            continue
        if (
            value.resourceType != "Bundle"
            or (value.type is not UNSET and value.type not in PREFETCH_BUNDLE_TYPES)
            or (value.link is not UNSET and next_link({"link": value.link}))
        ):
            return None  # refetched, paged or refused: the careful path's business
        out[key] = PrefetchedSearch(
            [(None if e.resource is UNSET else e.resource, e.search) for e in value.entry]
        )
    return out


def schema_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """``body`` for the JSON Schema check: each ``PrefetchedSearch`` stands as ``{}``.

    The request schemas ask only that a prefetch value be an object or null, and a
    ``PrefetchedSearch`` was decoded from an object, so the check and its messages are
    the ones the Bundle dict would get."""
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, dict) or not any(
        type(v) is PrefetchedSearch for v in prefetch.values()
    ):
        return body
    view = dict(body)
    view["prefetch"] = {k: {} if type(v) is PrefetchedSearch else v for k, v in prefetch.items()}
    return view
