"""Whose a resource is: versioned references to this patient are this patient's."""

from __future__ import annotations

import msgspec
import pytest

from fhir_mappers.subjects import all_about_another_patient, belongs_to, refers_to
from fhir_mappers.wire import ObservationBytes, read_resource


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p1",
        "Patient/p1/_history/3",
        "https://ehr.example.org/fhir/Patient/p1",
        "https://ehr.example.org/fhir/Patient/p1/_history/2.a-b",
    ],
)
def test_a_reference_to_this_patient_or_a_version_of_it_is_this_patient(reference: str) -> None:
    # an attack suite saw versioned subjects read as another patient's, and refetched
    assert refers_to(reference, "p1")
    assert belongs_to({"resourceType": "Observation", "subject": {"reference": reference}}, "p1")


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p2",
        "Patient/p2/_history/3",
        "Patient/p1/_history/",
        "Patient/p1/_history/3/x",
        "Patient/p10/_history/1",
        "https://ehr.example.org/fhir/Patient/p2/_history/1",
        "Group/p1/_history/1",
    ],
)
def test_other_references_stay_someone_elses(reference: str) -> None:
    assert not refers_to(reference, "p1")


def test_a_typed_observation_with_a_versioned_subject_is_this_patients() -> None:
    raw = msgspec.json.encode(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "CRP"},
            "subject": {"reference": "Patient/p1/_history/7"},
        }
    )
    resources = [read_resource(raw)]
    assert type(resources[0]) is ObservationBytes
    assert not all_about_another_patient(resources, "p1")
