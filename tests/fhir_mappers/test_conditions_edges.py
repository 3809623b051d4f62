"""map_conditions: what the audit shows for each Condition it could not fully read.

Every DataIssue names the resource it is about (``reference``) and says what was wrong
(``reason``): the audit record and the support team read exactly these, so a lost
reference or a wrong element name is a defect. Written from conditions.py's contract:

- a date element that cannot be read (onsetDateTime, onsetPeriod.start, recordedDate,
  abatementDateTime, abatementPeriod.start/.end) is reported under its own name and the
  Condition is kept without that date;
- a red flag, mimic or exclusion that fails the R4 parse is kept and the issue says why
  it failed and why it was kept; any other Condition that fails it is read too, unless
  an element the rules read cannot be read (test_conditions_not_r4.py);
- a status coded outside its standard code system is reported and read as absent;
- several categories on one Condition: the issue lists them and the one chosen;
- only the codings the value set recognises are kept on the fact.

A time with ten fractional digits passes the R4 model's pattern but not the service's
date parser (at most nine, as FHIR R4 says), so it reaches the mapper's own date reading
even on a Condition that is not a red flag.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionCategory, DataIssue

VS = load_value_sets()
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LOCAL = "http://example.org/local-problem-list"  # synthetic, in no value set
TEN_DIGITS = "2024-03-04T10:00:00.1234567890Z"  # R4B's pattern takes it, FHIR R4 does not


def condition(cid: str, code: str = "M46.26", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": ICD, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    resource.update(extra)
    return resource


def _with(value: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("onsetDateTime", {"onsetDateTime": value}),
        ("onsetPeriod.start", {"onsetPeriod": {"start": value}}),
        ("recordedDate", {"recordedDate": value}),
        ("abatementDateTime", {"abatementDateTime": value}),
        ("abatementPeriod.start", {"abatementPeriod": {"start": value}}),
        ("abatementPeriod.end", {"abatementPeriod": {"end": value}}),
    ]


DATE_ELEMENTS = _with(TEN_DIGITS)
NOT_DATES = _with("soon")


@pytest.mark.parametrize(("element", "extra"), DATE_ELEMENTS, ids=[e for e, _ in DATE_ELEMENTS])
def test_an_unreadable_date_is_reported_under_its_element_and_left_out(
    element: str, extra: dict[str, Any]
) -> None:
    facts, issues = map_conditions([condition("c1", **extra)], VS)
    assert issues == (
        DataIssue(
            "Condition/c1", f"{element} not read: not a FHIR date/time: {TEN_DIGITS!r}", kept=True
        ),
    )
    (fact,) = facts
    assert (fact.onset, fact.recorded, fact.abatement) == (None, None, None)
    assert fact.abatement_present is element.startswith("abatement")


@pytest.mark.parametrize(("element", "extra"), NOT_DATES, ids=[e for e, _ in NOT_DATES])
def test_a_red_flag_with_an_invalid_date_is_kept_and_both_problems_are_reported(
    element: str, extra: dict[str, Any]
) -> None:
    facts, issues = map_conditions([condition("flag", "G83.4", **extra)], VS)
    assert [f.category for f in facts] == [ConditionCategory.NEURO_DEFICIT]
    kept, unread = issues
    assert kept.reference == "Condition/flag"
    assert kept.reason.startswith(f"not a valid R4 Condition ({element}: ")
    assert kept.reason.endswith(
        "); kept for its neuro-deficit code, read for code, status and dates only"
    )
    assert unread == DataIssue(
        "Condition/flag", f"{element} not read: not a FHIR date/time: 'soon'", kept=True
    )
    assert kept.kept  # both used: the card does not count them among what was not used


@pytest.mark.parametrize(
    ("element", "system"),
    [("clinicalStatus", CLINICAL), ("verificationStatus", VERIFICATION)],
)
def test_a_status_from_another_code_system_is_reported_by_element(
    element: str, system: str
) -> None:
    odd = condition("s")
    odd[element] = {"coding": [{"system": LOCAL, "code": "active"}]}
    facts, issues = map_conditions([odd], VS)
    assert issues == (
        DataIssue("Condition/s", f"{element} has no code from {system}: read as absent", kept=True),
    )
    assert (facts[0].clinical_status, facts[0].verification_status) == (None, None)


def test_several_categories_are_listed_with_the_one_chosen() -> None:
    both = condition("c")
    both["code"]["coding"] += [
        {"system": ICD, "code": "A18.01"},
        {"system": ICD, "code": "G06.1"},
    ]
    facts, issues = map_conditions([both], VS)
    assert facts[0].category is ConditionCategory.OUT_OF_SCOPE
    assert issues == (
        DataIssue(
            "Condition/c",
            "codes of several categories (complication, nvo, out-of-scope); read as out-of-scope",
            kept=True,
        ),
    )


def test_only_the_codings_of_the_value_set_are_kept() -> None:
    # The local coding (with its own display) is not what the rules matched on.
    mixed = condition("c")
    mixed["code"]["coding"].insert(
        0, {"system": LOCAL, "code": "SPONDY", "display": "Spondylodiscitis (local)"}
    )
    facts, _ = map_conditions([mixed], VS)
    assert [(c.system, c.code) for c in facts[0].codes] == [(ICD, "M46.26")]


def test_what_is_not_a_condition_is_reported_in_words() -> None:
    facts, issues = map_conditions([["a", "list"], {"resourceType": "Observation", "id": "o1"}], VS)
    assert facts == ()
    assert issues == (
        DataIssue("#0", "not a JSON object: skipped"),
        DataIssue("Observation/o1", "not a Condition: skipped"),
    )


def test_a_primitive_extension_that_breaks_the_model_is_reported_not_a_crash() -> None:
    # fhir.resources raises AttributeError (not a ValidationError) for "_onsetDateTime"
    # holding a string of a JSON number: said, and, as the rules never read that element,
    # the Condition is read for what they do read, as any other invalid one
    odd = condition("c", _onsetDateTime="0")
    facts, issues = map_conditions([odd], VS)
    assert [f.reference for f in facts] == ["Condition/c"]
    (issue,) = issues
    assert issue.reference == "Condition/c" and issue.kept
    assert issue.reason.startswith("not a valid R4 Condition")
