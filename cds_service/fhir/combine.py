"""One search instead of several: prefetch queries that differ only in their codes.

When the EHR prefetched none of CRP, ESR and pain, the service would send three
Observation searches that differ only in ``code``. Many FHIR servers (the project's test
server among them) answer one query at a time, so three cost about three times one;
a single search with all the codes (and a page size that is the sum of theirs), split by
code afterwards, costs about one. Pure: no
I/O; the client fetches what ``combine`` returns and ``split`` hands each key its own.

Safety of the split: the code lists of the keys that are combined must be disjoint
(they are in hooks.json), so every resource belongs to exactly one key; one that
matches none (a server that ignored the filter) is left out and said. A note or an
error about the combined search (paging cut off, a refusal) concerns every key in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

from msgspec import UNSET

from cds_service.fhir.bundles import FetchResult, FhirError, Problem
from fhir_mappers.valuesets import canonical_system
from fhir_mappers.wire import ObservationBytes

SEPARATOR = "+"


@dataclass(frozen=True)
class Combined:
    """The queries to send, and for each combined key the codes of its members."""

    queries: dict[str, str]  # key (a combined key joins its members with "+") -> query
    members: dict[str, dict[str, frozenset[str]]]  # combined key -> member -> codes
    order: tuple[str, ...] = ()  # the keys as given: split reports in this order


def combine(queries: Mapping[str, str]) -> Combined:
    """Merge searches of one resource type whose parameters differ only in ``code``.

    The combined searches come first in ``queries``: a FHIR server that answers one
    query at a time then works on the long search while the short ones wait behind it,
    instead of starting it only after the client has sent every short one (measured:
    the service's own queries at once took about 1.5 ms less).
    """
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[str, frozenset[str]]]] = {}
    single: dict[str, str] = {}
    for key, query in queries.items():
        parsed = _code_search(query)
        if parsed is None:
            single[key] = query
            continue
        path, others, codes = parsed
        groups.setdefault((path, others), []).append((key, codes))
    out: dict[str, str] = {}
    members: dict[str, dict[str, frozenset[str]]] = {}
    for (path, others), keys in groups.items():
        all_codes = [c for _, codes in keys for c in codes]
        if len(keys) < 2 or len(all_codes) != len(set(all_codes)):
            for key, _ in keys:
                out[key] = queries[key]  # alone, or overlapping codes: not combined
            continue
        name = SEPARATOR.join(key for key, _ in keys)
        # One page holds what the first page of each search held: _count is their sum,
        # so the combined search needs no more pages (sent one after the other) than
        # the separate ones did.
        others = tuple(
            (k, str(int(v) * len(keys)) if k == "_count" and v.isdigit() else v) for k, v in others
        )
        # Values are encoded as render_queries encodes them: a patient id in full
        # (a "/" or "&" in it stays data), the code list keeping its "system|code" form.
        params = [f"{k}={quote(v, safe='')}" for k, v in others]
        params.append("code=" + quote(",".join(sorted(all_codes)), safe="|,:/"))
        out[name] = path + "?" + "&".join(params)
        members[name] = dict(keys)
    out.update(single)
    return Combined(out, members, tuple(queries))


class Parts(NamedTuple):
    """One combined search's resources as found, and as split."""

    found: list[Any]
    members: dict[str, list[Any]]  # member key -> its resources
    unmatched: int  # how many matched none of the codes


def split_one(found: list[Any], member_codes: Mapping[str, frozenset[str]]) -> Parts:
    """The resources of one combined search per member key (``member_codes``)."""
    parts: dict[str, list[Any]] = {member: [] for member in member_codes}
    unmatched = 0
    for resource in found:
        owner = _member_of(resource, member_codes)
        if owner is None:
            unmatched += 1
        else:
            parts[owner].append(resource)
    return Parts(found, parts, unmatched)


def split(
    result: FetchResult, combined: Combined, already: Mapping[str, Parts] | None = None
) -> FetchResult:
    """The fetch result per original key: resources by code, notes and errors to each.
    ``already``: combined keys split before (``split_one``), used when made from the
    very resources of ``result``, so that their member lists are the same objects."""
    resources: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, FhirError] = {}
    notes: list[Problem] = []
    for key, found in result.resources.items():
        if key not in combined.members:
            resources[key] = found
            continue
        done = (already or {}).get(key)
        if done is None or done.found is not found:
            done = split_one(found, combined.members[key])
        resources.update(done.members)
        if done.unmatched:
            notes.append(
                Problem(key, f"{done.unmatched} result(s) of none of the codes asked for: ignored")
            )
    for key, error in result.errors.items():
        for member in combined.members.get(key, {key: frozenset()}):
            errors[member] = FhirError(member, error.reason)
    for note in result.notes:
        for member in combined.members.get(note.key, {note.key: frozenset()}):
            notes.append(replace(note, key=member))  # every flag kept (failed, strays_only)
    position = {key: i for i, key in enumerate(combined.order)}

    def place(key: str) -> int:
        return position.get(key, len(position))

    return FetchResult(
        resources={k: resources[k] for k in sorted(resources, key=place)},
        errors={k: errors[k] for k in sorted(errors, key=place)},
        notes=tuple(sorted(notes, key=lambda n: place(n.key))),
    )


