"""Reading what a FHIR server or a prefetch gives back: pure functions, no I/O.

What a query asks for (a read or a search of one resource type), whether an answer
has that shape, the resources of a search Bundle and its ``next`` link, and the
problems worth telling the client, in words that never carry the token or a query.

An Observation search, prefetched (``hookbody``) or fetched (``client``), is read by one
typed path: ``SearchPage`` decodes the Bundle leaving each entry's resource as bytes,
and ``read_resource`` reads each into ``fhir_mappers.wire`` Structs, keeping the bytes
for the mapper's careful path. A Bundle outside that shape is read by orjson as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from fhir_mappers.wire import ObservationBytes, read_resource

_SEARCH_BUNDLE_TYPES = frozenset({"searchset"})
# A client may hand over a search result as a collection, or without a type (seen in practice).
PREFETCH_BUNDLE_TYPES = frozenset({"searchset", "collection"})
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Problem:
    """Something about one prefetch key, in words the client may read.

    ``cut_off``: the key's search results were read only in part (paging stopped at the
    page limit or a looping link, or a prefetched Bundle's further pages could not be
    read), so older results may be missing: the rules then ask for more before advising
    against imaging.

    ``failed``: the search result carried an OperationOutcome with an ``error`` or
    ``fatal`` issue: the search failed in part, so what it holds may be missing data
    (CDS Hooks: an OperationOutcome in prefetch, an entry of a searchset included,
    SHOULD be checked and re-fetched). Information and warnings are not failures.

    ``strays_only``: the search held entries, none of the type searched for (a template
    or a server gone wrong): read as empty it would say "no data", so the key is read
    as not prefetched, or, fetched, as unavailable.
    """

    key: str
    reason: str
    cut_off: bool = False
    failed: bool = False
    strays_only: bool = False


class FhirError(Exception):
    """One prefetch key could not be fetched; ``reason`` is client-safe text."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class FirstPage:
    """A prefetched search Bundle whose further pages (``next`` links) are still to be read."""

    resource_type: str
    bundle: dict[str, Any]


@dataclass(frozen=True)
class FetchResult:
    """Per key: the resources, or the error; and non-fatal notes worth auditing. The
    resources are dicts, and for an Observation search ``ObservationBytes`` too."""

    resources: dict[str, list[Any]]
    errors: dict[str, FhirError]
    notes: tuple[Problem, ...]


@dataclass(frozen=True)
class QueryShape:
    """What a relative FHIR query asks for: a read of one resource or a type-level search."""

    resource_type: str
    is_search: bool


def query_shape(query: str) -> QueryShape | None:
    """``Observation?code=..`` is a search, ``Patient/123`` a read; None when it is neither."""
    path = query.split("?", 1)[0].strip("/")
    segments = path.split("/") if path else []
    if not segments or not _RESOURCE_TYPE.match(segments[0]):
        return None
    if len(segments) == 1 or (len(segments) == 2 and segments[1] == "_search"):
        return QueryShape(segments[0], is_search=True)
    return QueryShape(segments[0], is_search=False)


def _word(text: object, fallback: str) -> str:
    """Text from a server, shown only when it is one plain word (no injection, no ids)."""
    return text if isinstance(text, str) and _SAFE_WORD.match(text) else fallback


