"""map_observations and the FHIR time parser: units, statuses, time zones, robustness."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.valuesets import load_value_sets
from fhir_mappers.model import MeasurementKind
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.timeutil import parse_fhir_time

VS = load_value_sets()
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DEFAULT = MappingOptions()


def observation(
    oid: str,
    code: str = "1988-5",
    value: float | None = 10.0,
    unit: str | None = "mg/L",
    when: str | None = "2024-01-10",
    status: str = "final",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
    }
    if when is not None:
        resource["effectiveDateTime"] = when
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity.update(unit=unit, system=UCUM, code=unit)
        resource["valueQuantity"] = quantity
    resource.update(extra)
    return resource


def one(resource: dict[str, Any], options: MappingOptions = DEFAULT) -> Any:
    measurements, issues = map_observations([resource], VS, options)
    assert issues == (), issues
    assert len(measurements) == 1
    return measurements[0]


def skipped(resource: dict[str, Any], options: MappingOptions = DEFAULT) -> str:
    """The reason the single resource was skipped."""
    measurements, issues = map_observations([resource], VS, options)
    assert measurements == ()
    assert len(issues) == 1
    assert issues[0].reference == f"Observation/{resource['id']}"
    return issues[0].reason


# --- CRP units ----------------------------------------------------------------------------


def test_example_e5_mixed_units_normalised_to_mg_per_l() -> None:
    series = [
        observation("d0", value=14.0, unit="mg/dL", when="2024-01-01"),
        observation("d14", value=5.1, unit="mg/dL", when="2024-01-15"),
        observation("d28", value=12, unit="mg/L", when="2024-01-29"),
    ]
    measurements, issues = map_observations(series, VS, DEFAULT)
    assert issues == ()
    assert [(m.value, m.unit) for m in measurements] == [(140, "mg/L"), (51, "mg/L"), (12, "mg/L")]
    assert [(m.original_value, m.original_unit) for m in measurements] == [
        (14.0, "mg/dL"),
        (5.1, "mg/dL"),
        (12, "mg/L"),
    ]
    assert {m.kind for m in measurements} == {MeasurementKind.CRP}


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ({"value": 3, "unit": "mg/l"}, 3),
        ({"value": 3, "unit": "mg/dl"}, 30),
        ({"value": 3, "unit": "MG/DL"}, 30),
        ({"value": 3, "code": "mg/dL", "system": UCUM}, 30),
        ({"value": 3, "code": "LOCAL-MGL", "system": "urn:lab", "unit": "mg/L"}, 3),
        ({"value": 0.7, "unit": "mg/dL"}, 7),
        ({"value": Decimal("2.5"), "unit": "mg/dL"}, 25),
    ],
)
def test_crp_unit_read_from_code_or_unit_string(quantity: dict[str, Any], expected: float) -> None:
    resource = observation("c", value=None, valueQuantity=quantity)
    assert one(resource).value == expected


@pytest.mark.parametrize(
    "quantity",
    [
        {"value": 3, "unit": "%"},
        {"value": 3, "unit": "mmol/L"},
        {"value": 3},
        {"value": 3, "unit": ""},
    ],
)
def test_crp_in_an_unconvertible_unit_is_skipped_and_reported(quantity: dict[str, Any]) -> None:
    assert "cannot be converted to mg/L" in skipped(
        observation("c", value=None, valueQuantity=quantity)
    )


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"valueString": "< 5"}, "valueString is not a usable number"),
        ({"valueCodeableConcept": {"text": "high"}}, "valueCodeableConcept is not a usable number"),
        ({"dataAbsentReason": {"text": "haemolysed"}}, "no value (dataAbsentReason given)"),
        ({}, "no value"),
        ({"valueQuantity": {"value": "12", "unit": "mg/L"}}, "not a number"),
        ({"valueQuantity": {"value": True, "unit": "mg/L"}}, "not a number"),
        ({"valueQuantity": {"unit": "mg/L"}}, "not a number"),
        ({"valueQuantity": {"value": -1, "unit": "mg/L"}}, "negative"),
        ({"valueQuantity": {"value": 1, "unit": "mg/L", "comparator": "~"}}, "comparator"),
        (
            {"valueQuantity": {"value": 1, "unit": "mg/L", "comparator": []}},
            "comparator is not a string",
        ),
        (
            {"valueQuantity": {"value": 1, "unit": "mg/L", "comparator": {"a": 1}}},
            "comparator is not a string",
        ),
        ({"valueQuantity": {"value": 1, "unit": 5}}, "valueQuantity.unit is not a string"),
        ({"valueQuantity": [1]}, "valueQuantity is not an object"),
    ],
)
def test_no_usable_numeric_value_is_skipped_and_reported(
    extra: dict[str, Any], reason: str
) -> None:
    resource = observation("c", value=None, **extra)
    assert reason in skipped(resource)


@pytest.mark.parametrize("comparator", ["<", "<=", ">=", ">"])
def test_a_comparator_value_is_taken_at_its_limit_and_marked(comparator: str) -> None:
    quantity = {"value": 0.5, "comparator": comparator, "unit": "mg/dL"}
    measurement = one(observation("c", value=None, valueQuantity=quantity))
    assert (measurement.value, measurement.comparator) == (5, comparator)


def test_hs_crp_is_crp_marked_high_sensitivity() -> None:
    measurements, issues = map_observations(
        [observation("hs1", code="30522-7", value=2), observation("hs2", code="71426-1", value=3)],
        VS,
        DEFAULT,
    )
    assert issues == ()
    assert [(m.kind, m.high_sensitivity, m.value) for m in measurements] == [
        (MeasurementKind.CRP, True, 2),
        (MeasurementKind.CRP, True, 3),
    ]
    assert one(observation("std")).high_sensitivity is False


def test_molar_crp_needs_the_configured_factor() -> None:
    molar = observation("m", code="76485-2", value=95.24, unit="nmol/L")
    assert "no nmol/L to mg/L factor configured" in skipped(molar)
    with_factor = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
    measurement = one(molar, with_factor)
    assert measurement.kind is MeasurementKind.CRP
    assert measurement.value == pytest.approx(10.0)
    assert (measurement.original_value, measurement.original_unit) == (95.24, "nmol/L")
    assert "not nmol/L" in skipped(observation("m", code="76485-2", unit="mg/L"), with_factor)


def test_qualitative_crp_is_ignored_with_a_note() -> None:
    qualitative = observation("q", code="11039-5", value=None, valueCodeableConcept={"text": "pos"})
    assert "11039-5 is not read by the rules" in skipped(qualitative)


@pytest.mark.parametrize("bad", [0, -9.524, float("inf"), float("nan")])
def test_a_bad_molar_factor_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        MappingOptions(crp_molar_factor_nmol_per_mg=bad)


# --- ESR and pain -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "unit"), [("4537-7", "mm/h"), ("30341-2", "mm/h"), ("4537-7", "mm/hr")]
)
def test_esr_in_mm_per_hour(code: str, unit: str) -> None:
    measurement = one(observation("e", code=code, value=95, unit=unit))
    assert (measurement.kind, measurement.value, measurement.unit) == (
        MeasurementKind.ESR,
        95,
        "mm/h",
    )


def test_esr_in_another_unit_is_skipped() -> None:
    assert "not mm/h" in skipped(observation("e", code="4537-7", value=95, unit="mg/L"))


@pytest.mark.parametrize("code", ["72514-3", "38208-5"])
def test_pain_from_value_integer_or_quantity(code: str) -> None:
    by_integer = observation("p1", code=code, value=None, valueInteger=7)
    by_quantity = observation("p2", code=code, value=4, unit="{score}")
    unitless = observation("p3", code=code, value=None, valueQuantity={"value": 0})
    assert [(m.kind, m.value, m.unit) for m in map(one, [by_integer, by_quantity, unitless])] == [
        (MeasurementKind.PAIN, 7, "{score}"),
        (MeasurementKind.PAIN, 4, "{score}"),
        (MeasurementKind.PAIN, 0, "{score}"),
    ]


@pytest.mark.parametrize(
    "extra",
    [{"valueInteger": 11}, {"valueInteger": -1}, {"valueQuantity": {"value": 10.5}}],
)
def test_pain_outside_0_to_10_is_skipped(extra: dict[str, Any]) -> None:
    assert "outside 0-10" in skipped(observation("p", code="72514-3", value=None, **extra))


def test_pain_value_integer_of_the_wrong_type_is_skipped() -> None:
    reason = skipped(observation("p", code="72514-3", value=None, valueInteger="7"))
    assert "valueInteger is not an integer" in reason


# --- statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_final_amended_corrected_are_used(status: str) -> None:
    assert one(observation("s", status=status)).status == status


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", "unknown"])
def test_other_statuses_are_ignored_and_noted(status: str) -> None:
    assert skipped(observation("s", status=status)) == f"status {status}: ignored"


def test_preliminary_is_a_setting() -> None:
    preliminary = observation("s", status="preliminary")
    assert skipped(preliminary) == "status preliminary: ignored"
    assert one(preliminary, MappingOptions(accept_preliminary=True)).status == "preliminary"


@pytest.mark.parametrize("status", [None, 3, ["final"]])
def test_a_missing_or_malformed_status_is_skipped(status: Any) -> None:
    resource = observation("s")
    resource["status"] = status
    assert "status missing" in skipped(resource)


def test_example_e10_entered_in_error_value_is_ignored() -> None:
    series = [
        observation("d0", value=140, when="2024-01-01"),
        observation("d14", value=60, when="2024-01-15"),
        observation("d28-error", value=180, when="2024-01-29", status="entered-in-error"),
        observation("d28", value=20, when="2024-01-29"),
    ]
    measurements, issues = map_observations(series, VS, DEFAULT)
    assert [m.value for m in measurements] == [140, 60, 20]
    assert [(i.reference, i.reason) for i in issues] == [
        ("Observation/d28-error", "status entered-in-error: ignored")
    ]


# --- time ---------------------------------------------------------------------------------


def test_a_value_at_23_30_minus_5_is_on_that_day() -> None:
    measurement = one(observation("t", when="2024-03-01T23:30:00-05:00"))
    assert measurement.when.day == date(2024, 3, 1)
    assert measurement.when.instant == datetime(2024, 3, 2, 4, 30, tzinfo=UTC)


def test_results_are_ordered_by_instant_across_offsets() -> None:
    series = [
        observation("a", when="2024-03-01T23:30:00-05:00"),  # 04:30Z on 2 March
        observation("b", when="2024-03-02T01:00:00+00:00"),  # 01:00Z on 2 March
        observation("c", when="2024-03-02T04:00:00+02:00"),  # 02:00Z on 2 March
    ]
    measurements, _ = map_observations(series, VS, DEFAULT)
    assert [m.reference for m in measurements] == [
        "Observation/b",
        "Observation/c",
        "Observation/a",
    ]
    assert [m.when.day for m in measurements] == [
        date(2024, 3, 2),
        date(2024, 3, 2),
        date(2024, 3, 1),
    ]


def test_time_from_effective_period_start_then_issued() -> None:
    by_period = observation("p", when=None, effectivePeriod={"start": "2024-01-05T10:00:00Z"})
    by_issued = observation("i", when=None, issued="2024-01-06T09:00:00.123+01:00")
    end_only = observation(
        "e", when=None, effectivePeriod={"end": "2024-01-09"}, issued="2024-01-07T00:00:00Z"
    )
    instant = observation("n", when=None, effectiveInstant="2024-01-08T00:00:00Z")
    measurements, issues = map_observations([by_period, by_issued, end_only, instant], VS, DEFAULT)
    assert issues == ()
    assert [(m.reference, m.when.day) for m in measurements] == [
        ("Observation/p", date(2024, 1, 5)),
        ("Observation/i", date(2024, 1, 6)),
        ("Observation/e", date(2024, 1, 7)),
        ("Observation/n", date(2024, 1, 8)),
    ]
    assert measurements[1].when.instant == datetime(2024, 1, 6, 8, 0, 0, 123000, tzinfo=UTC)


def test_effective_date_time_wins_over_issued() -> None:
    resource = observation("t", when="2024-01-05", issued="2024-01-09T00:00:00Z")
    assert one(resource).when.day == date(2024, 1, 5)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, "no effectiveDateTime, effectivePeriod.start or issued"),
        ({"effectiveDateTime": "01/05/2024"}, "effectiveDateTime not read"),
        ({"effectiveDateTime": 20240105}, "effectiveDateTime not read"),
        ({"effectivePeriod": "2024-01-05"}, "effectivePeriod is not an object"),
        ({"issued": "2024-02-30T00:00:00Z"}, "issued not read"),
    ],
)
def test_no_usable_time_is_skipped_and_reported(extra: dict[str, Any], reason: str) -> None:
    assert reason in skipped(observation("t", when=None, **extra))


def test_since_drops_older_values_but_keeps_the_same_day() -> None:
    since = datetime(2024, 1, 10, 12, tzinfo=UTC)
    series = [
        observation("old", when="2024-01-09T23:00:00Z"),
        observation("same-day-date-only", when="2024-01-10"),
        observation("same-day-earlier", when="2024-01-10T08:00:00Z"),
        observation("later", when="2024-01-11"),
        observation("old-but-broken", when="2024-01-01", status="cancelled"),
    ]
    measurements, issues = map_observations(series, VS, MappingOptions(since=since))
    assert [m.reference for m in measurements] == [
        "Observation/same-day-date-only",
        "Observation/same-day-earlier",
        "Observation/later",
    ]
    assert [i.reference for i in issues] == ["Observation/old-but-broken"]


def test_since_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MappingOptions(since=datetime(2024, 1, 1))


# --- selection ----------------------------------------------------------------------------


def test_unrelated_observations_are_left_out_silently_and_others_reported() -> None:
    unrelated = observation("u", value=5.4, unit="mmol/L")
    unrelated["code"] = {"coding": [{"system": "http://example.org/lab", "code": "GLU"}]}
    no_code = observation("n")
    del no_code["code"]
    other_system = observation("s")
    other_system["code"]["coding"][0]["system"] = "http://example.org/lab"
    resources: list[Any] = [
        unrelated,
        no_code,
        other_system,
        {"resourceType": "Condition", "id": "c"},
        5,
    ]
    measurements, issues = map_observations(resources, VS, DEFAULT)
    assert measurements == ()
    assert [i.reference for i in issues] == ["Condition/c", "#4"]


def test_the_first_coding_in_the_value_set_identifies_the_observation() -> None:
    resource = observation("c")
    resource["code"] = {
        "coding": [
            {"system": "http://example.org/lab", "code": "CRP"},
            {"system": LOINC, "code": "1988-5", "display": "CRP"},
        ]
    }
    measurement = one(resource)
    assert (measurement.code.system, measurement.code.code, measurement.code.display) == (
        LOINC,
        "1988-5",
        "CRP",
    )


def test_an_observation_without_id_gets_a_positional_reference() -> None:
    resource = observation("x")
    del resource["id"]
    measurements, _ = map_observations([observation("a"), resource], VS, DEFAULT)
    assert sorted(m.reference for m in measurements) == ["Observation/#1", "Observation/a"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = [
    "resourceType",
    "id",
    "status",
    "code",
    "effectiveDateTime",
    "effectivePeriod",
    "issued",
    "valueQuantity",
    "valueInteger",
]


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    value=JSON,
    code=st.sampled_from(["1988-5", "72514-3", "76485-2"]),
)
def test_odd_json_never_raises(field: str, value: Any, code: str) -> None:
    odd = copy.deepcopy(observation("o", code=code, value=5, unit="mg/L"))
    odd[field] = value
    options = MappingOptions(
        crp_molar_factor_nmol_per_mg=9.524, since=datetime(2000, 1, 1, tzinfo=UTC)
    )
    measurements, _ = map_observations([odd, value], VS, options)
    assert len(measurements) <= 1
    for m in measurements:
        assert m.when.instant.tzinfo is not None
        assert m.value >= 0


# --- the time parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant", "day", "date_only"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC), date(2024, 1, 1), True),
        ("2024-02", datetime(2024, 2, 1, tzinfo=UTC), date(2024, 2, 1), True),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC), date(2024, 2, 29), True),
        (
            "2024-02-29T23:59:59Z",
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
            date(2024, 2, 29),
            False,
        ),
        (
            "2024-03-01T00:30:00+14:00",
            datetime(2024, 2, 29, 10, 30, tzinfo=UTC),
            date(2024, 3, 1),
            False,
        ),
        (
            "2024-03-01T10:00:00.123456789-03:30",
            datetime(2024, 3, 1, 13, 30, 0, 123456, tzinfo=UTC),
            date(2024, 3, 1),
            False,
        ),
        # no offset: not valid FHIR, read as UTC (documented in timeutil)
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC), date(2024, 3, 1), False),
        (
            "2016-12-31T23:59:60Z",
            datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC),
            date(2016, 12, 31),
            False,
        ),
    ],
)
def test_parse_fhir_time(text: str, instant: datetime, day: date, date_only: bool) -> None:
    when = parse_fhir_time(text)
    assert (when.instant, when.day, when.date_only) == (instant, day, date_only)
    assert when.instant.tzinfo is not None


def test_parse_keeps_the_written_offset() -> None:
    when = parse_fhir_time("2024-03-01T23:30:00-05:00")
    assert when.instant.utcoffset() == timedelta(hours=-5)
    assert when.instant.tzinfo == timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24",
        "2024-1",
        "2024-13",
        "2024-02-30",
        "2024-01-01T10:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01T10:00:00+15:00",
        "2024-01-01 10:00:00Z",
        "2024-01-01T10:00:00.Z",
        " 2024-01-01",
        None,
        20240101,
    ],
)
def test_parse_rejects_what_is_not_a_fhir_time(text: Any) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_fhir_time(text)


# --- code systems by OID ------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{}, {"effectiveDateTime": "2024-01-10T08:00:00"}],  # typed path; careful path (no offset)
    ids=["usual", "careful"],
)
def test_loinc_given_by_its_hl7_oid_is_read_as_loinc(extra: dict[str, Any]) -> None:
    """An interface that writes LOINC as urn:oid:2.16.840.1.113883.6.1 (HL7 Terminology,
    External Code Systems): the CRP is read on both of the mapper's paths."""
    resource = observation("o1", value=42.0, **extra)
    resource["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.1"
    measurement = one(resource)
    assert (measurement.kind, measurement.value) == (MeasurementKind.CRP, 42.0)
