"""What the audit and the card see of each Observation: the Coding that identified a value,
and for each one skipped, the DataIssue (reference, reason, kind, plain words).

The reason is the audit's explanation of a skipped value ("Reading the data" in
clinical-rules.md: a value without a usable number, or in a unit that cannot be
converted, "is skipped and reported"); ``plain`` is what a card says of it. The
references name the resource as the request gave it ("Type/id", or "Type/#position").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Coding, DataIssue, MeasurementKind, When
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.rawjson import codings, describe_error, reference

VS = load_value_sets()
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DEFAULT = MappingOptions()
USUAL_TIME = "2024-01-10T08:30:00+01:00"  # seconds and an offset: the usual shape

NO_VALUE = "without a usable value"
NO_DATE = "without a usable date"
BAD_UNIT = "in a unit that could not be converted"

CRP = (LOINC, "1988-5", "C reactive protein [Mass/volume] in Serum or Plasma")
HS_CRP = (LOINC, "30522-7", "C reactive protein by high sensitivity method")
ESR = (LOINC, "4537-7", "Erythrocyte sedimentation rate by Westergren method")
PAIN = (LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")


def observation(
    oid: str = "o1", coding: tuple[str, str, str] = CRP, **elements: Any
) -> dict[str, Any]:
    system, code, display = coding
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "effectiveDateTime": USUAL_TIME,
        "valueQuantity": {"value": 12, "unit": "mg/L", "system": UCUM, "code": "mg/L"},
    }
    resource.update(elements)
    return {key: value for key, value in resource.items() if value is not None}


def issue_of(resource: object, options: MappingOptions = DEFAULT) -> DataIssue:
    measurements, issues = map_observations([resource], VS, options)
    assert measurements == ()
    (issue,) = issues
    return issue


def why(issue: DataIssue) -> DataIssue:
    """The issue's reference, reason, kind and plain words (what it holds is tested below)."""
    return DataIssue(issue.reference, issue.reason, issue.kind, issue.plain)


# --- the Coding that identified a measurement ----------------------------------------------


@pytest.mark.parametrize(
    ("coding", "quantity", "integer", "kind"),
    [
        (CRP, {"value": 12, "unit": "mg/L", "system": UCUM, "code": "mg/L"}, None, "crp"),
        (HS_CRP, {"value": 1.5, "unit": "mg/L", "system": UCUM, "code": "mg/L"}, None, "crp"),
        (ESR, {"value": 40, "unit": "mm/h", "system": UCUM, "code": "mm/h"}, None, "esr"),
        (PAIN, {"value": 6, "unit": "{score}", "system": UCUM, "code": "{score}"}, None, "pain"),
        (PAIN, None, 6, "pain"),
    ],
)
def test_a_usual_observation_keeps_the_coding_that_identified_it(
    coding: tuple[str, str, str], quantity: dict[str, Any] | None, integer: int | None, kind: str
) -> None:
    resource = observation(coding=coding, valueQuantity=quantity, valueInteger=integer)
    (m,), issues = map_observations([resource], VS, DEFAULT)
    assert issues == ()
    assert m.kind is MeasurementKind(kind)
    assert m.code == Coding(*coding)
    assert (m.code.system, m.code.code, m.code.display) == coding


def test_the_coding_read_is_the_first_usable_one_after_malformed_ones() -> None:
    # A coding that is not an object, then one whose system is not a string, then CRP.
    system, code, display = CRP
    concept = {
        "coding": [
            "1988-5",
            {"system": ["not", "a", "string"], "code": code},
            {"system": system, "code": code, "display": display},
        ]
    }
    (m,), issues = map_observations([observation(code=concept)], VS, DEFAULT)
    assert issues == ()
    assert m.code == Coding(*CRP)


def test_a_display_that_is_not_a_string_is_left_out() -> None:
    system, code, _ = CRP
    concept = {"coding": [{"system": system, "code": code, "display": 1988}]}
    (m,), _ = map_observations([observation(code=concept)], VS, DEFAULT)
    assert m.code == Coding(system, code, None)


# --- resources that are not Observations ---------------------------------------------------


