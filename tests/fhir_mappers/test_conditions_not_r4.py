"""A Condition that is not valid R4 is still read for what the rules read.

An outside integration review sent the infection Condition (M46.26) with one element
that is not R4: an element R4 does not define, ``note`` as a string, an onset with a
time but no zone. Each dropped the episode, and with it every card: ``{"cards": []}``
beside a new cauda equina syndrome. Data the service cannot read may only make the
answer more cautious (prefetch.md), so such a Condition is read from its code,
statuses and dates, and the audit still says it was not valid R4. Only an element the
rules read that cannot itself be read skips it (a red flag, mimic or exclusion is kept
even then).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionCategory, ConditionFact, DataIssue
from fhir_mappers.timeutil import zone_missing
from tests.fhir_mappers.test_conditions import condition

VS = load_value_sets()
ONSET = "2026-11-08T07:00:00-05:00"

DEFECTS: dict[str, dict[str, Any]] = {
    "unknown-element": {"vendorFlag": True},
    "note-as-string": {"note": "see chart"},
    "onset-without-zone": {"onsetDateTime": ONSET[:19]},
}


def _read(resource: dict[str, Any]) -> tuple[ConditionFact, tuple[DataIssue, ...]]:
    facts, issues = map_conditions([resource], VS, include_other=True)
    (fact,) = facts
    return fact, issues


@pytest.mark.parametrize("defect", DEFECTS.values(), ids=DEFECTS.keys())
def test_an_infection_with_one_element_not_r4_is_read_as_the_episode(
    defect: dict[str, Any],
) -> None:
    fact, issues = _read(condition("nvo", **{"onsetDateTime": ONSET, **defect}))
    assert fact.category is ConditionCategory.NVO
    assert (fact.clinical_status, fact.verification_status) == ("active", "confirmed")
    assert fact.onset is not None and fact.onset.day == date(2026, 11, 8)
    assert fact.region == "lumbar"
    first = issues[0]
    assert first.reason.startswith("not a valid R4 Condition (")
    assert first.reason.endswith("; read for its code, status and dates only")
    # read and used: the card does not count it among the records not used
    assert first.kept and all(issue.kept for issue in issues)


def test_all_three_at_once_still_give_the_episode_and_each_is_in_the_audit() -> None:
    every = {key: value for defect in DEFECTS.values() for key, value in defect.items()}
    fact, issues = _read(condition("nvo", **every))
    assert fact.category is ConditionCategory.NVO and fact.onset is not None
    assert "(3 error(s))" in issues[0].reason


def test_a_time_without_a_zone_is_read_on_its_day_and_the_missing_zone_said() -> None:
    fact, issues = _read(condition("nvo", onsetDateTime="2026-11-08T23:30:00"))
    assert fact.onset is not None
    assert (fact.onset.day, fact.onset.date_only) == (date(2026, 11, 8), False)
    assert issues[1] == DataIssue(
        "Condition/nvo",
        "onsetDateTime has a time but no time zone ('2026-11-08T23:30:00'): read on the day "
        "written, the time as UTC",
        kept=True,
    )


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("2026-11-08T07:00:00", True),
        ("2026-11-08T07:00:00.125", True),
        ("2026-11-08T07:00:00Z", False),
        ("2026-11-08T07:00:00-05:00", False),
        ("2026-11-08", False),
        ("2026-11", False),
        ("soon", False),
    ],
)
def test_zone_missing_is_only_a_time_without_an_offset(text: str, missing: bool) -> None:
    assert zone_missing(text) is missing


# An element the rules read that cannot be read: (what to change, the element named).
UNREADABLE: dict[str, tuple[dict[str, Any], str]] = {
    "code-a-string": ({"code": "M46.26"}, "code"),
    "coding-an-object": (
        {"code": {"coding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M46.26"}}},
        "code",
    ),
    "status-an-unknown-string": ({"clinicalStatus": "gone"}, "clinicalStatus"),
    "status-code-a-number": (
        {
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": 7,
                    }
                ]
            }
        },
        "verificationStatus",
    ),
}


@pytest.mark.parametrize(("change", "element"), UNREADABLE.values(), ids=list(UNREADABLE.keys()))
def test_an_infection_whose_read_element_cannot_be_read_is_skipped_and_said(
    change: dict[str, Any], element: str
) -> None:
    # what the rules read is unreadable: a "resolved" read as absent would be "active"
    resource = condition("nvo", vendorFlag=True)
    resource.update(change)  # "code" too, which condition() takes as the code's value
    facts, issues = map_conditions([resource], VS, include_other=True)
    assert facts == ()
    (issue,) = issues
    assert issue.reference == "Condition/nvo" and not issue.kept
    assert issue.reason.startswith("not a valid R4 Condition (")
    assert issue.reason.endswith(f"; {element} cannot be read: not used")


@pytest.mark.parametrize(
    "stamp", ["2026-11-10T07:00", "2026-11-10 07:00:00-05:00", "20261110", "last week"]
)
def test_an_infection_whose_onset_cannot_be_read_is_read_from_its_other_dates(stamp: str) -> None:
    # a re-check of this change: the episode, and with it a critical card beside a new
    # cauda equina syndrome, was dropped for an onset without seconds; a date is left out
    # and said, as for a valid R4 Condition, never the whole Condition
    resource = condition("nvo", vendorFlag=True, onsetDateTime=stamp)
    resource["recordedDate"] = "2026-11-12"
    (fact,), issues = map_conditions([resource], VS, include_other=True)
    assert fact.category is ConditionCategory.NVO
    assert fact.onset is None and fact.recorded is not None
    assert fact.recorded.day == date(2026, 11, 12)
    assert any(i.reason.startswith("onsetDateTime not read") for i in issues)


def test_an_infection_with_no_readable_date_is_kept_undated() -> None:
    resource = condition("nvo", vendorFlag=True, onsetDateTime="soon")
    resource["abatementPeriod"] = "2026-11-30"
    (fact,), _ = map_conditions([resource], VS, include_other=True)
    assert fact.category is ConditionCategory.NVO and fact.start is None


@pytest.mark.parametrize(
    ("clinical", "verification"),
    [("active", "confirmed"), ("resolved", "confirmed"), ("active", "entered-in-error")],
)
def test_a_status_sent_as_a_plain_code_is_read_as_that_code(
    clinical: str, verification: str
) -> None:
    # FHIR STU3 sends a Condition's statuses as plain codes: an infection so sent was left
    # out (its status unreadable), and with it every card
    resource = condition("nvo")
    resource["clinicalStatus"] = clinical
    resource["verificationStatus"] = verification
    (fact,), issues = map_conditions([resource], VS, include_other=True)
    assert (fact.clinical_status, fact.verification_status) == (clinical, verification)
    said = [i.reason for i in issues if "plain code" in i.reason]
    assert len(said) == 2 and all(i.kept for i in issues)
