"""map_conditions: categories, statuses and dates the episode rules read."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import icd10cm_region, map_conditions
from fhir_mappers.model import ConditionCategory
from fhir_mappers.valuesets import build_value_sets

VS = load_value_sets()
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LOCAL = "http://example.org/local-problem-list"  # synthetic, in no value set


def condition(
    cid: str,
    code: str = "M46.26",
    system: str = ICD,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {
            "coding": [{"system": VERIFICATION, "code": verification}]
        }
    resource.update(extra)
    return resource


def test_an_active_confirmed_nvo_condition() -> None:
    facts, issues = map_conditions([condition("c1", onsetDateTime="2024-01-10")], VS)
    assert issues == ()
    (fact,) = facts
    assert fact.reference == "Condition/c1"
    assert fact.category is ConditionCategory.NVO
    assert [(c.system, c.code) for c in fact.codes] == [(ICD, "M46.26")]
    assert (fact.clinical_status, fact.verification_status) == ("active", "confirmed")
    assert fact.onset is not None and fact.onset.day == date(2024, 1, 10)
    assert fact.start == fact.onset
    assert (fact.recorded, fact.abatement, fact.abatement_present) == (None, None, False)


@pytest.mark.parametrize(
    ("code", "system", "category"),
    [
        ("M4626", ICD, ConditionCategory.NVO),
        ("203241002", SNOMED, ConditionCategory.NVO),
        ("M46.46", ICD, ConditionCategory.NVO_UNSPECIFIED),
        ("M46.56", ICD, ConditionCategory.NVO_OTHER_INFECTIVE),
        ("A18.01", ICD, ConditionCategory.OUT_OF_SCOPE),
        ("G83.4", ICD, ConditionCategory.NEURO_DEFICIT),
        ("G06.1", ICD, ConditionCategory.COMPLICATION),
        ("C79.51", ICD, ConditionCategory.MIMIC),
    ],
)
def test_category_from_the_value_set(code: str, system: str, category: ConditionCategory) -> None:
    facts, _ = map_conditions([condition("c", code, system)], VS)
    assert [f.category for f in facts] == [category]


def test_onset_period_start_then_recorded_date() -> None:
    by_period = condition("p", onsetPeriod={"start": "2024-02-01T08:00:00+01:00"})
    recorded_only = condition("r", recordedDate="2024-02-03")
    facts, issues = map_conditions([by_period, recorded_only], VS)
    assert issues == ()
    period_fact, recorded_fact = facts
    assert period_fact.onset is not None
    assert period_fact.onset.instant == datetime(2024, 2, 1, 7, tzinfo=UTC)
    assert recorded_fact.onset is None
    assert recorded_fact.recorded is not None and recorded_fact.start == recorded_fact.recorded
    assert recorded_fact.start.day == date(2024, 2, 3)


def test_onset_and_recorded_date_are_both_kept() -> None:
    facts, _ = map_conditions(
        [condition("c", onsetDateTime="2024-01-05", recordedDate="2024-01-07T10:00:00Z")], VS
    )
    fact = facts[0]
    assert fact.onset is not None and fact.recorded is not None
    assert (fact.onset.day, fact.recorded.day) == (date(2024, 1, 5), date(2024, 1, 7))
    assert fact.start == fact.onset


def test_partial_onset_is_its_first_day() -> None:
    facts, _ = map_conditions([condition("c", onsetDateTime="2024-02")], VS)
    onset = facts[0].onset
    assert onset is not None and (onset.day, onset.date_only) == (date(2024, 2, 1), True)


@pytest.mark.parametrize(
    ("abatement", "day"),
    [
        ({"abatementDateTime": "2024-05-01"}, date(2024, 5, 1)),
        ({"abatementPeriod": {"start": "2024-05-02", "end": "2024-05-09"}}, date(2024, 5, 2)),
        ({"abatementPeriod": {"end": "2024-05-09"}}, date(2024, 5, 9)),
        ({"abatementString": "spring"}, None),
        (
            {
                "abatementAge": {
                    "value": 50,
                    "unit": "a",
                    "system": "http://unitsofmeasure.org",
                    "code": "a",
                }
            },
            None,
        ),
    ],
)
def test_abatement_in_every_form_is_noticed(abatement: dict[str, Any], day: date | None) -> None:
    resolved = condition("c", clinical="resolved", **abatement)
    facts, issues = map_conditions([resolved], VS)
    assert issues == ()
    fact = facts[0]
    assert fact.abatement_present is True
    assert (fact.abatement.day if fact.abatement else None) == day
    assert fact.clinical_status == "resolved"


def test_missing_statuses_read_as_none() -> None:
    facts, issues = map_conditions([condition("c", clinical=None, verification=None)], VS)
    assert issues == ()
    assert (facts[0].clinical_status, facts[0].verification_status) == (None, None)


@pytest.mark.parametrize("code", ["refuted", "entered-in-error", "provisional", "differential"])
def test_verification_codes_are_passed_through(code: str) -> None:
    facts, _ = map_conditions([condition("c", verification=code)], VS)
    assert facts[0].verification_status == code


def test_a_status_without_the_standard_code_system_is_reported_and_read_as_absent() -> None:
    odd = condition("c", clinical=None)
    odd["clinicalStatus"] = {"coding": [{"system": LOCAL, "code": "active"}], "text": "Active"}
    facts, issues = map_conditions([odd], VS)
    assert facts[0].clinical_status is None
    assert [i.reference for i in issues] == ["Condition/c"]
    assert "clinicalStatus" in issues[0].reason


def test_conditions_outside_the_value_sets_are_left_out_unless_asked_for() -> None:
    other = condition("o", "X-1", LOCAL)
    facts, issues = map_conditions([other, condition("n")], VS)
    assert [f.reference for f in facts] == ["Condition/n"]
    assert issues == ()
    facts, _ = map_conditions([other, condition("n")], VS, include_other=True)
    assert [(f.reference, f.category) for f in facts] == [
        ("Condition/o", ConditionCategory.OTHER),
        ("Condition/n", ConditionCategory.NVO),
    ]
    assert [c.code for c in facts[0].codes] == ["X-1"]


def test_several_categories_on_one_condition_read_cautiously_and_reported() -> None:
    both = condition("c")
    both["code"]["coding"].append({"system": ICD, "code": "A18.01"})
    facts, issues = map_conditions([both], VS)
    assert facts[0].category is ConditionCategory.OUT_OF_SCOPE
    assert [c.code for c in facts[0].codes] == ["M46.26", "A18.01"]
    assert "several categories" in issues[0].reason


def test_non_conditions_and_invalid_conditions_are_reported_and_skipped() -> None:
    # not valid R4 for want of a subject, but every element the rules read is readable
    # (whose it is was settled before mapping: none is this patient's): read and said
    no_subject = condition("no-subject")
    del no_subject["subject"]
    bad_date = condition("bad-date", onsetDateTime="2024-13-45")
    resources: list[Any] = [
        {"resourceType": "Observation", "id": "o1"},
        {"resourceType": "OperationOutcome"},
        "junk",
        no_subject,
        bad_date,
        condition("good"),
    ]
    facts, issues = map_conditions(resources, VS)
    # a date that cannot be read is left out and said, not the Condition (a re-check: an
    # infection dropped so took a critical card with it)
    assert [f.reference for f in facts] == [
        "Condition/no-subject",
        "Condition/bad-date",
        "Condition/good",
    ]
    assert facts[1].onset is None
    assert [(i.reference, i.kept) for i in issues] == [
        ("Observation/o1", False),
        ("OperationOutcome/#1", False),
        ("#2", False),
        ("Condition/no-subject", True),
        ("Condition/bad-date", True),
        ("Condition/bad-date", True),
    ]
    assert "subject" in issues[3].reason
    assert issues[4].reason.startswith("not a valid R4 Condition (")
    assert issues[5].reason.startswith("onsetDateTime not read")


def test_a_date_time_without_offset_is_read_on_its_day_and_said() -> None:
    facts, issues = map_conditions([condition("c", onsetDateTime="2024-01-10T10:00:00")], VS)
    (fact,) = facts
    assert fact.onset is not None and fact.onset.day == date(2024, 1, 10)
    assert [i.reason.split(" (")[0] for i in issues] == [
        "not a valid R4 Condition",
        "onsetDateTime has a time but no time zone",
    ]


def test_example_e7_resolved_episode() -> None:
    resolved = condition("e7", clinical="resolved", onsetDateTime="2024-01-01")
    resolved["abatementDateTime"] = "2024-03-16"
    fact = map_conditions([resolved], VS)[0][0]
    assert fact.clinical_status == "resolved"
    assert fact.abatement is not None and fact.abatement.day == date(2024, 3, 16)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = [
    "resourceType",
    "id",
    "code",
    "clinicalStatus",
    "verificationStatus",
    "onsetDateTime",
    "onsetPeriod",
    "recordedDate",
    "abatementDateTime",
    "abatementPeriod",
    "subject",
]


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_odd_json_never_raises(field: str, value: Any) -> None:
    odd = copy.deepcopy(condition("c", onsetDateTime="2024-01-01"))
    odd[field] = value
    facts, issues = map_conditions([odd, value], VS)
    assert len(facts) <= 1
    assert all(i.reason for i in issues)


# --- clinical name and spinal region (clinical-rules.md, 2026-12-06) -------------------------

# ICD-10-CM's fifth character for M46.2x-M46.5x, written out from the rule in clinical-rules.md
# ("Level of the infection and of the order"), not from the mapper's table.
FIFTH_CHARACTER = {
    "0": None,  # site unspecified
    "1": "occipito-atlanto-axial",
    "2": "cervical",
    "3": "cervicothoracic",
    "4": "thoracic",
    "5": "thoracolumbar",
    "6": "lumbar",
    "7": "lumbosacral",
    "8": "sacral",  # sacral and sacrococcygeal
    "9": "multiple",  # multiple sites
}
M46_NAMES = {
    "M46.2": "osteomyelitis of the vertebra",
    "M46.3": "pyogenic disc infection",
    "M46.4": "discitis",
    "M46.5": "infective spondylopathy",
}
# M46.2x ends at M46.28 (the value set has no M46.29); M46.3x-M46.5x run to 9.
M46_CODES = [
    (f"{category}{fifth}", region, name)
    for category, name in M46_NAMES.items()
    for fifth, region in FIFTH_CHARACTER.items()
    if not (category == "M46.2" and fifth == "9")
]


def one(code: str, system: str = ICD, vs: Any = VS) -> Any:
    facts, issues = map_conditions([condition("c", code, system)], vs)
    assert issues == ()
    (fact,) = facts
    return fact


@pytest.mark.parametrize(("code", "region", "name"), M46_CODES)
def test_an_m46_code_takes_its_region_from_the_fifth_character(
    code: str, region: str | None, name: str
) -> None:
    fact = one(code)
    assert (fact.region, fact.name) == (region, name)


@pytest.mark.parametrize(("code", "region", "name"), M46_CODES)
def test_the_fifth_character_rule_reads_undotted_and_lower_case_codes(
    code: str, region: str | None, name: str
) -> None:
    assert one(code.replace(".", "")).region == region
    assert one(code.lower()).region == region


@pytest.mark.parametrize(
    ("code", "region"),
    [(f"M46{tail}", FIFTH_CHARACTER[tail[-1]]) for tail in (".26", "26", ".34", ".48", ".59")]
    + [
        ("M46.2", None),  # the category header: no fifth character
        ("M46.261", None),  # not an ICD-10-CM code: no site read from it
        ("M47.26", None),  # spondylosis: another category, the rule does not apply
        ("M48.56XA", None),  # collapsed vertebra: the rule is M46.2x-M46.5x only
        ("M4A.26", None),
    ],
)
def test_icd10cm_region_on_its_own(code: str, region: str | None) -> None:
    assert icd10cm_region(code) == region


def test_the_fifth_character_rule_is_for_icd10cm_only() -> None:
    site_system = "http://example.org/site-dx"
    vs = build_value_sets(
        [
            (
                "site.json",
                {
                    "valueSet": "conditions",
                    "source": "test",
                    "entries": [
                        {
                            "system": site_system,
                            "code": "M46.26",
                            "match": "exact",
                            "category": "nvo",
                            "verified": False,
                        }
                    ],
                },
            )
        ]
    )
    assert one("M46.26", site_system, vs).region is None


@pytest.mark.parametrize(
    ("code", "region", "name"),
    [
        ("203157008", "cervical", "acute osteomyelitis of the vertebra"),
        ("203158003", "thoracic", "acute osteomyelitis of the vertebra"),
        ("203159006", "lumbar", "acute osteomyelitis of the vertebra"),
        ("203193005", "cervical", "chronic osteomyelitis of the vertebra"),
        ("203194004", "thoracic", "chronic osteomyelitis of the vertebra"),
        ("203195003", "lumbar", "chronic osteomyelitis of the vertebra"),
        ("203296008", "cervical", "subacute osteomyelitis of the vertebra"),
        ("203297004", "thoracic", "subacute osteomyelitis of the vertebra"),
        ("203298009", "lumbar", "subacute osteomyelitis of the vertebra"),
        ("203241002", None, "osteomyelitis of the vertebra"),
        ("202756004", None, "pyogenic disc infection"),
        ("203263006", "cervical", "tuberculous spondylitis"),
        ("203265004", "lumbar", "tuberculous spondylitis"),
    ],
)
def test_snomed_regional_concepts_carry_their_region(
    code: str, region: str | None, name: str
) -> None:
    fact = one(code, SNOMED)
    assert (fact.region, fact.name) == (region, name)


@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("G83.4", ICD),
        ("G834", ICD),
        ("192970008", SNOMED),
        ("12454008", SNOMED),
        ("8663007", SNOMED),
        ("782388003", SNOMED),
    ],
)
def test_cauda_equina_syndrome_is_lumbosacral(code: str, system: str) -> None:
    fact = one(code, system)
    assert fact.category is ConditionCategory.NEURO_DEFICIT
    assert (fact.name, fact.region) == ("cauda equina syndrome", "lumbosacral")


@pytest.mark.parametrize(
    ("code", "system", "name", "region"),
    [
        ("G82.20", ICD, "paraplegia", "thoracic"),
        ("G82.54", ICD, "quadriplegia", "cervical"),
        ("60389000", SNOMED, "paraplegia", "thoracic"),
        ("11538006", SNOMED, "quadriplegia", "cervical"),
    ],
)
def test_paraplegia_and_quadriplegia_carry_the_level_they_imply(
    code: str, system: str, name: str, region: str
) -> None:
    """A quadriplegia's lesion is cervical, a paraplegia's thoracic or above (a clinical
    refinement of "deficits without a level take the episode's level")."""
    fact = one(code, system)
    assert (fact.name, fact.region) == (name, region)


@pytest.mark.parametrize(
    ("code", "system", "name"),
    [
        ("G95.89", ICD, "spinal cord disease"),
        ("71286001", SNOMED, "compression of the spinal cord"),
    ],
)
def test_a_deficit_without_a_level_has_its_name_and_no_region(
    code: str, system: str, name: str
) -> None:
    fact = one(code, system)
    assert (fact.name, fact.region) == (name, None)


def test_an_explicit_region_in_the_file_wins_over_the_fifth_character() -> None:
    vs = build_value_sets(
        [
            (
                "site.json",
                {
                    "valueSet": "conditions",
                    "source": "test",
                    "entries": [
                        {
                            "system": ICD,
                            "code": "M46.2",
                            "match": "prefix",
                            "category": "nvo",
                            "region": "thoracic",
                            "verified": False,
                        }
                    ],
                },
            )
        ]
    )
    fact = one("M46.26", vs=vs)
    assert (fact.region, fact.name) == ("thoracic", None)


def test_a_site_files_name_and_region_reach_the_fact(tmp_path: Path) -> None:
    site_system = "http://example.org/site-dx"
    (tmp_path / "site-conditions.json").write_text(
        json.dumps(
            {
                "valueSet": "conditions",
                "source": "site list (test)",
                "entries": [
                    {
                        "system": site_system,
                        "code": "SEA-T",
                        "match": "exact",
                        "category": "complication",
                        "name": "spinal epidural abscess",
                        "region": "thoracic",
                        "verified": False,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    fact = one("SEA-T", site_system, load_value_sets(tmp_path))
    assert fact.category is ConditionCategory.COMPLICATION
    assert (fact.name, fact.region) == ("spinal epidural abscess", "thoracic")


def with_codes(*codes: tuple[str, str]) -> dict[str, Any]:
    resource = condition("c")
    resource["code"]["coding"] = [{"system": system, "code": code} for system, code in codes]
    return resource


def test_a_region_from_one_code_and_a_name_from_the_first() -> None:
    facts, issues = map_conditions([with_codes((SNOMED, "203241002"), (ICD, "M46.24"))], VS)
    assert issues == ()
    assert (facts[0].name, facts[0].region) == ("osteomyelitis of the vertebra", "thoracic")


def test_agreeing_codes_give_one_region() -> None:
    facts, issues = map_conditions([with_codes((ICD, "M46.26"), (SNOMED, "203159006"))], VS)
    assert issues == ()
    assert facts[0].region == "lumbar"


def test_codes_that_disagree_on_the_region_leave_it_unknown_and_say_so() -> None:
    facts, issues = map_conditions([with_codes((ICD, "M46.24"), (SNOMED, "203159006"))], VS)
    assert facts[0].region is None
    assert facts[0].name == "osteomyelitis of the vertebra"
    (issue,) = issues
    assert issue.reference == "Condition/c"
    assert issue.reason == "codes give different regions (thoracic, lumbar): read as unknown"


def test_multiple_sites_covers_a_single_region_beside_it() -> None:
    facts, issues = map_conditions([with_codes((ICD, "M46.39"), (SNOMED, "203159006"))], VS)
    assert issues == ()
    assert facts[0].region == "multiple"


def test_name_and_region_come_from_the_category_the_condition_is_read_as() -> None:
    """Tuberculosis beside a lumbar pyogenic code is read as out of scope: its name, and
    no region borrowed from the NVO code."""
    facts, issues = map_conditions([with_codes((ICD, "M46.26"), (ICD, "A18.01"))], VS)
    assert facts[0].category is ConditionCategory.OUT_OF_SCOPE
    assert (facts[0].name, facts[0].region) == ("tuberculous spondylitis", None)
    assert [i.reason for i in issues] == [
        "codes of several categories (nvo, out-of-scope); read as out-of-scope"
    ]


def test_a_condition_outside_the_value_sets_has_no_name_or_region() -> None:
    facts, _ = map_conditions([condition("o", "M46.26", LOCAL)], VS, include_other=True)
    assert facts[0].category is ConditionCategory.OTHER
    assert (facts[0].name, facts[0].region) == (None, None)


def test_a_kept_invalid_red_flag_still_has_its_name_and_region() -> None:
    broken = condition("c", "G83.4")
    del broken["subject"]
    facts, issues = map_conditions([broken], VS)
    assert "kept for its neuro-deficit code" in issues[0].reason
    assert (facts[0].name, facts[0].region) == ("cauda equina syndrome", "lumbosacral")