def test_a_resource_that_is_not_an_object_is_reported_by_position_and_the_rest_read() -> None:
    measurements, issues = map_observations(["Observation/o1", observation("o2")], VS, DEFAULT)
    assert issues == (DataIssue("#0", "not a JSON object: skipped"),)
    assert [m.reference for m in measurements] == ["Observation/o2"]


def test_a_resource_that_is_not_an_observation_is_reported_and_the_rest_read() -> None:
    patient = {"resourceType": "Patient"}
    measurements, issues = map_observations([observation("o1"), patient], VS, DEFAULT)
    assert issues == (DataIssue("Patient/#1", "not an Observation: skipped"),)
    assert [m.reference for m in measurements] == ["Observation/o1"]


# --- each reason an Observation is skipped -------------------------------------------------


@pytest.mark.parametrize(
    ("elements", "reason", "plain"),
    [
        ({"status": None}, "status missing or not a string: skipped", "without a result status"),
        ({"status": 1}, "status missing or not a string: skipped", "without a result status"),
        (
            {"valueQuantity": {"unit": "mg/L", "code": "mg/L"}},
            "valueQuantity.value is missing or not a number: skipped",
            NO_VALUE,
        ),
        (
            {"valueQuantity": {"value": float("inf"), "code": "mg/L"}},
            "valueQuantity.value is not finite: skipped",
            NO_VALUE,
        ),
        ({"valueQuantity": [12, "mg/L"]}, "valueQuantity is not an object: skipped", NO_VALUE),
        ({"valueQuantity": None}, "no value: skipped", NO_VALUE),
        (
            {"valueQuantity": None, "dataAbsentReason": {"text": "not done"}},
            "no value (dataAbsentReason given): skipped",
            NO_VALUE,
        ),
        (
            {"valueQuantity": {"value": 12, "code": 7}},
            "valueQuantity.code is not a string: skipped",
            BAD_UNIT,
        ),
        (
            {"valueQuantity": {"value": 12, "unit": 7}},
            "valueQuantity.unit is not a string: skipped",
            BAD_UNIT,
        ),
        (
            {"valueQuantity": {"value": 12, "code": "mg/x"}},
            "CRP unit 'mg/x' cannot be converted to mg/L: skipped",
            BAD_UNIT,
        ),
        (
            {"valueQuantity": {"value": 12, "unit": "mg/x"}},
            "CRP unit 'mg/x' cannot be converted to mg/L: skipped",
            BAD_UNIT,
        ),
        (
            {"effectiveDateTime": None, "effectivePeriod": "2024-01-10"},
            "effectivePeriod is not an object: skipped",
            NO_DATE,
        ),
        (
            {"effectiveDateTime": None, "effectivePeriod": {"start": "10/01/2024"}},
            "effectivePeriod.start not read (not a FHIR date/time: '10/01/2024'): skipped",
            NO_DATE,
        ),
        (
            {"effectiveDateTime": None, "effectiveInstant": "10/01/2024"},
            "effectiveInstant not read (not a FHIR date/time: '10/01/2024'): skipped",
            NO_DATE,
        ),
        (
            {"effectiveDateTime": "2024-02-30"},
            "effectiveDateTime not read (not a FHIR date/time: '2024-02-30' "
            "(day is out of range for month)): skipped",
            NO_DATE,
        ),
    ],
)
def test_a_crp_skipped_is_reported_with_its_reason(
    elements: dict[str, Any], reason: str, plain: str
) -> None:
    issue = issue_of(observation("o1", **elements))
    assert why(issue) == DataIssue("Observation/o1", reason, "crp", plain)


