"""Which codes a patient's Observations carry on the EHR's FHIR server, and which of them
the service reads: the way to find a site's local CRP, ESR and pain-score codes.

The service's CRP, ESR and pain searches ask for the codes of its value sets (LOINC, and a
site's own once it adds them), so a result coded only with a local code never reaches it,
nor its audit, nor the report of codes not recognised (an integrator's review: an Epic-style
``urn:oid`` CRP code left three CRPs unseen, and the card asked for a CRP). This tool asks
the server for a patient's Observations without a code filter and counts their codings,
marking the ones the service reads and the ones whose name looks like CRP, ESR or pain.
It shows codes and their displays only, never values, dates or ids.

Every system, code and display is the FHIR server's text, so each is printed as ``spine-cds
report`` prints a client's (``report_safe.printable``): an outside review had ESC
sequences, OSC-8 hyperlinks, a CR/LF that forged a table row and U+202E reach the
terminal, and a system or code of any length fill it. They are escaped and cut (an
ellipsis marks a cut) in the table and in the JSON alike, which is read in a terminal too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

import orjson

from cds_service.fhir.bundles import (
    QueryShape,
    failed_outright,
    has_error,
    next_link,
    shape_mismatch,
    unwrap_bundle,
)
from cds_service.fhir.failures import outcome_code
from cds_service.tools.errors import FhirServerError
from cds_service.tools.fhir_http import FhirEndpoint, outcome_text
from cds_service.tools.report_safe import printable
from fhir_mappers.valuesets import ValueSets

# A display or text that names a test the rules read, whatever its code says.
LOOKS_LIKE = re.compile(
    r"c[\s-]*reactive|\bh?s?-?crp\b|sedimentation|\besr\b|\bsed\s*rate|pain", re.IGNORECASE
)
# How many characters of each are shown (escaped: an escape counts as shown). A LOINC code
# is under 10, an Epic OID system under 60, a site's URL system rarely past 80.
MAX_DISPLAY = 80
MAX_SYSTEM = 120
MAX_CODE = 64


@dataclass
class CodeCount:
    """One (system, code) pair and how often it was seen."""

    system: str
    code: str
    display: str = ""
    count: int = 0
    read_as: str | None = None  # the kind the service reads it as, None: not read
    looks_like: bool = False  # its display or text names CRP, ESR or pain


@dataclass
class CodesSeen:
    observations: int = 0
    pages: int = 0
    cut_off: bool = False  # more pages than --pages
    codes: dict[tuple[str, str], CodeCount] = field(default_factory=dict)
    # Patients whose searches found no Observation: a wrong id or too narrow a token scope
    # reads the same as a patient without results, so none of them is all clear.
    without_observations: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # searched per category, if any
    warnings: list[str] = field(default_factory=list)  # searches that failed in part

    def ordered(self) -> list[CodeCount]:
        """Not read but looking like a test the rules read first, then by count."""
        return sorted(
            self.codes.values(),
            key=lambda c: (not (c.looks_like and c.read_as is None), -c.count, c.system, c.code),
        )


def count_codes(
    resources: Iterable[Any],
    value_sets: ValueSets,
    seen: CodesSeen,
    counted: set[str] | None = None,
) -> None:
    """Add the codings of ``resources`` (Observations as JSON) to ``seen``; one whose id is
    in ``counted`` (one patient's, across the searches of ``--category``) was counted
    already: an Observation in two categories is found by both searches."""
    for resource in resources:
        if not isinstance(resource, Mapping) or resource.get("resourceType") != "Observation":
            continue
        resource_id = resource.get("id")
        if counted is not None and isinstance(resource_id, str):
            if resource_id in counted:
                continue
            counted.add(resource_id)
        seen.observations += 1
        concept = resource.get("code")
        if not isinstance(concept, Mapping):
            continue
        text = _text(concept.get("text"))
        codings = concept.get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if not isinstance(coding, Mapping):
                continue
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or not isinstance(code, str):
                continue
            display = _text(coding.get("display"))
            entry = seen.codes.get((system, code))
            if entry is None:
                known = value_sets.observation_entry(system, code)
                entry = CodeCount(
                    system,
                    code,
                    (display or text)[: MAX_DISPLAY + 1],  # printable marks a cut
                    read_as=known.kind.value if known is not None else None,
                )
                seen.codes[(system, code)] = entry
            entry.count += 1
            entry.looks_like = entry.looks_like or bool(LOOKS_LIKE.search(f"{display} {text}"))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def observation_codes(
    endpoint: FhirEndpoint,
    patients: Iterable[str],
    value_sets: ValueSets,
    max_pages: int,
    categories: Sequence[str] = (),
) -> CodesSeen:
    """Every Observation of each patient, ``max_pages`` pages of 200 at most per search:
    one search per patient, or with ``categories`` one per patient and category, merged.

    Some servers refuse an Observation search by patient alone and want a code or a
    category with it (Epic's documentation reads that way; to be confirmed with the
    vendor): ``categories`` (``--category laboratory --category vital-signs``) is the way
    to search those, and a 400 to the search without one says so.

    FhirServerError when a search fails: a status other than 200, or a 200 that is no
    search Bundle or holds only an error OperationOutcome (the service's reading of such
    an answer, ``unwrap_bundle`` and ``failed_outright``: an outside review had both
    printed as 0 Observations and "no code left unread"); or when a next link leads off
    the FHIR server (as the service's fetcher, which fails the search there: stopping
    quietly would show the pages read as all there is). A patient with no Observation
    at all is named in ``without_observations``: a mistyped id, or a token whose scope
    does not cover them, reads the same, and neither is all clear."""
    seen = CodesSeen(categories=list(categories))
    for patient in patients:
        before = seen.observations
        counted: set[str] = set()
        for category in categories or (None,):
            search = _Search(patient, category)
            url = f"{endpoint.base}/Observation?{search.query}&_count={PAGE_SIZE}"
            for page in range(max_pages):
                found, link = _search_page(endpoint, url, search, seen)
                count_codes(found, value_sets, seen, counted)
                if link is None:
                    break
                following = urljoin(url, link)
                if not endpoint.within(following):
                    # The fetcher's rule (``FhirEndpoint.within``): a prefix test on the URL
                    # as written let ``/fhir/../admin`` through, and the token with it.
                    raise FhirServerError(
                        f"the {search.name} has a next link that leads away from the FHIR "
                        f"server at {endpoint.base} (another host, a path outside its base, "
                        "or not a plain URL): it was not followed, and no token was sent to it"
                    )
                if page == max_pages - 1:
                    seen.cut_off = True
                    break
                url = following
        if seen.observations == before:
            seen.without_observations.append(patient)
    return seen


PAGE_SIZE = 200
_SEARCH = QueryShape("Observation", is_search=True)
# What a refusal of the search by patient alone suggests: the categories that hold the
# results the service reads (CRP and ESR are laboratory; a pain score is a vital sign at
# some sites, a survey at others).
CATEGORY_HINT = (
    "some FHIR servers need a category (or a code) with the patient: try "
    "--category laboratory --category vital-signs"
)


@dataclass(frozen=True)
class _Search:
    """One search: a patient's Observations, of one category or of all."""

    patient: str
    category: str | None

    @property
    def query(self) -> str:
        query = f"patient={quote(self.patient, safe='')}"
        return query + (f"&category={quote(self.category, safe='')}" if self.category else "")

    @property
    def name(self) -> str:
        of = f" in category {self.category!r}" if self.category else ""
        return f"Observation search for patient {self.patient!r}{of}"


def _search_page(
    endpoint: FhirEndpoint, url: str, search: _Search, seen: CodesSeen
) -> tuple[list[Any], str | None]:
    """The resources of one page of a patient's Observation search, read as the service
    reads its own, and its next link; FhirServerError when the page says the search
    failed (with ``CATEGORY_HINT`` when a search without a category was refused)."""
    status, body = endpoint.get(url)
    failed = f"{search.name} failed"
    hint = "" if search.category else f"; {CATEGORY_HINT}"
    if status != 200:
        raise FhirServerError(
            f"{failed} ({status}): {outcome_text(body)}" + (hint if status == 400 else "")
        )
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        raise FhirServerError(
            f"{failed}: the FHIR server answered 200 with an OperationOutcome, not a search "
            f"Bundle{_issue_code(body)}: {outcome_text(body)}{hint}"
        )
    mismatch = shape_mismatch(body, _SEARCH, "the FHIR server answered 200 with")
    if mismatch is not None:
        raise FhirServerError(f"{failed}: {mismatch}")
    seen.pages += 1
    found, notes = unwrap_bundle("observations", body, "Observation")
    error = _error_outcome(body)
    said = f"{_issue_code(error)}: {outcome_text(error)}" if error is not None else ""
    if failed_outright(found, notes) is not None:
        raise FhirServerError(
            f"{failed}: the FHIR server answered 200 with a searchset holding only an "
            f"OperationOutcome of severity error or fatal{said}{hint}"
        )
    if any(note.failed for note in notes):
        seen.warnings.append(
            f"the {search.name} carried an OperationOutcome of severity error or fatal "
            f"beside its results{said}: it failed in part, so codes may be missing"
        )
    return found, next_link(body)


def _error_outcome(bundle: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first entry with an issue of severity error or fatal (the service's test of
    one, ``has_error``)."""
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, dict) and has_error(resource):
            return resource
    return None


def _issue_code(outcome: Mapping[str, Any]) -> str:
    """`` (issue code X)`` when the first issue's code is a FHIR issue type, the service's
    list (``outcome_code``); else nothing: a server's own word may be free text."""
    try:
        code = outcome_code(orjson.dumps(outcome))
    except TypeError:  # a value JSON cannot hold; none comes from a parsed answer
        code = None
    return f" (issue code {code})" if code else ""


def warnings(seen: CodesSeen) -> list[str]:
    """What stands between the list and an all clear: each patient with no Observation
    found, and each search that failed in part."""
    categories = ", ".join(seen.categories)
    where = f" in the categories searched ({categories})" if categories else ""
    check = "the categories, " if categories else ""
    return [
        *(
            f"no Observations found for patient {patient!r}{where}: check the id, "
            f"{check}or the token's scope (it must cover Observations)"
            for patient in seen.without_observations
        ),
        *seen.warnings,
    ]


def as_text(seen: CodesSeen) -> str:
    """The table a person reads; its last line says whether anything is left unread, and
    never that nothing is when a patient had no Observation or a search was cut short."""
    lines = [
        f"{seen.observations} Observations on {seen.pages} pages"
        + (" (more pages not read: raise --pages)" if seen.cut_off else "")
        + f"; {len(seen.codes)} codes.",
        "",
        "  count  read as   system|code  display",
    ]
    for c in seen.ordered():
        read = c.read_as or ("LOOK" if c.looks_like else "-")
        system, code, display = shown(c)
        lines.append(f"  {c.count:5d}  {read:8s}  {system}|{code}  {display}")
    missed = [c for c in seen.codes.values() if c.looks_like and c.read_as is None]
    lines.append("")
    lines.extend(f"Warning: {warning}" for warning in warnings(seen))
    caveats = [
        *(
            [f"{len(seen.without_observations)} patient(s) had none"]
            if seen.without_observations
            else []
        ),
        *(["a search failed in part"] if seen.warnings else []),
        *(["more pages were not read (raise --pages)"] if seen.cut_off else []),
    ]
    if missed:
        lines.append(
            f"{len(missed)} code(s) marked LOOK name CRP, ESR or pain but are not read: if they "
            "are these tests, add them to a site value set (valueset_dir), and send the EHR "
            "the new prefetch templates."
        )
    elif seen.observations == 0:
        lines.append("No Observation was found, so no code is known: this is not an all clear.")
    elif caveats:
        lines.append(
            "No code that names CRP, ESR or pain is left unread among the Observations read, "
            f"but this is not an all clear: {'; '.join(caveats)}."
        )
    else:
        lines.append("No code that names CRP, ESR or pain is left unread.")
    return "\n".join(lines)


def shown(c: CodeCount) -> tuple[str, str, str]:
    """System, code and display as they may be printed: escaped and cut."""
    return (
        printable(c.system, MAX_SYSTEM),
        printable(c.code, MAX_CODE),
        printable(c.display, MAX_DISPLAY),
    )


def as_json(seen: CodesSeen) -> dict[str, Any]:
    """The same as JSON; its text shown as the table shows it (``json.dumps`` would escape
    ESC and CR/LF, but not U+202E or the other format characters)."""
    codes = []
    for c in seen.ordered():
        system, code, display = shown(c)
        codes.append(
            {
                "system": system,
                "code": code,
                "display": display,
                "count": c.count,
                "readAs": c.read_as,
                "looksLike": c.looks_like,
            }
        )
    return {
        "observations": seen.observations,
        "pages": seen.pages,
        "cutOff": seen.cut_off,
        "categories": seen.categories,
        "patientsWithoutObservations": seen.without_observations,
        "warnings": warnings(seen),
        "codes": codes,
    }
