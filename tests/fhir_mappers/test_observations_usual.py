"""The Observation mapper's fast path (``_usual``) gives the careful path's answers.

A request carries hundreds of Observations, so the mapper reads the usual shape with
few calls and leaves every other shape, and every refusal with its reason, to
``_measure``. These tests hold the two to one answer: on usual Observations changed in
up to two places into near misses, whenever ``_usual`` answers, ``_measure`` gives the
same Measurement (and does not refuse). They also check that the benchmark's
Observations take the fast path, so that the speed it was made for is real.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.examples import benchmark_bundle
from cds_service.valuesets import load_value_sets
from fhir_mappers import observations
from fhir_mappers.observations import MappingOptions

_VALUE_SETS = load_value_sets()


# Observations in the usual shape the mapper reads with few calls, each then changed in
# up to two places into a near miss (the elements the fast path looks at).
_USUAL_UNITS = {
    "1988-5": ["mg/L", "mg/dL", "MG/L"],  # CRP
    "30522-7": ["mg/L", "mg/dL"],  # hs-CRP
    "76485-2": ["nmol/L"],  # CRP in nmol/L
    "4537-7": ["mm/h", "mm/hr"],  # ESR
    "72514-3": ["{score}", "1"],  # pain 0-10
}
_NEAR_MISSES: list[tuple[str, Any]] = [
    ("status", "preliminary"),
    ("status", "cancelled"),
    ("status", 1),
    ("effectiveDateTime", "2026-02-10"),
    ("effectiveDateTime", "2026-02-10T23:59:60Z"),
    ("effectiveDateTime", "2026-02-10T21:09Z"),
    ("effectiveDateTime", "2026-02-30T21:09:00Z"),
    ("effectiveDateTime", "2026-02-10T21:09:00+15:00"),
    ("effectiveDateTime", 7),
    ("effectiveDateTime", None),
    ("valueInteger", 4),
    ("valueInteger", 11),
    ("valueInteger", True),
    ("valueInteger", 4.0),
    ("valueQuantity", None),
    ("valueQuantity", "12"),
    ("value", -0.5),
    ("value", -3),
    ("value", 0),
    ("value", 10.5),
    ("value", 11),
    ("value", float("inf")),
    ("value", float("nan")),
    ("value", True),
    ("value", "12"),
    ("value", None),
    ("code", " mg/L"),
    ("code", "mg/L "),
    ("code", ""),
    ("code", "mm/h"),
    ("code", "mg/dL"),
    ("code", "nmol/L"),
    ("code", 3),
    ("code", None),
    ("unit", "mg/L"),
    ("unit", 3),
    ("unit", None),
    ("comparator", "<"),
    ("comparator", "~"),
]


@st.composite
def _observations(draw: st.DrawFn) -> dict[str, Any]:
    code = draw(st.sampled_from(sorted(_USUAL_UNITS)))
    unit = draw(st.sampled_from(_USUAL_UNITS[code]))
    value = draw(st.one_of(st.integers(0, 10), st.floats(0, 300, allow_nan=False)))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": draw(st.sampled_from(["final", "amended", "corrected"])),
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": draw(
            st.sampled_from(["2026-02-10T21:09:00Z", "2026-02-10T21:09:00.5+05:30"])
        ),
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }
    for key, changed in draw(st.lists(st.sampled_from(_NEAR_MISSES), max_size=2)):
        in_quantity = key in ("value", "code", "unit", "comparator")
        target = resource.get("valueQuantity") if in_quantity else resource
        if not isinstance(target, dict):
            continue
        if changed is None:
            target.pop(key, None)
        else:
            target[key] = changed
    return resource


@settings(max_examples=1500, deadline=None)
@given(
    _observations(),
    st.sampled_from(
        [
            MappingOptions(),
            MappingOptions(crp_molar_factor_nmol_per_mg=9.524),
            MappingOptions(accept_preliminary=True),
        ]
    ),
)
def test_the_usual_observation_path_gives_the_careful_paths_answer(
    resource: dict[str, Any], options: MappingOptions
) -> None:
    found = observations._select_code(resource["code"], _VALUE_SETS.observations)
    assert found is not None
    coding, entry = found
    fast = observations._usual("Observation/o1", resource, coding, entry, options)
    if fast is None:
        return
    careful = observations._measure("Observation/o1", resource, coding, entry, options)
    assert fast == careful


def test_the_benchmarks_observations_all_take_the_usual_path() -> None:
    bundle = benchmark_bundle("bench-patient")
    resources = [e["resource"] for e in bundle["entry"]]
    observations_of_bundle = [r for r in resources if r["resourceType"] == "Observation"]
    assert len(observations_of_bundle) >= 100
    for resource in observations_of_bundle:
        found = observations._select_code(resource["code"], _VALUE_SETS.observations)
        assert found is not None
        coding, entry = found
        fast = observations._usual("Observation/x", resource, coding, entry, MappingOptions())
        assert fast is not None, resource