@pytest.mark.parametrize(
    ("coding", "elements", "reason", "kind", "plain"),
    [
        (
            CRP,
            {"status": "entered-in-error"},
            "status entered-in-error: ignored",
            "crp",
            "marked entered-in-error",
        ),
        (CRP, {"status": "cancelled"}, "status cancelled: ignored", "crp", "marked cancelled"),
        (
            CRP,
            {"status": "preliminary"},
            "status preliminary: ignored",
            "crp",
            "not final (status preliminary)",
        ),
        (
            (LOINC, "11039-5", "C reactive protein [Presence]"),
            {},
            "11039-5 is not read by the rules: ignored",
            None,
            "not a test the rules read",
        ),
        (
            CRP,
            {"valueQuantity": {"value": -1, "code": "mg/L"}},
            "negative crp value: skipped",
            "crp",
            "with a negative value",
        ),
        (
            CRP,
            {"valueQuantity": {"value": 12, "code": "mg/x", "unit": "mgs"}},
            "CRP unit 'mg/x' / 'mgs' cannot be converted to mg/L: skipped",
            "crp",
            BAD_UNIT,
        ),
        (
            CRP,
            {"valueQuantity": {"value": 12}},
            "CRP unit (none) cannot be converted to mg/L: skipped",
            "crp",
            BAD_UNIT,
        ),
        (
            CRP,
            {"valueQuantity": {"value": 12, "code": "mg/L", "comparator": "~"}},
            "valueQuantity.comparator '~' is not one of < <= >= >: skipped",
            "crp",
            NO_VALUE,
        ),
        (
            CRP,
            {"valueQuantity": None, "valueString": "12 mg/L"},
            "valueString is not a usable number (valueQuantity expected): skipped",
            "crp",
            NO_VALUE,
        ),
        (
            CRP,
            {"effectiveDateTime": None},
            "no effectiveDateTime, effectivePeriod.start or issued: skipped",
            "crp",
            NO_DATE,
        ),
        (
            ESR,
            {"valueQuantity": {"value": 40, "code": "mg/L"}},
            "ESR unit 'mg/L' is not mm/h: skipped",
            "esr",
            BAD_UNIT,
        ),
        (
            PAIN,
            {"valueQuantity": None, "valueInteger": 11},
            "pain score 11 outside 0-10: skipped",
            "pain",
            "outside the 0-10 scale",
        ),
        (
            PAIN,
            {"valueQuantity": None, "valueString": "7"},
            "valueString is not a usable number (valueQuantity or valueInteger expected): skipped",
            "pain",
            NO_VALUE,
        ),
    ],
)
def test_an_observation_skipped_is_reported_with_its_reason_and_plain_words(
    coding: tuple[str, str, str],
    elements: dict[str, Any],
    reason: str,
    kind: str | None,
    plain: str,
) -> None:
    issue = issue_of(observation("o1", coding, **elements))
    assert why(issue) == DataIssue("Observation/o1", reason, kind, plain)


def test_molar_crp_in_another_unit_is_reported() -> None:
    options = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
    resource = observation(
        "m1",
        (LOINC, "76485-2", "C reactive protein [Moles/volume]"),
        valueQuantity={"value": 2, "code": "mg/L"},
    )
    assert why(issue_of(resource, options)) == DataIssue(
        "Observation/m1", "molar CRP unit 'mg/L' is not nmol/L: skipped", "crp", BAD_UNIT
    )


def test_a_pain_score_keeps_its_comparator() -> None:
    quantity = {"value": 2, "comparator": "<", "unit": "{score}", "code": "{score}"}
    (m,), issues = map_observations([observation("p1", PAIN, valueQuantity=quantity)], VS, DEFAULT)
    assert issues == ()
    assert (m.value, m.comparator, m.original_unit) == (2, "<", "{score}")


@pytest.mark.parametrize("score", ["6", 6.5, True])
def test_a_pain_value_integer_that_is_not_an_integer_is_reported(score: object) -> None:
    issue = issue_of(observation("p1", PAIN, valueQuantity=None, valueInteger=score))
    assert why(issue) == DataIssue(
        "Observation/p1", "valueInteger is not an integer: skipped", "pain", NO_VALUE
    )


# --- what a skipped Observation holds, for the card and the pending-result rule -----------

DAY = When(datetime.fromisoformat(USUAL_TIME), date(2024, 1, 10))


def held(issue: DataIssue) -> tuple[Any, ...]:
    return (issue.value, issue.unit, issue.when, issue.status, issue.comparator, issue.text)


