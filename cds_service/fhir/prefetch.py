"""The patient's data for one invocation: what the EHR prefetched, plus what it did not.

CDS Hooks lets a client satisfy none, some or all prefetch templates, and the service must
check what it got and fetch the rest from ``fhirServer``. Per key of the service's
templates:

- absent: fetched from ``fhirServer`` (bearer token from ``fhirAuthorization``, none when
  the request has no ``fhirAuthorization``);
- ``null``: the client's query found nothing, so there is no data and nothing is fetched;
- an OperationOutcome, or not the expected resource: fetched again, or reported when that
  cannot be done;
- a search Bundle with an OperationOutcome entry whose issue is an error (the search failed
  in part): fetched again when a ``fhirServer`` is given, otherwise used and noted (with
  no result beside it, failed outright, reported);
- a search Bundle with a ``next`` link: its further pages are read when a ``fhirServer`` is
  given, otherwise what is there is used and the gap is noted.

Searches to be fetched that differ only in their codes (CRP, ESR and pain, when none was
prefetched) go out as one search and are split by code (``combine``): many FHIR servers
answer one query at a time.

Every key is required: when one cannot be had, ``DataUnavailable`` names each such key and
why, and the caller answers 412.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from cds_service.discovery import Service
from cds_service.fhir.bundles import (
    FetchResult,
    FirstPage,
    PrefetchedSearch,
    Problem,
    next_link,
    query_shape,
    shape_mismatch,
    unwrap_bundle,
)
from cds_service.fhir.client import FhirClient, OnResult
from cds_service.fhir.combine import (
    Combined,
    Parts,
    combine,
    cut_off_members,
    replace_members,
    split,
    split_one,
)
from cds_service.fhir.settings import FhirSettings
from cds_service.fhir.templates import render_queries
from cds_service.fhir.urls import leads_under, server_base, server_url_problem
from cds_service.validation import shown_name
from fhir_mappers.subjects import all_about_another_patient

__all__ = ["DataUnavailable", "GatheredData", "Problem", "gather", "render_queries"]


@dataclass(frozen=True)
class GatheredData:
    """The resources per prefetch key, where each came from, and what is worth auditing."""

    resources: dict[str, list[dict[str, Any]]]  # prefetch key -> resources (plain dicts)
    sources: dict[str, str]  # key -> "prefetch" | "fetched" | "null"
    notes: tuple[Problem, ...]  # non-fatal, e.g. a search-outcome entry ignored


class DataUnavailable(Exception):
    """Required data could not be had; the caller answers 412 with ``problems``."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        listed = "; ".join(f"{p.key}: {p.reason}" for p in problems)
        super().__init__(f"required FHIR data could not be obtained: {listed}")
        self.problems = problems


def _next_elsewhere(value: object, fhir_server: str | None) -> bool:
    """A prefetched search Bundle whose ``next`` link does not lead to ``fhir_server``."""
    link = next_link(value) if isinstance(value, Mapping) else None
    if link is None or fhir_server is None:
        return False
    target = urljoin(fhir_server.rstrip("/") + "/", link)
    return not leads_under(target, *server_base(fhir_server))


