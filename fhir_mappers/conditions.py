"""Condition resources -> ConditionFact, classified by the conditions value set.

Only Conditions with a code in the value set matter to the rules (an NVO episode, a
neurologic deficit, a complication, a mimic, an out-of-scope infection), so by default
the others are dropped before the costly model validation; ``include_other=True`` keeps
them as category OTHER. Selected Conditions are validated with the fhir.resources R4B
model (those of the usual shape by a typed conversion the model would pass:
``usual_r4``). One that fails (an element R4 does not define, a ``note`` that is not a
list, a dateTime with a time but no zone) is reported and still read for what the rules
use: its code, statuses and dates, each checked on its own (``_unreadable``). Data the
service cannot read may only make the answer more cautious: an infection episode dropped
for a vendor's extra element gave ``{"cards": []}`` beside a new cauda equina syndrome.
Only when its code or a status cannot itself be read is the Condition skipped (a date
that cannot be read is left out, not the Condition), and then still kept when its code
is a red flag, a mimic or an exclusion (read for code, status and dates), because
losing those could only make the answer less cautious. A
``modifierExtension`` skips any other Condition whatever else it holds: FHIR forbids
reading a resource as if a modifier it does not understand were not there.

When one Condition carries codes of several categories, the most cautious reading wins
(OUT_OF_SCOPE, then the red flags, then the uncertain NVO forms, then NVO) and the
disagreement is reported: the safer error is no card, or a card that supports imaging.

Each fact carries the clinical name and the spinal region of the entries of the category it
is read as (clinical-rules.md, "What a card should say" and "Level of the infection and of
the order"): the name of the first such entry that has one; the region written in the value
set, else, for ICD-10-CM M46.2x-M46.5x, the one the code's fifth character gives. Codes that
give different regions are reported and leave the region unknown, unless one of them says
multiple sites.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.condition import Condition
from pydantic import ValidationError

from fhir_mappers.model import Coding, ConditionCategory, ConditionFact, DataIssue, When
from fhir_mappers.rawjson import codings, describe_error, modifier_extensions, reference
from fhir_mappers.timeutil import parse_fhir_time, zone_missing
from fhir_mappers.usual_r4 import usual_r4
from fhir_mappers.valuesets import (
    ICD10CM,
    ConditionEntry,
    ValueSets,
    canonical_system,
    normalize_code,
)

CLINICAL_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Categories that can only move the answer away from advise-against (no card, or support),
# in the order a code listed under several takes them: they rank first (``_PRIORITY``).
_CAUTIOUS_ORDER = (
    ConditionCategory.OUT_OF_SCOPE,
    ConditionCategory.NEURO_DEFICIT,
    ConditionCategory.COMPLICATION,
    ConditionCategory.MECHANICAL,
    ConditionCategory.MIMIC,
    ConditionCategory.IMMUNOSUPPRESSION,
    ConditionCategory.BACTERAEMIA,
    ConditionCategory.NVO_UNSPECIFIED,
)
CAUTIOUS = frozenset(_CAUTIOUS_ORDER)

# ICD-10-CM M46.2-M46.5 (osteomyelitis of vertebra, pyogenic disc infection, discitis, other
# infective spondylopathies): the fifth character is the site, as in the tabular list.
_M46_SITE_CATEGORIES = frozenset({"M462", "M463", "M464", "M465"})
_ICD10CM_SPINAL_SITES = {
    "0": None,  # site unspecified
    "1": "occipito-atlanto-axial",
    "2": "cervical",
    "3": "cervicothoracic",
    "4": "thoracic",
    "5": "thoracolumbar",
    "6": "lumbar",
    "7": "lumbosacral",
    "8": "sacral",  # sacral and sacrococcygeal region
    "9": "multiple",  # multiple sites in spine
}

_PRIORITY = (
    *_CAUTIOUS_ORDER,
    ConditionCategory.NVO_OTHER_INFECTIVE,
    ConditionCategory.NVO,
    ConditionCategory.SPINAL_PAIN,
)


def map_conditions(
    resources: Iterable[Any], vs: ValueSets, *, include_other: bool = False
) -> tuple[tuple[ConditionFact, ...], tuple[DataIssue, ...]]:
    """Map Condition dicts (Bundle entries already unwrapped); never raises on bad data."""
    facts: list[ConditionFact] = []
    issues: list[DataIssue] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            issues.append(DataIssue(f"#{index}", "not a JSON object: skipped"))
            continue
        ref = reference(resource, index)
        if resource.get("resourceType") != "Condition":
            issues.append(DataIssue(ref, "not a Condition: skipped"))
            continue
        all_codes = codings(resource.get("code"))
        matched = [
            (coding, entry)
            for coding in all_codes
            if (entry := vs.condition_entry(coding.system, coding.code))
        ]
        if not matched and not include_other:
            continue
        category = _category(ref, {entry.category for _, entry in matched}, issues)
        problem = _problem(resource)
        if problem is not None:
            issue = _kept_or_not(ref, resource, category, problem)
            issues.append(issue)
            if not issue.kept:
                continue
        codes = tuple(coding for coding, _ in matched) if matched else tuple(all_codes)
        read_as = [(coding, entry) for coding, entry in matched if entry.category is category]
        name = next((entry.name for _, entry in read_as if entry.name), None)
        region = _region(ref, read_as, issues)
        facts.append(_fact(ref, resource, category, codes, issues, name, region))
    return tuple(facts), tuple(issues)


def _kept_or_not(
    ref: str, resource: dict[str, Any], category: ConditionCategory, problem: str
) -> DataIssue:
    """The issue for a Condition the model would not read; ``kept`` when it is still read.

    A red flag, mimic or exclusion is always kept: skipping it could turn "support" into
    advise-against. Any other is kept unless it carries a modifier extension or an
    element the rules read cannot be read: an element they never read (an unknown one,
    a malformed ``note``) must not cost the clinician the episode, and with it every card.
    """
    if category in CAUTIOUS:
        return DataIssue(
            ref,
            f"{problem}; kept for its {category.value} code, read for code, status and dates only",
            kept=True,
        )
    if modifier_extensions(resource) is not None:
        return DataIssue(ref, f"{problem}: not used")
    unread = _unreadable(resource)
    if unread is not None:
        return DataIssue(ref, f"{problem}; {unread} cannot be read: not used")
    return DataIssue(ref, f"{problem}; read for its code, status and dates only", kept=True)


# The coded elements the rules read of a Condition (``_fact``).
_CONCEPTS = ("code", "clinicalStatus", "verificationStatus")

# The codes of the R4 status value sets (condition-clinical, condition-ver-status), which
# FHIR STU3 sent as a plain string ("clinicalStatus": "active"): such a string is read as
# its code, and said (``_status``), rather than the whole Condition left out.
_STATUS_CODES = {
    "clinicalStatus": frozenset(
        {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
    ),
    "verificationStatus": frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
    ),
}


def _unreadable(resource: dict[str, Any]) -> str | None:
    """The first coded element the rules read that is present but cannot be read, else
    None.

    A coded element whose codings are not objects with string systems and codes could
    hide the very code or status the rules look for (a "resolved" read as absent is
    "active"): such a Condition is not read in part. A date is another matter: one the
    parser refuses is left out and said (``_time``), as for a valid R4 Condition, and the
    Condition is read from its other dates, or as undated (the engine's cautious answer,
    "treatment start unknown", with its red flags still firing). A re-check of this change
    found the episode, and with it a critical cauda equina card, dropped for an
    ``onsetDateTime`` of "2026-11-10T07:00" (no seconds), or a ``recordedDate`` beside a
    readable onset.
    """
    for name in _CONCEPTS:
        value = resource.get(name)
        if isinstance(value, str) and value in _STATUS_CODES.get(name, ()):
            continue  # a status as FHIR STU3 sent it: read as its code
        if not _concept_readable(value):
            return name
    return None


def _concept_readable(concept: object) -> bool:
    if concept is None:
        return True
    if not isinstance(concept, dict):
        return False
    found = concept.get("coding")
    if found is None:
        return True
    if not isinstance(found, list):
        return False
    return all(
        isinstance(item, dict) and all(_text_or_absent(item.get(key)) for key in ("system", "code"))
        for item in found
    )


def _text_or_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and value != "")


def _problem(resource: dict[str, Any]) -> str | None:
    """Why the Condition cannot be read as the model reads it: not a valid R4 Condition,
    or a modifier extension, which FHIR forbids ignoring (``rawjson.modifier_extensions``)."""
    modifiers = modifier_extensions(resource)
    if modifiers is not None:
        return f"modifierExtension not understood ({modifiers})"
    try:
        if not usual_r4(resource):  # the usual shape is one the model accepts
            Condition.model_validate(resource)
    # AttributeError: fhir.resources' own, for a primitive extension ("_onsetDateTime")
    # that is a string of a JSON number: a malformed resource, not a crash
    except (ValidationError, ValueError, TypeError, AttributeError) as exc:
        return f"not a valid R4 Condition ({describe_error(exc)})"
    return None


def icd10cm_region(code: str) -> str | None:
    """The spinal region of an ICD-10-CM M46.2x-M46.5x code from its fifth character
    ("M46.26" and "M4626": lumbar); None for site unspecified (0) and for any other code."""
    key = normalize_code(ICD10CM, code)
    if len(key) != 5 or key[:4] not in _M46_SITE_CATEGORIES:
        return None
    return _ICD10CM_SPINAL_SITES.get(key[4])


def _region(
    ref: str, read_as: list[tuple[Coding, ConditionEntry]], issues: list[DataIssue]
) -> str | None:
    regions: list[str] = []
    for coding, entry in read_as:
        region = entry.region
        if region is None and canonical_system(coding.system) == ICD10CM:
            region = icd10cm_region(coding.code)
        if region is not None and region not in regions:
            regions.append(region)
    if len(regions) <= 1:
        return regions[0] if regions else None
    if "multiple" in regions:
        return "multiple"
    issues.append(
        DataIssue(
            ref, f"codes give different regions ({', '.join(regions)}): read as unknown", kept=True
        )
    )
    return None


def _category(
    ref: str, found: set[ConditionCategory], issues: list[DataIssue]
) -> ConditionCategory:
    if not found:
        return ConditionCategory.OTHER
    chosen = next(category for category in _PRIORITY if category in found)
    if len(found) > 1:
        names = ", ".join(sorted(category.value for category in found))
        issues.append(
            DataIssue(
                ref, f"codes of several categories ({names}); read as {chosen.value}", kept=True
            )
        )
    return chosen


def _fact(
    ref: str,
    resource: dict[str, Any],
    category: ConditionCategory,
    codes: tuple[Coding, ...],
    issues: list[DataIssue],
    name: str | None,
    region: str | None,
) -> ConditionFact:
    onset = _time(ref, "onsetDateTime", resource.get("onsetDateTime"), issues)
    if onset is None:
        onset = _time(ref, "onsetPeriod.start", _get(resource, "onsetPeriod", "start"), issues)
    abatement = _time(ref, "abatementDateTime", resource.get("abatementDateTime"), issues)
    if abatement is None:
        abatement = _time(
            ref, "abatementPeriod.start", _get(resource, "abatementPeriod", "start"), issues
        )
    if abatement is None:
        abatement = _time(
            ref, "abatementPeriod.end", _get(resource, "abatementPeriod", "end"), issues
        )
    abated = any(key.startswith("abatement") for key in resource)
    return ConditionFact(
        reference=ref,
        category=category,
        codes=codes,
        clinical_status=_status(ref, "clinicalStatus", resource, CLINICAL_STATUS_SYSTEM, issues),
        verification_status=_status(
            ref, "verificationStatus", resource, VERIFICATION_STATUS_SYSTEM, issues
        ),
        onset=onset,
        recorded=_time(ref, "recordedDate", resource.get("recordedDate"), issues),
        abatement=abatement,
        abatement_present=abated,
        name=name,
        region=region,
    )


def _status(
    ref: str, element: str, resource: dict[str, Any], system: str, issues: list[DataIssue]
) -> str | None:
    """The code from the status code system; a status coded otherwise is reported as absent.
    A known code sent as a plain string, as FHIR STU3 sends it, is read as that code."""
    concept = resource.get(element)
    if concept is None:
        return None
    if isinstance(concept, str) and concept in _STATUS_CODES[element]:
        issues.append(
            DataIssue(
                ref,
                f"{element} is the plain code {concept!r} (as FHIR STU3 sends it): read as "
                "that code",
                kept=True,
            )
        )
        return concept
    for coding in codings(concept):
        if coding.system == system:
            return coding.code
    issues.append(DataIssue(ref, f"{element} has no code from {system}: read as absent", kept=True))
    return None


def _time(ref: str, element: str, value: object, issues: list[DataIssue]) -> When | None:
    """The value read as every mapper reads a FHIR time (``parse_fhir_time``); a time
    without a zone is read too (its day as written) and said, since its hour is a guess."""
    if value is None:
        return None
    try:
        when = parse_fhir_time(value)
    except ValueError as exc:
        issues.append(DataIssue(ref, f"{element} not read: {exc}", kept=True))
        return None
    if isinstance(value, str) and zone_missing(value):
        issues.append(
            DataIssue(
                ref,
                f"{element} has a time but no time zone ({value!r}): read on the day "
                "written, the time as UTC",
                kept=True,
            )
        )
    return when


def _get(resource: dict[str, Any], element: str, key: str) -> object:
    value = resource.get(element)
    return value.get(key) if isinstance(value, dict) else None