@pytest.mark.parametrize(
    ("coding", "elements", "expected"),
    [
        (  # a preliminary CRP in mg/dL: converted as a used one would be
            CRP,
            {"status": "preliminary", "valueQuantity": {"value": 9.5, "code": "mg/dL"}},
            (95.0, "mg/L", DAY, "preliminary", None, None),
        ),
        (
            CRP,
            {
                "status": "registered",
                "valueQuantity": {"value": 5, "comparator": "<", "unit": "mg/L"},
            },
            (5.0, "mg/L", DAY, "registered", "<", None),
        ),
        (
            HS_CRP,
            {"status": "preliminary", "valueQuantity": {"value": 1.5, "code": "mg/L"}},
            (1.5, "mg/L", DAY, "preliminary", None, None),
        ),
        (
            ESR,
            {"status": "entered-in-error", "valueQuantity": {"value": 40, "code": "mm/hr"}},
            (40.0, "mm/h", DAY, "entered-in-error", None, None),
        ),
        (
            PAIN,
            {"valueQuantity": None, "valueInteger": 11},
            (11.0, "{score}", DAY, "final", None, None),
        ),
        (
            PAIN,
            {"status": "cancelled", "valueQuantity": {"value": 4, "unit": "points"}},
            (4.0, "{score}", DAY, "cancelled", None, None),
        ),
        (  # a negative value is shown as it is: the reason says what is wrong with it
            CRP,
            {"valueQuantity": {"value": -1, "code": "mg/L"}},
            (-1.0, "mg/L", DAY, "final", None, None),
        ),
        (  # a text result is quoted; it has no number
            CRP,
            {"valueQuantity": None, "valueString": "see comment"},
            (None, None, DAY, "final", None, "see comment"),
        ),
        (  # a unit that cannot be converted: no value rather than one in another unit
            CRP,
            {"status": "preliminary", "valueQuantity": {"value": 12, "code": "mg/x"}},
            (None, None, DAY, "preliminary", None, None),
        ),
        (
            CRP,
            {"valueQuantity": {"value": 12, "code": "mg/L", "comparator": "~"}},
            (None, None, DAY, "final", None, None),
        ),
        (  # no usable date: the value is still named
            CRP,
            {"effectiveDateTime": "2024-02-30"},
            (12.0, "mg/L", None, "final", None, None),
        ),
        (
            CRP,
            {"status": None, "effectiveDateTime": None, "issued": "2024-01-11"},
            (
                12.0,
                "mg/L",
                When(datetime(2024, 1, 11, tzinfo=UTC), date(2024, 1, 11), True),
                None,
                None,
                None,
            ),
        ),
    ],
)
def test_a_skipped_value_is_named_with_what_it_holds(
    coding: tuple[str, str, str], elements: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    issue = issue_of(observation("o1", coding, **elements))
    assert issue.kind in {"crp", "esr", "pain"}
    assert held(issue) == expected


def test_a_molar_crp_left_out_is_converted_only_with_a_factor() -> None:
    molar = (LOINC, "76485-2", "C reactive protein [Moles/volume]")
    quantity = {"value": 95.24, "code": "nmol/L"}
    off = issue_of(observation("m1", molar, valueQuantity=quantity))
    assert off.plain == "reported in nmol/L (conversion turned off in the settings)"
    assert (off.value, off.unit, off.status) == (None, None, "final")
    options = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
    pending = issue_of(
        observation("m1", molar, status="preliminary", valueQuantity=quantity), options
    )
    assert (pending.value, pending.unit, pending.status) == (10.0, "mg/L", "preliminary")


def test_a_text_result_is_quoted_on_one_line_and_at_most_200_characters() -> None:
    long = "CRP  see\nlab comment " + "x" * 300
    issue = issue_of(observation("o1", valueQuantity=None, valueString=long))
    assert issue.text is not None
    assert issue.text.startswith("CRP see lab comment xxx")
    assert len(issue.text) == 200 and issue.text.endswith("\u2026")


def test_what_a_skip_of_an_unread_code_or_a_non_observation_holds_is_nothing() -> None:
    qualitative = (LOINC, "11039-5", "C reactive protein [Presence]")
    measurements, issues = map_observations(
        [observation("q1", qualitative), {"resourceType": "Patient", "id": "p"}], VS, DEFAULT
    )
    assert measurements == ()
    assert [held(i) for i in issues] == [(None,) * 6, (None,) * 6]


@pytest.mark.parametrize(
    "elements",
    [
        {"valueQuantity": {"value": 10**400, "code": "mg/L"}},
        {"valueQuantity": {"value": Decimal("1e400"), "code": "mg/L"}},
    ],
)
def test_a_number_beyond_a_float_is_skipped_as_not_finite(elements: dict[str, Any]) -> None:
    issue = issue_of(observation("o1", **elements))
    assert why(issue) == DataIssue(
        "Observation/o1", "valueQuantity.value is not finite: skipped", "crp", NO_VALUE
    )
    assert issue.value is None


def test_a_pain_integer_beyond_a_float_is_outside_the_scale() -> None:
    issue = issue_of(observation("p1", PAIN, valueQuantity=None, valueInteger=10**400))
    assert why(issue) == DataIssue(
        "Observation/p1", "pain score inf outside 0-10: skipped", "pain", "outside the 0-10 scale"
    )
    assert issue.value is None


# --- the time window and the options -------------------------------------------------------


def test_since_keeps_a_value_at_its_very_instant_written_in_an_earlier_day() -> None:
    # 23:30 UTC on 9 January is 00:30 on 10 January at +01:00, the instant of ``since``:
    # not before it, so it is kept although its day as written is the day before.
    since = MappingOptions(since=datetime.fromisoformat("2024-01-10T00:30:00+01:00"))
    resource = observation("o1", effectiveDateTime="2024-01-09T23:30:00Z")
    (m,), issues = map_observations([resource], VS, since)
    assert issues == ()
    assert m.when.day.isoformat() == "2024-01-09"


def test_a_molar_factor_below_1_is_a_valid_setting() -> None:
    options = MappingOptions(crp_molar_factor_nmol_per_mg=0.5)
    resource = observation(
        "m1",
        (LOINC, "76485-2", "C reactive protein [Moles/volume]"),
        valueQuantity={"value": 2, "code": "nmol/L"},
    )
    (m,), _ = map_observations([resource], VS, options)
    assert m.value == 4


@pytest.mark.parametrize("factor", [0.0, -9.524, float("nan"), float("inf")])
def test_a_molar_factor_that_is_not_positive_is_refused(factor: float) -> None:
    with pytest.raises(ValueError) as refused:
        MappingOptions(crp_molar_factor_nmol_per_mg=factor)
    assert str(refused.value) == "crp_molar_factor_nmol_per_mg must be a positive number"


def test_a_since_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError) as refused:
        MappingOptions(since=datetime.fromisoformat("2024-01-10T00:30:00"))
    assert str(refused.value) == "since must be timezone-aware"