def _request_fhir_access(request: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """(fhirServer or None, access token or None, why there is no usable fhirServer)."""
    server = request.get("fhirServer")
    if server is None:
        return None, None, "the request has no fhirServer to fetch it from"
    problem = server_url_problem(server)
    if problem is not None:
        return None, None, problem
    authorization = request.get("fhirAuthorization")
    token = authorization.get("access_token") if isinstance(authorization, Mapping) else None
    return str(server), token if isinstance(token, str) and token else None, ""


def _token_patient_differs(request: Mapping[str, Any], patient_id: Any) -> Problem | None:
    """A note when the token's patient (``fhirAuthorization.patient``) is not the patient in
    context: the fetches go out with a token scoped to someone else, so they may be
    refused, and whatever they return of another patient is left out (an integrator's
    review: the mismatch passed without a word). Neither id is in the note."""
    authorization = request.get("fhirAuthorization")
    scoped = authorization.get("patient") if isinstance(authorization, Mapping) else None
    if not isinstance(scoped, str) or not isinstance(patient_id, str) or scoped == patient_id:
        return None
    return Problem(
        "fhirAuthorization.patient",
        "differs from context.patientId: the token is scoped to another patient, so the "
        "fetches may be refused; anything of another patient is left out",
    )


def gather(
    service: Service,
    request: Mapping[str, Any],
    client: FhirClient,
    settings: FhirSettings,
    now_monotonic: float,
    optional: frozenset[str] = frozenset(),
    on_ready: Callable[[Mapping[str, list[Any]]], None] | None = None,
) -> GatheredData:
    """Every prefetch key of ``service``, from prefetch or ``fhirServer``; raises
    DataUnavailable naming each required key that cannot be had. A key in ``optional``
    that cannot be had is left empty, its source "unavailable" and the reason noted.
    FHIR traffic ends by ``now_monotonic + settings.budget_seconds``.

    ``on_ready``, while fetching: told the resources of each key known so far (the
    prefetched, and each fetched key as it comes in), in a fetch thread, so that the
    caller may read some while others are on their way (``FhirClient.fetch_all``'s
    ``on_result``: not always called). The lists it is shown are the lists returned."""
    deadline = now_monotonic + settings.budget_seconds
    raw_context = request.get("context")
    context: Mapping[str, Any] = raw_context if isinstance(raw_context, Mapping) else {}
    raw_prefetch = request.get("prefetch")
    prefetch: Mapping[str, Any] = raw_prefetch if isinstance(raw_prefetch, Mapping) else {}
    fhir_server, token, no_server = _request_fhir_access(request)
    server = request.get("fhirServer") if isinstance(request.get("fhirServer"), str) else None
    patient_id = context.get("patientId")
    queries, render_problems = render_queries(service.prefetch, context)
    unrenderable = {p.key: p.reason for p in render_problems}

    resources: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, str] = {}
    # A key the service does not declare (a misspelling, another service's) is not read;
    # said in the audit, and in a 412 beside the key it was perhaps meant to be.
    strays = [
        Problem(shown_name(key), "not a prefetch key of this service (hooks.json): ignored")
        for key in prefetch
        if key not in service.prefetch
    ]
    notes: list[Problem] = list(strays)
    problems: list[Problem] = []
    to_fetch: dict[str, str] = {}
    first_pages: dict[str, FirstPage] = {}
    refetch_because: dict[str, str] = {}

    for key, template in service.prefetch.items():
        shape = query_shape(template)
        if shape is None:
            problems.append(Problem(key, "the prefetch template is not a FHIR read or search"))
            continue
        if key in prefetch:
            value = prefetch[key]
            if value is None:
                resources[key], sources[key] = [], "null"
                continue
            if type(value) is PrefetchedSearch and shape.is_search:
                # from the typed decoder: a search Bundle with no further pages
                mismatch = None
                found, more = unwrap_bundle(key, value, shape.resource_type)
            else:
                mismatch = shape_mismatch(value, shape, "prefetch held")
                found, more = [], []
                if mismatch is None and not shape.is_search:
                    found = [value]
                elif mismatch is None and not next_link(value):
                    found, more = unwrap_bundle(key, value, shape.resource_type)
            failure = next((n for n in more if n.failed), None)
            if mismatch is None:
                mismatch = _someone_elses(found, patient_id, server, "the prefetch held")
            strayed = next((n for n in more if n.strays_only), None)
            if mismatch is None and strayed is not None:
                # only entries of another type: not "no data" (an attack review)
                mismatch = f"the prefetched search held only other resources ({strayed.reason})"
            can_fetch = fhir_server is not None and key not in unrenderable
            if mismatch is None and failure is not None and (can_fetch or not found):
                # failed (in part: data may be missing; outright: none): never "no CRP"
                mismatch = failure.reason.replace("search result", "the prefetched search", 1)
            if mismatch is None and can_fetch and _next_elsewhere(value, fhir_server):
                # its further pages are not fetched there with the token: the whole
                # search is, from fhirServer (an integration review: an Epic-shaped
                # Bundle's next link to another host left "one CRP only")
                mismatch = "the prefetched search's next page is not on fhirServer"
            if mismatch is None:
                notes.extend(more)
                sources[key] = "prefetch"
                if shape.is_search and type(value) is not PrefetchedSearch and next_link(value):
                    first_pages[key] = FirstPage(shape.resource_type, value)
                else:
                    resources[key] = found
                continue
            refetch_because[key] = mismatch
        why_not = unrenderable.get(key) or (no_server if fhir_server is None else "")
        if why_not:
            lead = refetch_because.get(key, "not prefetched")
            problems.append(Problem(key, f"{lead}, and {why_not}"))
            continue
        to_fetch[key] = queries[key]

    problems = _spare_optional(problems, optional, resources, sources, notes)
    if problems:
        raise DataUnavailable((*problems, *strays))

    if fhir_server is not None and (to_fetch or first_pages):
        scoped = _token_patient_differs(request, patient_id)
        if scoped is not None:
            notes.append(scoped)
        # CRP, ESR and pain missing together: one Observation search, split by code.
        combined = combine(to_fetch)
        already: dict[str, Parts] = {}
        result = client.fetch_all(
            fhir_server,
            token,
            combined.queries,
            deadline,
            first_pages=first_pages,
            on_result=_tell_ready(on_ready, resources, combined, already) if on_ready else None,
        )
        result = split(result, combined, already)
        cut = cut_off_members(result, combined)
        if cut:  # each on its own, within what is left of the deadline
            again = client.fetch_all(fhir_server, token, {k: to_fetch[k] for k in cut}, deadline)
            result = replace_members(result, again)
    else:
        result = client.follow_pages(None, None, first_pages, deadline)
    _merge(result, refetch_because, resources, sources, notes, problems, patient_id, server)
    problems = _spare_optional(problems, optional, resources, sources, notes)
    if problems:
        raise DataUnavailable((*problems, *strays))
    ordered = {key: resources[key] for key in service.prefetch}
    return GatheredData(
        resources=ordered,
        sources={key: sources[key] for key in service.prefetch},
        notes=tuple(notes),
    )


