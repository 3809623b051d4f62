"""CDS Hooks 2.0 protocol rules, one test per MUST that the foundation covers.

Runs against the app in process; the conformance-checking client validates every 200
hook response against the response schema and the no-null/no-empty rule.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import schemas
from cds_service.cards.identity import REMOVE_IMAGING, suggestion_uuid
from cds_service.datasources import SOURCES
from cds_service.validation import validate
from fhir_mappers.valuesets import ObservationKind
from tests.builders import (
    EMPTY_PREFETCH,
    LOINC,
    SELECT_ID,
    SIGN_ID,
    hook_request,
    medication_request,
    service_request,
)

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = json.loads((Path(__file__).parent / "data" / "sandbox-requests.json").read_text())
ALLOWED_TOKENS = {
    "context.patientId",
    "context.userId",
    "context.encounterId",
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
}


def post(client: FlaskClient, service: str, body: Any) -> Any:
    return client.post(f"/cds-services/{service}", json=body)


def error_paths(response: Any) -> dict[str, str]:
    return {d["path"]: d["message"] for d in response.get_json()["details"]}


# Discovery ---------------------------------------------------------------------------


def test_discovery_serves_hooks_json_unchanged(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.get_json() == json.loads((ROOT / "hooks.json").read_text())


def test_discovery_conforms_and_offers_one_service_per_hook(client: FlaskClient) -> None:
    body = client.get("/cds-services").get_json()
    assert validate(schemas.validator("discovery.schema.json"), body) == []
    hooks = {service["hook"]: service for service in body["services"]}
    assert set(hooks) == {"order-select", "order-sign"}
    for service in body["services"]:
        assert service["title"] and service["description"]
        assert set(service["prefetch"]) == {
            "conditions",
            "crp",
            "esr",
            "pain",
            "antibiotics",
            "patient",
            "procedures",
            "imaging_studies",
            "imaging_reports",
        }


def test_prefetch_templates_use_only_cds_hooks_2_tokens(client: FlaskClient) -> None:
    for service in client.get("/cds-services").get_json()["services"]:
        for key, template in service["prefetch"].items():
            tokens = set(re.findall(r"\{\{\s*([^}]+?)\s*\}\}", template))
            assert tokens and tokens <= ALLOWED_TOKENS, (key, tokens)
            # searches say how many per page; the Patient (birthDate) is a read
            assert "_count=" in template or template == "Patient/{{context.patientId}}", key
            if template.startswith("Observation?"):
                assert "_sort=-date" in template, key


def test_prefetch_observation_codes_cover_the_value_set(client: FlaskClient) -> None:
    """Every Observation code the mappers read must be asked for by some template (one
    truth each)."""
    runtime = client.application.extensions["spine_cds"]
    templates = " ".join(
        t
        for s in client.get("/cds-services").get_json()["services"]
        for t in s["prefetch"].values()
    )
    read = runtime.value_sets.observations.items()
    for (system, code), entry in read:
        if entry.kind is not ObservationKind.IGNORE:
            assert f"{system}|{code}" in templates, code


# Invocation: validation errors name the JSON path -----------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "expected"),
    [
        (lambda b: b.pop("hook"), "$.hook", "required"),
        (lambda b: b.__setitem__("hook", "order-sign"), "$.hook", "'order-select'"),
        (lambda b: b.pop("hookInstance"), "$.hookInstance", "required"),
        (lambda b: b.__setitem__("hookInstance", "not-a-uuid"), "$.hookInstance", "UUID"),
        (lambda b: b.pop("context"), "$.context", "required"),
        (lambda b: b["context"].pop("patientId"), "$.context.patientId", "required"),
        (lambda b: b["context"].pop("userId"), "$.context.userId", "required"),
        # dot segments: a URL reads them as path steps (Patient/.. is the server's root)
        (lambda b: b["context"].__setitem__("patientId", ".."), "$.context.patientId", "not '.'"),
        (lambda b: b["context"].__setitem__("patientId", "."), "$.context.patientId", "not '.'"),
        (lambda b: b["context"].__setitem__("encounterId", ".."), "$.context.encounterId", "'..'"),
        (lambda b: b["context"].__setitem__("userId", "Bob"), "$.context.userId", "Practitioner"),
        (lambda b: b["context"].pop("selections"), "$.context.selections", "required"),
        (
            lambda b: b["context"].__setitem__("selections", []),
            "$.context.selections",
            "at least 1",
        ),
        (lambda b: b["context"].pop("draftOrders"), "$.context.draftOrders", "required"),
        (
            lambda b: b["context"]["draftOrders"].__setitem__("resourceType", "Patient"),
            "$.context.draftOrders.resourceType",
            "'Bundle'",
        ),
        (lambda b: b.__setitem__("fhirServer", "ftp://x"), "$.fhirServer", "http"),
        # credentials, a query or a fragment: refused where they are, not a 412 for every
        # key later (an outside review); the URL is never repeated back
        *(
            (
                lambda b, bad=bad: b.__setitem__("fhirServer", bad),
                "$.fhirServer",
                "without credentials, query or fragment",
            )
            for bad in (
                "https://user:pw@ehr.example/fhir",
                "https://ehr.example/fhir?x=1",
                "https://ehr.example/fhir#f",
                "https://token@ehr.example/fhir",
            )
        ),
        # hosts the FHIR client would never send the token to: refused here too, with
        # complete prefetch as without, not a 412 later when something must be fetched
        *(
            (
                lambda b, bad=bad: b.__setitem__("fhirServer", bad),
                "$.fhirServer",
                "not a plain http(s) URL",
            )
            for bad in ("http://127.0.0.1%2e:18090/fhir", "http://ehr.example%2eorg/fhir")
        ),
        (
            lambda b: b.__setitem__("prefetch", {"crp": "text"}),
            "$.prefetch.crp",
            "expected an object or null, got a string",
        ),
    ],
)
def test_invalid_order_select_gets_400_naming_the_path(
    client: FlaskClient, mutate: Any, path: str, expected: str
) -> None:
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    mutate(body)
    response = post(client, SELECT_ID, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    paths = error_paths(response)
    assert path in paths, paths
    assert expected in paths[path]


@pytest.mark.parametrize(
    "server",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://ehr.example.org:8443/api/FHIR/R4",
        "http://fhir.example.org",
        "https://ehr.example.org/fhir/@tenant",  # an @ in the path is not a credential
        "HTTPS://ehr.example.org/fhir",  # a scheme is case-insensitive (RFC 3986)
        "Http://ehr.example.org/fhir",
    ],
)
def test_a_plain_fhir_base_url_is_accepted(client: FlaskClient, server: str) -> None:
    # every key prefetched (as nothing found), so nothing is fetched from these made-up hosts
    complete = {source.key: None for source in SOURCES}
    body = hook_request("order-select", [service_request("o1")], prefetch=complete)
    body["fhirServer"] = server
    assert post(client, SELECT_ID, body).status_code == 200


def test_fhir_authorization_requires_fhir_server(client: FlaskClient) -> None:
    body = hook_request("order-sign", [service_request("o1")], access_token="secret-token-1")
    response = post(client, SIGN_ID, body)
    assert response.status_code == 400
    assert "fhirServer" in error_paths(response)["$"]
    assert "secret-token-1" not in response.get_data(as_text=True)


def test_fhir_authorization_fields_are_checked(client: FlaskClient) -> None:
    body = hook_request(
        "order-sign",
        [service_request("o1")],
        fhir_server="http://127.0.0.1:9/fhir",
        access_token="t",
    )
    del body["fhirAuthorization"]["scope"]
    body["fhirAuthorization"]["token_type"] = "MAC"
    paths = error_paths(post(client, SIGN_ID, body))
    assert "required" in paths["$.fhirAuthorization.scope"]
    assert "'Bearer'" in paths["$.fhirAuthorization.token_type"]


def test_order_sign_does_not_require_selections(client: FlaskClient) -> None:
    body = hook_request("order-sign", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    assert "selections" not in body["context"]
    assert post(client, SIGN_ID, body).status_code == 200


def test_selection_not_in_draft_orders_is_a_400(client: FlaskClient) -> None:
    body = hook_request(
        "order-select", [service_request("o1")], selections=["ServiceRequest/elsewhere"]
    )
    response = post(client, SELECT_ID, body)
    assert response.status_code == 400
    assert "$.context.selections[0]" in error_paths(response)


def test_a_selection_with_an_id_over_64_characters_is_told_the_limit(client: FlaskClient) -> None:
    """An interop review: an 81-character id was refused as "expected a relative FHIR
    reference ResourceType/id", which did not say what was wrong with it."""
    long_id = "o" * 81
    body = hook_request(
        "order-select", [service_request(long_id)], selections=[f"ServiceRequest/{long_id}"]
    )
    response = post(client, SELECT_ID, body)
    assert response.status_code == 400
    assert "1 to 64" in error_paths(response)["$.context.selections[0]"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_two_spine_orders_under_one_id_are_a_400(client: FlaskClient, hook: str) -> None:
    """An interop review: a lumbar and a thoracic MRI both with id "d" got two conflicting
    update actions on ServiceRequest/d. Refused, naming the second entry's id."""
    lumbar, thoracic = service_request("d"), service_request("d", code="72157")
    selections = ["ServiceRequest/d"] if hook == "order-select" else None
    body = hook_request(hook, [lumbar, thoracic], selections=selections, prefetch=EMPTY_PREFETCH)
    response = post(client, SELECT_ID if hook == "order-select" else SIGN_ID, body)
    assert response.status_code == 400, response.get_json()
    message = error_paths(response)["$.context.draftOrders.entry[1].resource.id"]
    assert "ServiceRequest/d is the id of more than one draft order" in message


@pytest.mark.parametrize("brain_first", [False, True])
def test_a_spine_order_and_another_draft_under_one_id_are_a_400(
    client: FlaskClient, brain_first: bool
) -> None:
    """A code review: a spine MRI and a brain MRI (70551) both with id "d" got a
    ``delete`` of ServiceRequest/d, an id both drafts carry. Refused, as two spine
    orders under one id are."""
    spine, brain = service_request("d"), service_request("d", code="70551")
    drafts = [brain, spine] if brain_first else [spine, brain]
    body = hook_request("order-sign", drafts, prefetch=EMPTY_PREFETCH)
    response = post(client, SIGN_ID, body)
    assert response.status_code == 400, response.get_json()
    message = error_paths(response)["$.context.draftOrders.entry[1].resource.id"]
    assert "ServiceRequest/d is the id of more than one draft order" in message


def test_two_other_drafts_under_one_id_are_none_of_the_services_business(
    client: FlaskClient,
) -> None:
    """Only a spine order's id matters: it is the only one a suggestion names. Two brain
    MRIs sharing an id beside a spine MRI of its own are answered."""
    drafts = [
        service_request("s"),
        service_request("b", code="70551"),
        service_request("b", code="70551"),
    ]
    body = hook_request("order-sign", drafts, prefetch=EMPTY_PREFETCH)
    assert post(client, SIGN_ID, body).status_code == 200


def test_orders_with_their_own_ids_are_not_refused(client: FlaskClient) -> None:
    lumbar, thoracic = service_request("d1"), service_request("d2", code="72157")
    body = hook_request("order-sign", [lumbar, thoracic], prefetch=EMPTY_PREFETCH)
    assert post(client, SIGN_ID, body).status_code == 200


# Status codes -------------------------------------------------------------------------


def test_unknown_service_is_404(client: FlaskClient) -> None:
    body = hook_request("order-select", [service_request("o1")])
    assert post(client, "no-such-service", body).status_code == 404
    assert client.post("/cds-services/no-such-service/feedback", json={}).status_code == 404
    assert client.get("/nowhere").status_code == 404
    # the id is the client's text: repeated in the answer bounded, not whole
    long = post(client, "x" * 3000, body)
    assert long.status_code == 404 and len(long.get_json()["message"]) < 200


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405_with_json(client: FlaskClient, method: str) -> None:
    response = getattr(client, method)(f"/cds-services/{SELECT_ID}")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_body_that_is_not_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        f"/cds-services/{SELECT_ID}", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


def test_json_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    response = client.post(f"/cds-services/{SELECT_ID}", json=[1, 2])
    assert response.status_code == 400
    assert "expected a JSON object" in response.get_json()["message"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post(f"/cds-services/{SELECT_ID}", data="hook=x", content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        f"/cds-services/{SELECT_ID}",
        data=b"[" + b"0," * (limit // 2) + b"0]",
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_deeply_nested_json_is_400(client: FlaskClient) -> None:
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    nested: Any = {}
    for _ in range(200):
        nested = {"x": nested}
    body["extension"] = nested
    response = post(client, SELECT_ID, body)
    assert response.status_code == 400
    assert "nested deeper" in response.get_json()["message"]


# Which orders are in question -----------------------------------------------------------


def test_order_select_only_considers_selected_orders(client: FlaskClient) -> None:
    """A spine MRI sits unselected next to a selected medication order: no card, no fetch."""
    mri = service_request("mri", code="72158")
    med = medication_request("med")
    body = hook_request("order-select", [mri, med], selections=["MedicationRequest/med"])
    # no prefetch and no fhirServer: had the MRI been considered this would be a 412
    response = post(client, SELECT_ID, body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_order_sign_considers_every_draft_order(client: FlaskClient) -> None:
    """order-sign with a spine CT among the drafts needs the patient's data (412 without)."""
    ct = service_request("ct", code="72131")
    lab = service_request("lab", system=LOINC, code="1988-5")
    body = hook_request("order-sign", [lab, ct])
    response = post(client, SIGN_ID, body)
    assert response.status_code == 412
    assert response.get_json()["error"] == "data_unavailable"


@pytest.mark.parametrize(
    "orders",
    [
        [service_request("o1", system=LOINC, code="24590-2")],  # MR brain
        [service_request("o1", system="http://www.ama-assn.org/go/cpt", code="70553")],
        [service_request("o1", system=None, code=None)],  # code.coding: [{}]
        [medication_request("o1")],
    ],
    ids=["mr-brain-loinc", "mr-brain-cpt", "empty-coding", "medication"],
)
def test_orders_that_are_not_spine_imaging_get_no_card(
    client: FlaskClient, orders: list[dict[str, Any]]
) -> None:
    for hook, service in (("order-select", SELECT_ID), ("order-sign", SIGN_ID)):
        response = post(client, service, hook_request(hook, orders))
        assert response.status_code == 200
        assert response.get_json() == {"cards": []}


@pytest.mark.parametrize("name", sorted(k for k in SANDBOX if not k.startswith("_")))
def test_real_sandbox_requests_never_fail(client: FlaskClient, name: str) -> None:
    body = SANDBOX[name]
    service = SELECT_ID if body["hook"] == "order-select" else SIGN_ID
    response = post(client, service, body)
    # the sandbox's FHIR server is not running here: a spine order may need a 412, but
    # the page-load order and the medication order must be 200 with no card
    if name in {"imaging_tab_page_load_order_select", "rx_sign_tab_order_sign"}:
        assert response.status_code == 200
        assert response.get_json() == {"cards": []}
    else:
        assert response.status_code in {200, 412}


def test_bundle_without_type_is_accepted(client: FlaskClient) -> None:
    body = hook_request("order-sign", [medication_request("m1")])
    body["context"]["draftOrders"].pop("type")
    assert post(client, SIGN_ID, body).get_json() == {"cards": []}


def test_spine_order_with_no_patient_data_gets_no_card(client: FlaskClient) -> None:
    """Prefetch keys that are null mean 'no data': no episode, so the service does not apply."""
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    response = post(client, SELECT_ID, body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


# CORS and health --------------------------------------------------------------------------


def test_cors_preflight_allows_authorization_and_content_type(client: FlaskClient) -> None:
    response = client.options(
        f"/cds-services/{SELECT_ID}",
        headers={
            "Origin": "https://sandbox.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in {"*", "https://sandbox.example"}
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_header_on_actual_response(client: FlaskClient) -> None:
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.example"})
    assert response.headers["Access-Control-Allow-Origin"] in {"*", "https://sandbox.example"}


def test_health(client: FlaskClient) -> None:
    body = client.get("/health").get_json()
    assert body["status"] == "ok"
    assert body["devMode"] is True
    assert set(body["services"]) == {SELECT_ID, SIGN_ID}


def test_security_headers_present(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# Feedback ---------------------------------------------------------------------------------

FEEDBACK = {
    "feedback": [
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {
                    "system": "https://spine-cds.invalid/CodeSystem/override-reason",
                    "code": "new-symptom",
                    "display": "New symptom not yet documented",
                },
                "userComment": "synthetic comment",
            },
            "outcomeTimestamp": "2026-11-26T10:00:00Z",
        }
    ]
}


def test_feedback_is_stored_once_when_sent_twice(client: FlaskClient) -> None:
    first = client.post(f"/cds-services/{SELECT_ID}/feedback", json=FEEDBACK)
    second = client.post(f"/cds-services/{SELECT_ID}/feedback", json=FEEDBACK)
    assert first.status_code == second.status_code == 200
    assert first.get_json() == {"stored": 1, "duplicates": 0}
    assert second.get_json() == {"stored": 0, "duplicates": 1}
    rows = client.application.extensions["spine_cds"].stores.feedback.all()
    assert len(rows) == 1
    assert rows[0]["entry"] == FEEDBACK["feedback"][0]  # nothing the client sent is lost


def test_feedback_accepted_with_suggestions(client: FlaskClient) -> None:
    body = {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "accepted",
                "acceptedSuggestions": [
                    {"id": suggestion_uuid("9368d37b-283f-44a0-93ea-547cebab93ed", REMOVE_IMAGING)}
                ],
                "outcomeTimestamp": "2026-11-26T10:00:00+01:00",
            }
        ]
    }
    response = client.post(f"/cds-services/{SIGN_ID}/feedback", json=body)
    assert response.get_json() == {"stored": 1, "duplicates": 0}


CARD = "9368d37b-283f-44a0-93ea-547cebab93ed"
REASON = {"reason": {"system": "urn:x", "code": "c"}}


def test_a_card_uuid_in_upper_case_is_the_same_card(client: FlaskClient) -> None:
    """A uuid is the same whatever its letters' case (RFC 4122). An attack review found
    the upper-case form of a card stored as a second card in development mode (the
    report counted one card twice), while suggestion ids were already read in any case.
    Both are stored in lower case, and a retry in another case is a duplicate."""
    suggestion = suggestion_uuid(CARD, REMOVE_IMAGING)
    entry = {
        "card": CARD,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": "2026-11-26T10:00:00Z",
    }
    url = f"/cds-services/{SIGN_ID}/feedback"
    upper = {**entry, "card": CARD.upper(), "acceptedSuggestions": [{"id": suggestion.upper()}]}
    first = client.post(url, json={"feedback": [upper]})
    assert first.get_json() == {"stored": 1, "duplicates": 0}, first.get_json()
    again = client.post(url, json={"feedback": [entry]})
    assert again.get_json() == {"stored": 0, "duplicates": 1}, again.get_json()
    rows = client.application.extensions["spine_cds"].stores.feedback.all()
    assert [row["entry"] for row in rows] == [entry]


@pytest.mark.parametrize(
    ("entry", "path", "words"),
    [
        (  # the report would count it accepted and drop the reason without a word
            {"outcome": "accepted", "overrideReason": REASON},
            "$.feedback[0].overrideReason",
            "goes with outcome 'overridden'",
        ),
        (
            {
                "outcome": "overridden",
                "acceptedSuggestions": [{"id": suggestion_uuid(CARD, REMOVE_IMAGING)}],
            },
            "$.feedback[0].acceptedSuggestions",
            "go with outcome 'accepted'",
        ),
        (  # a suggestion of another card, or none at all
            {
                "outcome": "accepted",
                "acceptedSuggestions": [
                    {"id": suggestion_uuid(CARD, REMOVE_IMAGING)},
                    {"id": "e56e1945-20b3-4393-8503-a1a20fd73152"},
                ],
            },
            "$.feedback[0].acceptedSuggestions[1].id",
            "no suggestion with this uuid",
        ),
        (
            {"outcome": "overridden", "outcomeTimestamp": "2099-01-01T00:00:00Z"},
            "$.feedback[0].outcomeTimestamp",
            "has not come",
        ),
    ],
    ids=["accepted-with-reason", "overridden-with-suggestions", "unknown-suggestion", "future"],
)
def test_feedback_that_contradicts_itself_is_refused_naming_the_field(
    client: FlaskClient, entry: dict[str, Any], path: str, words: str
) -> None:
    body = {"feedback": [{"card": CARD, "outcomeTimestamp": "2026-11-26T10:00:00Z", **entry}]}
    response = client.post(f"/cds-services/{SIGN_ID}/feedback", json=body)
    assert response.status_code == 400, response.get_json()
    paths = error_paths(response)
    assert path in paths and words in paths[path], paths
    assert client.application.extensions["spine_cds"].stores.feedback.all() == []


def test_an_outcome_too_far_ahead_says_the_tolerance_and_the_service_clock(
    client: FlaskClient,
) -> None:
    # An integrator's review: "has not come" did not show the EHR team a clock skew.
    ahead = (datetime.now(UTC) + timedelta(minutes=6)).isoformat(timespec="seconds")
    body = {"feedback": [{"card": CARD, "outcome": "overridden", "outcomeTimestamp": ahead}]}
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.post(f"/cds-services/{SIGN_ID}/feedback", json=body)
    after = datetime.now(UTC)
    assert response.status_code == 400
    message = error_paths(response)["$.feedback[0].outcomeTimestamp"]
    found = re.search(
        r"more than 5 minutes ahead of the service's clock, which reads (\S+Z);", message
    )
    assert found, message
    assert before <= datetime.fromisoformat(found.group(1)) <= after


def test_an_outcome_a_few_minutes_ahead_of_the_service_clock_is_taken(
    client: FlaskClient,
) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=2)).isoformat(timespec="seconds")
    body = {"feedback": [{"card": CARD, "outcome": "overridden", "outcomeTimestamp": ahead}]}
    response = client.post(f"/cds-services/{SIGN_ID}/feedback", json=body)
    assert response.get_json() == {"stored": 1, "duplicates": 0}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "$.feedback"),
        ({"feedback": []}, "$.feedback"),
        (
            {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "now"}]},
            "$.feedback[0].card",
        ),
        (
            {
                "feedback": [
                    {
                        "card": FEEDBACK["feedback"][0]["card"],
                        "outcome": "maybe",
                        "outcomeTimestamp": "2026-11-26T10:00:00Z",
                    }
                ]
            },
            "$.feedback[0].outcome",
        ),
        (
            {
                "feedback": [
                    {
                        "card": FEEDBACK["feedback"][0]["card"],
                        "outcome": "accepted",
                        "outcomeTimestamp": "yesterday",
                    }
                ]
            },
            "$.feedback[0].outcomeTimestamp",
        ),
        *(
            (
                {
                    "feedback": [
                        {
                            "card": FEEDBACK["feedback"][0]["card"],
                            "outcome": "accepted",
                            "outcomeTimestamp": when,
                        }
                    ]
                },
                "$.feedback[0].outcomeTimestamp",
            )
            # the form of a date-time, and none: once stored as sent
            for when in (
                "2026-13-45T99:99:99Z",
                "2026-02-31T10:00:00Z",
                "2026-11-26T10:00:00+99:99",
                # no year 1-9999 in UTC: an attack review's 500 (OverflowError)
                "0001-01-01T00:00:00+14:00",
            )
        ),
    ],
)
def test_bad_feedback_is_400_with_path(client: FlaskClient, body: Any, path: str) -> None:
    response = client.post(f"/cds-services/{SELECT_ID}/feedback", json=body)
    assert response.status_code == 400
    assert path in error_paths(response)


