"""How a CRP's unit is read, from the resource to the card (clinical-rules.md, "Reading
the data": normalise to mg/L; a unit that cannot be converted is skipped and reported),
on an outside clinical review's findings (2026-12):

- a unit text (``unit``) and a UCUM code (``code``) that name two known units of
  different scale ("mg/dL" beside "mg/L") say two different values: the value is not
  read, and the card names it with both units; a text that only spells the code
  differently ("mg/l", "MG/L") is no disagreement;
- g/L is a UCUM mass concentration like mg/dL: a CRP of 0.08 g/L is 80 mg/L, converted
  by the same table, not left out (nor ever read as 0.08 mg/L);
- a UCUM annotation in curly braces carries no meaning for the unit: "mg/L{CRP}" is mg/L,
  read by the typed path and the careful path alike.

Each is checked on the resource as a dict (the careful path, and the typed reader on
the converted dict) and as its bytes (the typed reader on a prefetched resource)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from msgspec import Raw

from cds_service.cards.left_out import left_out
from cds_service.engine import Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers import observations, observations_careful
from fhir_mappers.model import DataIssue, Measurement, ReportedValue
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.wire import read_resource, typed_observation
from tests.engine.builders import crp, pain, run

VS = load_value_sets()
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OPTIONS = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)
MASS, HS, MOLAR, ESR = "1988-5", "30522-7", "76485-2", "4537-7"
DAY_28 = "2024-04-01T08:00:00+00:00"  # day 28 from the builders' T0, 2024-03-04


def observation(code: str, quantity: dict[str, Any], when: str = DAY_28) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": quantity,
    }


def quantity(value: float, unit: str | None, code: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "system": UCUM}
    if unit is not None:
        q["unit"] = unit
    if code is not None:
        q["code"] = code
    return q


def mapped(
    resource: dict[str, Any], options: MappingOptions = OPTIONS
) -> tuple[tuple[Measurement, ...], tuple[DataIssue, ...]]:
    """The mapper's answer, the same whether the resource came as a dict or as bytes."""
    as_dict = map_observations([resource], VS, options)
    as_bytes = map_observations([read_resource(Raw(json.dumps(resource).encode()))], VS, options)
    assert as_bytes == as_dict
    return as_dict


# --- a unit text and a code that disagree ---------------------------------------------


@pytest.mark.parametrize(
    ("code", "unit", "ucum"),
    [
        (MASS, "mg/dL", "mg/L"),  # u04, u06: 3.5 could be 3.5 or 35 mg/L
        (MASS, "mg/L", "mg/dL"),
        (HS, "mg/dL", "mg/L"),
        (MASS, "nmol/L", "mg/L"),  # a molar unit beside a mass code: 9.5 times apart
        (MASS, "mg/L", "nmol/L"),
        (MOLAR, "mg/L", "nmol/L"),
    ],
)
def test_a_unit_text_and_code_of_different_scale_leave_the_value_out(
    code: str, unit: str, ucum: str
) -> None:
    measurements, issues = mapped(observation(code, quantity(3.5, unit, ucum)))
    assert measurements == ()
    (issue,) = issues
    assert issue.kind == "crp"
    assert issue.reason == f"unit text {unit!r} and code {ucum!r} disagree: skipped"
    assert issue.plain == "with a unit text and code that disagree"
    assert issue.value is None  # never read one way or the other
    assert issue.reported == ReportedValue(3.5, unit, None, code=ucum)
    assert issue.when is not None and issue.when.day == date(2024, 4, 1)


@pytest.mark.parametrize(
    ("unit", "ucum", "mg_l"),
    [
        ("mg/l", "mg/L", 15.0),
        ("MG/L", "mg/L", 15.0),
        ("mg/L", "mg/L", 15.0),
        ("MG/DL", "mg/dL", 150.0),
        ("milligrams per litre", "mg/L", 15.0),  # not a unit the service knows: the code
        (None, "mg/L", 15.0),
        ("mg/dL", None, 150.0),
        ("mg/dL", "mg%", 150.0),  # an unknown code beside a known text: the text
    ],
)
def test_a_spelling_of_the_same_unit_or_an_unknown_one_is_no_disagreement(
    unit: str | None, ucum: str | None, mg_l: float
) -> None:
    measurements, issues = mapped(observation(MASS, quantity(15, unit, ucum)))
    assert issues == ()
    (m,) = measurements
    assert m.value == mg_l


def test_an_esr_text_and_code_of_the_same_scale_agree() -> None:
    measurements, issues = mapped(observation(ESR, quantity(30, "mm/hr", "mm/h")))
    assert issues == () and measurements[0].value == 30.0


def test_a_disagreeing_latest_crp_does_not_advise_against_and_is_named() -> None:
    """u06: CRP 40, 38, then 3.5 with unit text mg/dL and code mg/L. Read as the code it
    was -91% and advised against; as the text it is 35 mg/L, a plateau. Neither is
    taken: the latest counted CRP is 15 days old, and the card names the 3.5 with both
    units."""
    _, issues = mapped(observation(MASS, quantity(3.5, "mg/dL", "mg/L")))
    data = [crp(0, 40), crp(14, 38), pain(0, 5), pain(14, 4), pain(28, 4)]
    a = run(data, issues=issues)
    assert a.recommendation is not Recommendation.ADVISE_AGAINST
    assert left_out(issues, date(2024, 3, 4)) == [
        "Not used, unit text and code disagree (mg/dL vs mg/L): CRP 3.5 mg/dL on day 28."
    ]


