"""Reading the gathered resources for the patient in context (cds_service/patient_reads.py):
a read made early is used only for the very lists the call gathered.

End to end, with fetched data from the real FHIR test server:
tests/test_end_to_end_examples.py (early and late reads give one outcome)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from cds_service.datasources import keys_feeding
from cds_service.patient_reads import EarlyReads

LOINC = "http://loinc.org"


def crp(oid: str, value: float, patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "1988-5"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-01T08:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "mg/L",
            "system": "http://unitsofmeasure.org",
            "code": "mg/L",
        },
    }


def by_key(first: list[Any]) -> dict[str, list[Any]]:
    keys = keys_feeding("measurements")
    return {key: (first if n == 0 else []) for n, key in enumerate(keys)}


def test_an_early_read_is_used_for_the_same_lists_and_never_for_others(app: Flask) -> None:
    runtime = app.extensions["spine_cds"]
    early = EarlyReads(runtime, "p1")
    seen = by_key([crp("a", 40.0), crp("b", 20.0)])
    early(seen)  # as a fetch thread would, once every key feeding the Observations is in

    same = early.measurements.of(seen)
    assert [m.value for m in same.measurements] == [40.0, 20.0]
    assert early.measurements.of(dict(seen)) is same  # the same lists: the read is reused

    # The call gathered other lists (a key refetched, a first page kept at the deadline):
    # equal or not, they are read again, never taken from the early read.
    refetched = by_key([crp("a", 40.0), crp("c", 5.0, patient="p2")])
    again = early.measurements.of(refetched)
    assert again is not same
    assert [m.value for m in again.measurements] == [40.0]
    assert [i.reference for i in again.foreign] == ["Observation/c"]  # another patient's
    copied = {key: list(found) for key, found in seen.items()}
    assert early.measurements.of(copied) is not same