def cut_off_members(result: FetchResult, combined: Combined) -> tuple[str, ...]:
    """The members of a combined search whose paging was cut off (after ``split``: each
    member has the note). Its pages mixed the members, newest first, so a member with
    few values (CRP) may have lost its older ones to one with many (hourly pain scores):
    each is worth fetching on its own (an outside clinician's review: a chart of 1,700
    pain scores left the fetched path without its CRP baseline, prefetch not)."""
    members = {m for codes in combined.members.values() for m in codes}
    return tuple(dict.fromkeys(n.key for n in result.notes if n.cut_off and n.key in members))


def replace_members(result: FetchResult, again: FetchResult) -> FetchResult:
    """``result`` with each key ``again`` read in full taking its resources and notes
    from ``again``; a key ``again`` failed keeps what the combined search gave it."""
    done = set(again.resources)
    return FetchResult(
        resources={k: again.resources.get(k, v) for k, v in result.resources.items()},
        errors=result.errors,
        notes=tuple(n for n in result.notes if n.key not in done)
        + tuple(n for n in again.notes if n.key in done),
    )


def _code_search(query: str) -> tuple[str, tuple[tuple[str, str], ...], frozenset[str]] | None:
    """(path, the other parameters sorted, the codes) of a search with one ``code``."""
    parts = urlsplit(query)
    if not parts.query or "/" in parts.path.strip("/"):
        return None
    params = parse_qsl(parts.query, keep_blank_values=True)
    codes = [value for name, value in params if name == "code"]
    if len(codes) != 1:
        return None
    listed = frozenset(c.strip() for c in codes[0].split(",") if c.strip())
    if not listed or any("|" not in c for c in listed):
        return None  # codes without a system could match another key's code
    others = tuple(sorted((n, v) for n, v in params if n != "code"))
    return parts.path, others, listed


def _member_of(resource: Any, member_codes: Mapping[str, frozenset[str]]) -> str | None:
    for token in _code_tokens(resource):
        for member, codes in member_codes.items():
            if token in codes:
                return member
    return None


def _code_tokens(resource: Any) -> list[str]:
    """``system|code`` of each coding of the resource's ``code``: read from the typed
    decode of a fetched page (``ObservationBytes``), else from the dict."""
    if type(resource) is ObservationBytes:
        typed = resource.typed.code
        if typed is UNSET or typed.coding is UNSET:
            return []
        return [f"{_system(c.system)}|{_or_none(c.code)}" for c in typed.coding]
    codings: Sequence[Any] = ()
    if isinstance(resource, dict):
        concept = resource.get("code")
        if isinstance(concept, dict) and isinstance(concept.get("coding"), list):
            codings = concept["coding"]
    return [
        f"{_system(coding.get('system'))}|{coding.get('code')}"
        for coding in codings
        if isinstance(coding, dict)
    ]


def _or_none(value: object) -> object:
    return None if value is UNSET else value


def _system(value: object) -> object:
    """A coding's system as the query names it: an OID form read as its URI."""
    return canonical_system(value) if isinstance(value, str) else _or_none(value)