# --- g/L, a mass concentration like mg/dL ------------------------------------------------


@pytest.mark.parametrize(("unit", "ucum"), [("g/L", "g/L"), ("G/L", "g/L"), (None, "g/L")])
def test_a_crp_in_g_per_l_is_converted_to_mg_per_l(unit: str | None, ucum: str) -> None:
    measurements, issues = mapped(observation(MASS, quantity(0.08, unit, ucum)))
    assert issues == ()
    (m,) = measurements
    assert (m.value, m.unit, m.original_value, m.original_unit) == (80.0, "mg/L", 0.08, ucum)


def test_a_latest_crp_in_g_per_l_counts_as_the_rise_it_is() -> None:
    """u02: CRP 120, 50 mg/L, then 0.08 g/L (80 mg/L) on day 28: a rise, never advice
    against imaging and never "latest CRP 15 days old"."""
    (m,), _ = mapped(observation(MASS, quantity(0.08, "g/L", "g/L")))
    data = [crp(0, 120), crp(14, 50), m, pain(0, 7), pain(14, 4), pain(28, 4)]
    a = run(data)
    assert a.recommendation is Recommendation.SUPPORT
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 80.0


# --- UCUM annotations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ucum", "value"),
    [
        (MASS, "mg/L{CRP}", 15.0),
        (MASS, "mg{CRP}/L", 15.0),
        (MASS, "MG/L{crp}", 15.0),
        (MASS, "mg/dL{CRP}", 150.0),
        (MASS, "g/L{CRP}", 15000.0),
        (HS, "mg/L{hsCRP}", 15.0),
        (MOLAR, "nmol/L{CRP}", round(15 / 9.524, 9)),
        (ESR, "mm/h{Westergren}", 15.0),
    ],
)
def test_an_annotated_unit_is_the_unit_on_both_paths(code: str, ucum: str, value: float) -> None:
    resource = observation(code, quantity(15, ucum, ucum))
    measurements, issues = mapped(resource)
    assert issues == ()
    (m,) = measurements
    assert (m.value, m.original_unit) == (value, ucum)  # the unit kept as sent
    # the typed reader answers itself (the speed), and as the careful path does
    typed = typed_observation(resource)
    assert typed is not None
    found = observations_careful.select_code(typed, VS.observations)
    assert found is not None
    coding, entry = found
    fast = observations._usual("Observation/o1", typed, coding, entry.kind, OPTIONS)
    careful = observations_careful.measure("Observation/o1", resource, coding, entry, OPTIONS)
    assert careful == m and fast in (None, m)
    if code != MOLAR:  # molar CRP is read by the careful path alone, annotated or not
        assert fast is not None


@pytest.mark.parametrize("ucum", ["mg/L{CRP", "{CRP}", "mg/L {CRP}", "mg/L}CRP{"])
def test_a_brace_that_is_no_annotation_of_a_known_unit_leaves_the_value_out(ucum: str) -> None:
    measurements, issues = mapped(observation(MASS, quantity(15, None, ucum)))
    assert measurements == ()
    (issue,) = issues
    assert issue.plain == "in a unit that could not be converted"
    assert issue.reported == ReportedValue(15.0, ucum)


def test_an_annotation_does_not_hide_a_disagreement() -> None:
    _, (issue,) = mapped(observation(MASS, quantity(3.5, "mg/dL{CRP}", "mg/L{CRP}")))
    assert issue.reported == ReportedValue(3.5, "mg/dL{CRP}", None, code="mg/L{CRP}")
    measurements, issues = mapped(observation(MASS, quantity(3.5, "mg/L", "mg/L{CRP}")))
    assert issues == () and measurements[0].value == 3.5


def test_annotated_crps_make_the_series_they_are() -> None:
    """u03: CRP 120, 50, 15 sent as "mg/L{CRP}" were all left out as an unknown unit and
    the card asked for a CRP; they are the falling series they say."""
    read = [
        mapped(observation(MASS, quantity(v, "mg/L{CRP}", "mg/L{CRP}"), when))[0][0]
        for v, when in (
            (120, "2024-03-04T08:00:00+00:00"),
            (50, "2024-03-18T08:00:00+00:00"),
            (15, DAY_28),
        )
    ]
    a = run([*read, pain(0, 7), pain(14, 4), pain(28, 2)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [m.value for m in read] == [120.0, 50.0, 15.0]


def test_a_crp_in_micrograms_per_millilitre_is_read_as_mg_per_l() -> None:
    """ug/mL is the same concentration as mg/L (1 ug per mL is 1 mg per L): a clinician
    reader saw a CRP in ug/mL refused as a unit that cannot be converted."""
    (m,), issues = mapped(observation(MASS, quantity(15.0, "ug/mL", "ug/mL")))
    assert not issues
    assert (m.value, m.unit) == (15.0, "mg/L")
    (same,), _ = mapped(observation(MASS, quantity(15.0, "ug/mL", "mg/L")))
    assert same.value == 15.0  # same scale as its code: no disagreement
