"""Which written forms of a subject reference name this patient, with and without the
call's fhirServer (an attack review: any reference that merely ended in /Patient/<id>
counted, so patient B's data, written ``Patient/B/Patient/A`` or as another server's
``.../Patient/A``, gave patient A patient B's card)."""

from __future__ import annotations

import msgspec
import pytest

from fhir_mappers.subjects import all_about_another_patient, belongs_to, own_test, refers_to
from fhir_mappers.wire import ObservationBytes, read_resource

SERVER = "https://ehr.example.org/fhir"

# Ours whatever the call's fhirServer (or none)
RELATIVE = ["Patient/p1", "Patient/p1/_history/3", "Patient/p1/_history/2.a-b"]

# Ours when the call names SERVER (in any of its spellings) or no fhirServer at all
ON_SERVER = [
    "https://ehr.example.org/fhir/Patient/p1",
    "https://ehr.example.org/fhir/Patient/p1/_history/2.a-b",
    "HTTPS://EHR.Example.ORG/fhir/Patient/p1",
    "https://ehr.example.org:443/fhir/Patient/p1",
    "https://ehr.example.org/fhir//Patient/p1",  # the base with a trailing slash
]

# A clean base, but not SERVER: ours only when the call names no fhirServer
OTHER_SERVER = [
    "https://other.example.org/fhir/Patient/p1",
    "https://other.example.org/fhir/Patient/p1/_history/1",
    "http://ehr.example.org/fhir/Patient/p1",  # another scheme
    "https://ehr.example.org:8443/fhir/Patient/p1",  # another port
    "https://ehr.example.org/FHIR/Patient/p1",  # the path's case counts
    "https://ehr.example.org/fhir/r4/Patient/p1",
    "https://ehr.example.org/Patient/p1",
]

# Never ours
REFUSED = [
    "Patient/p2",
    "Patient/p2/_history/3",
    "Patient/p10/_history/1",
    "Patient/p1/_history/",
    "Patient/p1/_history/3/x",
    "Patient/p1/_history/" + "7" * 65,  # a version longer than a FHIR id
    "Patient/p1/_history/3/_history/4",
    "Patient/p1/",
    "/Patient/p1",
    "patient/p1",
    "Patient/p2/Patient/p1",
    "Patient/p2#/Patient/p1",
    "Patient/p2?x=/Patient/p1",
    "Group/ward-7/Patient/p1",
    "Group/p1/_history/1",
    "Observation/o1/Patient/p1",
    "urn:uuid:0f0e/Patient/p1",
    "ftp://ehr.example.org/fhir/Patient/p1",
    "https://ehr.example.org/fhir/Patient/p2/Patient/p1",
    "https://ehr.example.org/fhir/Patient/p2/_history/1/Patient/p1",
    "https://ehr.example.org/fhir/../Patient/p1",
    "https://ehr.example.org/fhir/./Patient/p1",
    "https://ehr.example.org/fhir?x=/Patient/p1",
    "https://ehr.example.org/fhir#/Patient/p1",
    "https://ehr.example.org/fhir/Patient/p1?x=1",
    "https://ehr.example.org/fhir/Patient/p1#x",
    "https://user@ehr.example.org/fhir/Patient/p1",
    "https://ehr.example.org@other.example.org/fhir/Patient/p1",
    "https://ehr.example.org\\@other.example.org/fhir/Patient/p1",
    "https://ehr.example.org:99999/fhir/Patient/p1",
    "https://ehr.example.org:x/fhir/Patient/p1",
    "https:///fhir/Patient/p1",
    "https://ehr.example.org/fh ir/Patient/p1",
    "https://ehr.example.org/f\u00e9/Patient/p1",
    "https://ehr.example.org/fhir\n/Patient/p1",
    "https://ehr.example.org/fhir/Patient/p1/",
]

SERVER_SPELLINGS = [SERVER, SERVER + "/", "HTTPS://EHR.EXAMPLE.ORG:443/fhir"]


def _observation(reference: str) -> dict[str, object]:
    return {"resourceType": "Observation", "id": "o", "subject": {"reference": reference}}


def _typed(reference: str) -> ObservationBytes:
    raw = msgspec.json.encode(
        {**_observation(reference), "status": "final", "code": {"text": "CRP"}}
    )
    resource = read_resource(raw)
    assert type(resource) is ObservationBytes
    return resource


def _all_say(reference: str, server: str | None) -> bool:
    """What every entry point says of ``reference``; they must agree."""
    said = {
        refers_to(reference, "p1", server),
        belongs_to(_observation(reference), "p1", server),
        own_test("p1", server)(_observation(reference)),
        own_test("p1", server)(_typed(reference)),
        not all_about_another_patient([_typed(reference)], "p1", server),
    }
    assert len(said) == 1, f"the entry points disagree on {reference!r}"
    return said.pop()


@pytest.mark.parametrize("server", [None, *SERVER_SPELLINGS, "https://other.example.org/x"])
@pytest.mark.parametrize("reference", RELATIVE)
def test_a_relative_reference_to_this_patient_is_ours_whatever_the_server(
    reference: str, server: str | None
) -> None:
    assert _all_say(reference, server)


@pytest.mark.parametrize("server", SERVER_SPELLINGS)
@pytest.mark.parametrize("reference", ON_SERVER)
def test_an_absolute_reference_on_the_calls_fhir_server_is_ours(
    reference: str, server: str
) -> None:
    assert _all_say(reference, server)


@pytest.mark.parametrize("reference", ON_SERVER + OTHER_SERVER)
def test_without_a_fhir_server_any_clean_http_base_is_taken(reference: str) -> None:
    # prefetch only: there is no server to hold the base against (documented)
    assert _all_say(reference, None)


@pytest.mark.parametrize("reference", OTHER_SERVER)
def test_an_absolute_reference_on_another_server_is_someone_elses(reference: str) -> None:
    # ids are a server's own: another server's Patient/p1 is not this p1
    assert not _all_say(reference, SERVER)


@pytest.mark.parametrize("server", [None, SERVER])
@pytest.mark.parametrize("reference", REFUSED)
def test_references_that_only_end_in_this_patient_are_someone_elses(
    reference: str, server: str | None
) -> None:
    assert not _all_say(reference, server)


@pytest.mark.parametrize(
    "server", ["not a url", "https://u@ehr.example.org/fhir", "https://ehr.example.org/fhir?x=1"]
)
def test_a_fhir_server_that_is_no_clean_base_matches_no_absolute_reference(server: str) -> None:
    assert not _all_say("https://ehr.example.org/fhir/Patient/p1", server)
    assert not _all_say("not a url/Patient/p1", server)
    assert _all_say("Patient/p1", server)


def test_a_patient_and_a_resource_with_no_subject_keep_their_rules() -> None:
    assert belongs_to({"resourceType": "Patient", "id": "p1"}, "p1", SERVER)
    assert not belongs_to({"resourceType": "Patient", "id": "p2"}, "p1", SERVER)
    assert belongs_to({"resourceType": "Condition", "id": "c"}, "p1", SERVER)
    assert not belongs_to({"resourceType": "Condition", "subject": {"display": "p1"}}, "p1")