def test_a_lower_case_t_and_z_are_taken_and_stored_in_upper_case(client: FlaskClient) -> None:
    """RFC 3339 section 5.6 allows "t" and "z"; the same outcome sent both ways is one."""
    entry = dict(FEEDBACK["feedback"][0], outcomeTimestamp="2026-11-26t10:00:00z")
    url = f"/cds-services/{SELECT_ID}/feedback"
    response = client.post(url, json={"feedback": [entry]})
    assert response.get_json() == {"stored": 1, "duplicates": 0}, response.get_json()
    again = dict(entry, outcomeTimestamp="2026-11-26T10:00:00Z")
    assert client.post(url, json={"feedback": [again]}).get_json() == {
        "stored": 0,
        "duplicates": 1,
    }
    rows = client.application.extensions["spine_cds"].stores.feedback.all()
    assert [row["entry"]["outcomeTimestamp"] for row in rows] == ["2026-11-26T10:00:00Z"]


def test_a_leap_second_is_a_real_feedback_time(client: FlaskClient) -> None:
    entry = dict(FEEDBACK["feedback"][0], outcomeTimestamp="2016-12-31T23:59:60Z")
    response = client.post(f"/cds-services/{SELECT_ID}/feedback", json={"feedback": [entry]})
    assert response.status_code == 200, response.get_json()