# --- rawjson: references and codings -------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "Condition", "id": "c1"}, "Condition/c1"),
        ({"resourceType": "Condition", "id": ""}, "Condition/#3"),
        ({"resourceType": "Condition", "id": 7}, "Condition/#3"),
        ({"id": "c1"}, "Resource/c1"),
        ({"resourceType": "", "id": "c1"}, "Resource/c1"),
        ({"resourceType": 5, "id": "c1"}, "Resource/c1"),
        ({}, "Resource/#3"),
    ],
)
def test_a_reference_names_the_resource_as_given_or_by_position(
    resource: dict[str, Any], expected: str
) -> None:
    assert reference(resource, 3) == expected


def test_codings_keep_only_those_with_a_system_and_a_code() -> None:
    concept = {
        "coding": [
            "M46.26",
            {"system": "", "code": "M46.26"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": ""},
            {"system": 5, "code": "M46.26"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": ["M46.26"]},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M46.26", "display": 3},
            {"system": "http://snomed.info/sct", "code": "16814004", "display": "Osteomyelitis"},
        ]
    }
    assert codings(concept) == [
        Coding("http://hl7.org/fhir/sid/icd-10-cm", "M46.26", None),
        Coding("http://snomed.info/sct", "16814004", "Osteomyelitis"),
    ]


class _Reading(BaseModel):
    value: int


def test_a_validation_error_is_described_by_its_first_error_and_element_path() -> None:
    with pytest.raises(ValidationError) as refused:
        _Reading.model_validate({"value": "twelve"})
    first = refused.value.errors()[0]
    assert describe_error(refused.value) == f"value: {first['msg']} (1 error(s))"


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (ValueError("first line\nsecond line"), "first line"),
        (ValueError(""), "ValueError"),
        (KeyError("code"), "'code'"),
    ],
)
def test_another_error_is_described_by_its_first_line_or_its_type(
    error: Exception, described: str
) -> None:
    assert describe_error(error) == described