def _a(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def shape_mismatch(value: object, shape: QueryShape, origin: str) -> str | None:
    """Why a resource is not what the query asks for, or None. ``origin`` starts the reason."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return f"{origin} something that is not a FHIR resource"
    found = _word(value["resourceType"], "unknown resource")
    if found == "OperationOutcome":
        return f"{origin} an OperationOutcome instead of data"
    if shape.is_search:
        if found != "Bundle":
            return f"{origin} {_a(found)} where a search Bundle was expected"
        bundle_type = value.get("type")
        allowed = _SEARCH_BUNDLE_TYPES if origin.startswith("FHIR") else PREFETCH_BUNDLE_TYPES
        if bundle_type is not None and (
            not isinstance(bundle_type, str) or bundle_type not in allowed
        ):
            shown = _word(bundle_type, "unknown")
            return f"{origin} a Bundle of type {shown!r} where a searchset was expected"
        if "entry" in value and not isinstance(value["entry"], list):
            return f"{origin} a Bundle whose entry is not a list"
        return None
    if found != shape.resource_type:
        return f"{origin} {_a(found)} where {_a(shape.resource_type)} was expected"
    return None


class SearchEntry(Struct, gc=False):
    """A Bundle entry: what ``unwrap_bundle`` reads of it (other members are not read)."""

    resource: Raw | UnsetType = UNSET
    search: object = UNSET  # any JSON value, as the entry gives it (unwrap_bundle reads it)


class SearchPage(Struct, gc=False):
    """A search result Bundle with its entries' resources left as bytes: of any
    resourceType and type (the caller checks them), its entries objects in a list.
    Decoding refuses any other shape, which is then read the careful way (orjson)."""

    resourceType: str
    type: str | UnsetType = UNSET
    link: object = UNSET  # any JSON value, passed on as it is
    entry: list[SearchEntry] = []


_PAGE: Final = msgspec.json.Decoder(SearchPage)


def read_search_page(body: bytes, shape: QueryShape) -> dict[str, Any] | None:
    """A fetched page of an Observation search as ``orjson.loads`` reads it, but for its
    entries: each is ``{"resource": read_resource(...), "search": ...}``, so its
    Observations are read typed (the resource and search keys only where the entry had
    them, other members of an entry not kept). None for another query, or when the body
    is not a Bundle of that shape, or not JSON: the caller reads it with orjson, and
    says what is wrong with it."""
    if not shape.is_search or shape.resource_type != "Observation":
        return None
    try:
        page = _PAGE.decode(body)
    except msgspec.DecodeError:
        return None
    if page.resourceType != "Bundle":
        return None
    out: dict[str, Any] = {"resourceType": "Bundle"}
    if page.type is not UNSET:
        out["type"] = page.type
    if page.link is not UNSET:
        out["link"] = page.link
    entries = []
    for entry in page.entry:
        item: dict[str, Any] = {}
        if entry.resource is not UNSET:
            item["resource"] = read_resource(entry.resource)
        if entry.search is not UNSET:
            item["search"] = entry.search
        entries.append(item)
    out["entry"] = entries
    return out


class PrefetchedSearch:
    """A prefetched search Bundle as the typed request decoder (``hookbody``) leaves it:
    its entries as (resource bytes or None, search) pairs. Each resource is read when
    the Bundle is unwrapped (``read_resource``: an Observation the typed decode accepts
    becomes an ``ObservationBytes``, anything else the JSON value). Only Bundles with
    nothing more to read (no ``next`` link) and of a type ``gather`` accepts are left
    this way."""

    __slots__ = ("entries",)

    def __init__(self, entries: list[tuple[Raw | None, Any]]) -> None:
        self.entries = entries


# Resources a search brings beside its own type (``_include``), kept for the mapper:
# an EHR does not always mark them with search.mode "include".
_INCLUDED = {"MedicationRequest": ("Medication",)}


def unwrap_bundle(
    key: str, bundle: Mapping[str, Any] | PrefetchedSearch, resource_type: str
) -> tuple[list[Any], list[Problem]]:
    """The entries' resources of the searched type; outcome and stray entries are noted.

    The resources are dicts, and for an Observation search from the typed decoder
    ``ObservationBytes`` too, which the mapper and the subject check read as such."""
    if isinstance(bundle, PrefetchedSearch):
        pairs: Iterable[tuple[Any, Any]] = (
            (None if raw is None else read_resource(raw), search) for raw, search in bundle.entries
        )
    else:
        pairs = (
            (e.get("resource"), e.get("search")) if isinstance(e, dict) else (None, None)
            for e in bundle.get("entry") or []
        )
    found: list[Any] = []
    outcomes: list[str] = []
    has_outcome = False
    failed = False
    strays = 0
    for resource, search in pairs:
        mode = search.get("mode") if isinstance(search, dict) else None
        if type(resource) is ObservationBytes:
            if mode != "outcome" and resource_type == "Observation":
                found.append(resource)
                continue
            resource = resource.as_dict()
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if mode == "outcome" or kind == "OperationOutcome":
            has_outcome = True
            outcomes.extend(_issue_words(resource))
            failed = failed or has_error(resource)
        elif isinstance(resource, dict) and (
            kind == resource_type or kind in _INCLUDED.get(resource_type, ())
        ):
            found.append(resource)
        elif mode != "include":
            strays += 1
    notes: list[Problem] = []
    if has_outcome:
        issues = ", ".join(sorted(set(outcomes))) or "no issues given"
        if failed:
            # With no result beside it the search failed outright: read as "no CRP", it
            # had a card ask for one a patient may have had several of (an integrator's
            # review); callers read ``failed_outright`` as a failed key.
            how = "failed in part" if found else "failed"
            notes.append(
                Problem(
                    key,
                    f"search result carried an OperationOutcome ({issues}): the search {how}",
                    failed=True,
                )
            )
        else:
            notes.append(
                Problem(key, f"search result carried an OperationOutcome ({issues}); ignored")
            )
    if strays:
        notes.append(
            Problem(
                key,
                f"{strays} search entries that are not {resource_type} ignored",
                strays_only=not found,
            )
        )
    return found, notes


def failed_outright(found: list[Any], notes: list[Problem]) -> Problem | None:
    """The note of a search page that holds an error OperationOutcome and no result: a
    failed search, not an empty one (``unwrap_bundle``)."""
    if found:
        return None
    return next((n for n in notes if n.failed), None)


def has_error(outcome: object) -> bool:
    """An issue of severity error or fatal: the search failed, at least in part."""
    if not isinstance(outcome, dict) or not isinstance(outcome.get("issue"), list):
        return False
    return any(
        isinstance(issue, dict) and issue.get("severity") in ("error", "fatal")
        for issue in outcome["issue"]
    )


def _issue_words(outcome: object) -> list[str]:
    if not isinstance(outcome, dict) or not isinstance(outcome.get("issue"), list):
        return []
    words = []
    for issue in outcome["issue"]:
        if isinstance(issue, dict):
            words.append(f"{_word(issue.get('severity'), '?')}/{_word(issue.get('code'), '?')}")
    return words


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The Bundle's ``next`` link, if any."""
    return _link(bundle, "next")


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == relation:
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None