def _someone_elses(
    found: list[Any], patient_id: object, server: str | None, held: str
) -> str | None:
    """Why a key cannot be used when no resource in it is linked to this patient (each
    names another, one on another server than ``server``, the call's fhirServer, or
    someone only by identifier, display or a contained resource), or None; ``held`` says
    where they came from. A wrong prefetch template, patient id mapping or a server that
    ignored ``patient=`` otherwise reads as "no active infection" and answers
    ``{"cards": []}``, hiding the failure: a prefetched key is then read as not
    prefetched (fetched from fhirServer or named in a 412), a fetched one as unavailable."""
    if not found or not isinstance(patient_id, str):
        return None
    if not all_about_another_patient(found, patient_id, server):
        return None
    return f"{held} no resource linked to this patient ({len(found)})"


def _tell_ready(
    on_ready: Callable[[Mapping[str, list[Any]]], None],
    known: Mapping[str, list[Any]],
    combined: Combined,
    already: dict[str, Parts],
) -> OnResult:
    """``on_result`` for the client: a combined search split (kept in ``already`` for
    ``split``), then ``on_ready`` told every key known so far. The client calls it
    holding the process's turn, so one at a time."""
    ready = dict(known)

    def tell(key: str, found: list[Any]) -> None:
        members = combined.members.get(key)
        if members is None:
            ready[key] = found
        else:
            already[key] = split_one(found, members)
            ready.update(already[key].members)
        on_ready(ready)

    return tell


def _spare_optional(
    problems: list[Problem],
    optional: frozenset[str],
    resources: dict[str, list[dict[str, Any]]],
    sources: dict[str, str],
    notes: list[Problem],
) -> list[Problem]:
    """The problems that stop the call; an optional key's problem becomes a note and the
    key an empty, "unavailable" source."""
    kept = []
    for problem in problems:
        if problem.key in optional:
            resources[problem.key], sources[problem.key] = [], "unavailable"
            notes.append(Problem(problem.key, f"{problem.reason}; went ahead without it"))
        else:
            kept.append(problem)
    return kept


def _merge(
    result: FetchResult,
    refetch_because: Mapping[str, str],
    resources: dict[str, list[dict[str, Any]]],
    sources: dict[str, str],
    notes: list[Problem],
    problems: list[Problem],
    patient_id: object,
    server: str | None,
) -> None:
    for key, error in result.errors.items():
        if key in refetch_because:
            problems.append(
                Problem(key, f"{refetch_because[key]}; fetching it failed: {error.reason}")
            )
        else:
            problems.append(Problem(key, f"not prefetched; fetching it failed: {error.reason}"))
    for key, found in result.resources.items():
        # a FHIR server that ignored or mis-read patient=: as with prefetch, not "no data"
        # (an attack review: another patient's Conditions read as no infection, no card)
        foreign = _someone_elses(found, patient_id, server, "the FHIR server sent")
        if foreign is not None:
            problems.append(Problem(key, foreign))
            continue
        strayed = next((n for n in result.notes if n.key == key and n.strays_only), None)
        if strayed is not None:  # only entries of another type: not "no data"
            problems.append(
                Problem(key, f"FHIR server sent only other resources ({strayed.reason})")
            )
            continue
        resources[key] = found
        sources.setdefault(key, "fetched")
        if key in refetch_because:
            notes.append(Problem(key, f"{refetch_because[key]}; fetched it again"))
    notes.extend(result.notes)
