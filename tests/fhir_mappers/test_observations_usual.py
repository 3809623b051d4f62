"""The Observation mapper's one typed reader (``_usual``) gives the careful path's answers.

A request carries hundreds of Observations, so the mapper reads each typed (a
``fhir_mappers.wire`` Struct, from the bytes or from a dict) and measures the usual
shape with few calls, leaving every other shape, and every refusal with its reason, to
the careful path (``observations_careful.measure``) on the resource as JSON. These
tests hold the two to one answer: on usual Observations changed in up to two places
into near misses, the typed decode of the bytes and of the dict refuse alike and read
alike, the code each selects is the same, and whenever ``_usual`` answers, ``measure``
gives the same Measurement (and does not refuse). They also check that the benchmark's
Observations take the typed path, so that the speed it was made for is real.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import Raw

from cds_service.examples import benchmark_bundle
from cds_service.valuesets import load_value_sets
from fhir_mappers import observations, observations_careful
from fhir_mappers.observations import MappingOptions
from fhir_mappers.wire import ObservationBytes, read_resource, typed_observation

_VALUE_SETS = load_value_sets()


# Observations in the usual shape the mapper reads with few calls, each then changed in
# up to two places into a near miss (the elements the fast path looks at).
# UCUM annotations ("mg/L{CRP}") carry no meaning for the unit: both paths read them.
_USUAL_UNITS = {
    "1988-5": ["mg/L", "mg/dL", "MG/L", "g/L", "mg/L{CRP}", "mg{CRP}/L", "mg/dL{C reactive}"],
    "30522-7": ["mg/L", "mg/dL", "mg/L{hsCRP}"],  # hs-CRP
    "76485-2": ["nmol/L", "nmol/L{CRP}"],  # CRP in nmol/L
    "4537-7": ["mm/h", "mm/hr", "mm/h{Westergren}"],  # ESR
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
    ("value", 2**70),
    ("value", 10**400),  # beyond a float: the typed decode refuses it
    ("valueInteger", 10**400),
    ("code", " mg/L"),
    ("code", "mg/L "),
    ("code", ""),
    ("code", "mm/h"),
    ("code", "mg/dL"),
    ("code", "nmol/L"),
    ("code", "mg/L{CRP}"),
    ("code", "mg/L{CRP"),  # an annotation not closed: no unit the service knows
    ("code", "mg/L {CRP}"),
    ("code", "{CRP}"),
    ("code", "mg/L{}"),
    ("code", 3),
    ("code", None),
    ("unit", "mg/L"),
    ("unit", "MG/L"),
    ("unit", "mg/dL"),
    ("unit", "nmol/L"),
    ("unit", "mg/L{CRP}"),
    ("unit", "mg/dL{CRP}"),
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


def _bytes_of(resource: dict[str, Any]) -> bytes | None:
    """The resource as JSON text; None when it holds what JSON cannot (inf, nan)."""
    try:
        return json.dumps(resource, allow_nan=False).encode()
    except ValueError:
        return None


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
def test_the_typed_reader_gives_the_careful_paths_answer(
    resource: dict[str, Any], options: MappingOptions
) -> None:
    typed = typed_observation(resource)
    text = _bytes_of(resource)
    if text is not None:  # the bytes' decode refuses and reads as the dict's does
        read = read_resource(Raw(text))
        assert (type(read) is ObservationBytes) == (typed is not None)
        if typed is not None:
            assert read.typed == typed
    if typed is None:
        return  # the careful path reads it: nothing to compare
    table = _VALUE_SETS.observations
    found = observations_careful.select_code(typed, table)
    assert found == observations_careful.select_code(resource, table)
    assert found is not None
    coding, entry = found
    fast = observations._usual("Observation/o1", typed, coding, entry.kind, options)
    if fast is None:
        return
    careful = observations_careful.measure("Observation/o1", resource, coding, entry, options)
    assert fast == careful


def test_the_benchmarks_observations_all_take_the_typed_path() -> None:
    bundle = benchmark_bundle("bench-patient")
    resources = [e["resource"] for e in bundle["entry"]]
    observations_of_bundle = [r for r in resources if r["resourceType"] == "Observation"]
    assert len(observations_of_bundle) >= 100
    for resource in observations_of_bundle:
        typed = typed_observation(resource)
        assert typed is not None, resource
        found = observations_careful.select_code(typed, _VALUE_SETS.observations)
        assert found is not None
        coding, entry = found
        fast = observations._usual("Observation/x", typed, coding, entry.kind, MappingOptions())
        assert fast is not None, resource
