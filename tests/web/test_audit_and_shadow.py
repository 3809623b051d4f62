"""Decision audit of every invocation, and shadow mode for silent pilots."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.app import create_app
from cds_service.ehr_requests import local_prefetch
from cds_service.examples import load_example
from tests.builders import SELECT_ID, hook_request, medication_request, service_request
from tests.conftest import ConformanceCheckingClient, make_settings
from tests.support.ehr_calls import order_request


def improving_patient_request(app: Flask) -> tuple[dict[str, Any], str]:
    example = load_example("e01-improving", date(2026, 11, 26))
    body = order_request("order-select", example.patient_id, example.draft_order)
    service = app.extensions["spine_cds"].discovery.services[SELECT_ID]
    resources = [entry["resource"] for entry in example.bundle["entry"]]
    body["prefetch"] = local_prefetch(service.prefetch, body["context"], resources)
    return body, example.patient_id


def _selected_order(body: dict[str, Any]) -> dict[str, Any]:
    """The draft order the body's selection names (its resource, to change in place)."""
    (order,) = (
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["id"] in body["context"]["selections"][0]
    )
    return order


def audit_records(app: Flask) -> list[Any]:
    return app.extensions["spine_cds"].stores.audit.records()


def test_every_invocation_is_audited(client: FlaskClient) -> None:
    app = client.application
    body, patient_id = improving_patient_request(app)
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    not_spine = hook_request("order-select", [medication_request("m1")])
    assert client.post(f"/cds-services/{SELECT_ID}", json=not_spine).status_code == 200
    no_data = hook_request("order-select", [service_request("o1")])
    assert client.post(f"/cds-services/{SELECT_ID}", json=no_data).status_code == 412
    invalid = dict(not_spine, hookInstance="nope")
    assert client.post(f"/cds-services/{SELECT_ID}", json=invalid).status_code == 400

    records = audit_records(app)
    by_status = {r.status: r for r in records}
    assert [r.status for r in records] == [200, 200, 412, 400]
    decided = records[0]
    assert decided.hook_instance == body["hookInstance"]
    assert decided.decision == "advise-against"
    assert decided.rules_fired == ("advise-against",)
    assert decided.counts["measurements"] >= 8
    assert set(decided.data_sources.values()) == {"prefetch"}
    assert decided.card_uuids and decided.latency_ms > 0
    assert decided.patient_key and decided.patient_key != patient_id
    assert records[1].decision == "not-applicable"
    assert by_status[412].decision == "error" and by_status[412].reason == "data_unavailable"
    assert {m["key"] for m in by_status[412].detail["missing"]} == {
        "conditions",
        "crp",
        "esr",
        "pain",
    }
    assert by_status[400].reason == "invalid_request"


def test_patient_id_is_hashed_consistently(client: FlaskClient) -> None:
    app = client.application
    body, patient_id = improving_patient_request(app)
    client.post(f"/cds-services/{SELECT_ID}", json=body)
    body["hookInstance"] = "6f1d4c57-2f0e-4f5b-9a53-3d2b7c1f0a11"
    client.post(f"/cds-services/{SELECT_ID}", json=body)
    keys = {r.patient_key for r in audit_records(app)}
    assert len(keys) == 1 and patient_id not in next(iter(keys))


def test_patient_id_can_be_kept_plain_when_configured(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, audit_patient_id="plain"))
    body, patient_id = improving_patient_request(app)
    app.test_client().post(f"/cds-services/{SELECT_ID}", json=body)
    assert audit_records(app)[0].patient_key == patient_id


def test_shadow_mode_decides_and_records_but_shows_nothing(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, shadow_mode=True))
    app.test_client_class = ConformanceCheckingClient
    client = app.test_client()
    body, _ = improving_patient_request(app)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    record = audit_records(app)[0]
    assert record.shadow is True
    assert record.decision == "advise-against" and record.card_uuids
    assert client.get("/health").get_json()["shadowMode"] is True


def test_without_shadow_mode_the_same_call_shows_the_card(client: FlaskClient) -> None:
    body, _ = improving_patient_request(client.application)
    cards = client.post(f"/cds-services/{SELECT_ID}", json=body).get_json()["cards"]
    assert cards and cards[0]["indicator"] == "warning"
    assert client.get("/health").get_json()["shadowMode"] is False


def test_notes_about_incomplete_data_reach_the_audit(client: FlaskClient) -> None:
    """A prefetched search with a next page and no fhirServer: decided on what is there,
    and the audit says the data was incomplete."""
    body, _ = improving_patient_request(client.application)
    body["prefetch"]["crp"]["link"] = [
        {"relation": "next", "url": "http://127.0.0.1:9/fhir/Observation?_offset=100"}
    ]
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    notes = audit_records(client.application)[0].detail["dataNotes"]
    assert [note["key"] for note in notes] == ["crp"]
    assert "page" in notes[0]["reason"]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda o: o.pop("intent"),
        lambda o: o.pop("status"),
        lambda o: o.pop("subject"),
        lambda o: o.update(authoredOn="2026-11-26T09:00:00"),  # no time zone
        lambda o: o.update(foo=1),  # an element R4 does not know
        lambda o: o["code"]["coding"][0].update(display=7),
        lambda o: o.update(status=["\x08"]),  # the fuzz suite's: never echoed back
    ],
    ids=[
        "no-intent",
        "no-status",
        "no-subject",
        "no-zone",
        "unknown-element",
        "number-display",
        "control-character-list",
    ],
)
def test_a_spine_order_that_is_not_quite_r4_still_gets_its_card(
    client: FlaskClient, spoil: Any
) -> None:
    """An integration tester found these orders answered {"cards": []}, which an EHR
    cannot tell from "not applicable": the rules read only the code, status, priority,
    reasons and date, so the advice stands and the audit notes what was wrong."""
    app = client.application
    body, _ = improving_patient_request(app)
    order = _selected_order(body)
    spoil(order)
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200
    (card,) = answer.get_json()["cards"]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "advise-against"
    # the order was read and assessed: the card does not count it as a record not used
    assert "not used" not in card["detail"], card["detail"]
    # but it is never written back (a rating or a changed study would echo what could not
    # be validated: the fuzz suite sent a status of ["\x08"])
    written = [
        act.get("resource", {}).get("id")
        for act in answer.get_json().get("systemActions", [])
        + [a for s in card.get("suggestions", []) for a in s["actions"]]
    ]
    assert order["id"] not in written, written
    (record,) = audit_records(app)
    assert record.decision == "advise-against"
    (issue,) = [i for i in record.detail["issues"] if i["reference"].endswith(order["id"])]
    assert "not a valid R4 ServiceRequest" in issue["reason"], issue


def test_an_order_for_another_patient_is_refused_at_its_subject(
    client: FlaskClient,
) -> None:
    """Advice, and a suggestion to delete the order, must not come from this patient's
    data for an order whose subject is someone else; nor may the call be answered with
    no card, which an EHR shows as "all clear" (an integration review): the request
    contradicts itself, and the 400 names the field without repeating either id."""
    app = client.application
    body, _ = improving_patient_request(app)
    order = _selected_order(body)
    order["subject"] = {"reference": "Patient/someone-else"}
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    refusal = answer.get_json()
    assert refusal["error"] == "invalid_request"
    (detail,) = refusal["details"]
    index = body["context"]["draftOrders"]["entry"].index({"resource": order})
    assert detail["path"] == f"$.context.draftOrders.entry[{index}].resource.subject.reference"
    assert "names another patient than context.patientId" in detail["message"]
    assert "someone-else" not in answer.get_data(as_text=True)
    assert body["context"]["patientId"] not in answer.get_data(as_text=True)
    (record,) = audit_records(app)
    assert record.status == 400
    # a subject the order does not name by reference is the ordering session's patient
    order["subject"] = {"identifier": {"system": "urn:mrn", "value": "123"}}
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).get_json()["cards"]


def test_a_prefetch_key_the_service_does_not_declare_is_named_not_dropped(
    client: FlaskClient,
) -> None:
    """A misspelt key ("crp_values") is not read; the 412 for the key it was meant to be
    names it, and an answered call's audit says it was ignored."""
    app = client.application
    body, _ = improving_patient_request(app)
    body["prefetch"]["crp_values"] = body["prefetch"].pop("crp")
    refused = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert refused.status_code == 412
    missing = {m["key"]: m["reason"] for m in refused.get_json()["missing"]}
    assert "crp" in missing
    assert "not a prefetch key of this service" in missing["crp_values"]
    body["prefetch"]["crp"] = body["prefetch"]["crp_values"]
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    notes = {n["key"]: n["reason"] for n in audit_records(app)[-1].detail["dataNotes"]}
    assert "ignored" in notes["crp_values"]


def documented_audit_row() -> dict[str, Any]:
    """The example row of docs/integration.md ("A real row")."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "integration.md").read_text("utf-8")
    block = text.split("A real row", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    row: dict[str, Any] = json.loads(block)
    return row


def test_the_documented_audit_row_is_what_the_service_records(client: FlaskClient) -> None:
    """integration.md's row: the columns of audit_log but ``detail``, and what a call
    with the first example patient and every prefetch key records, so the example cannot
    fall behind a new prefetch key or count."""
    from cds_service.stores.audit import COLUMNS

    documented = documented_audit_row()
    columns = [c.strip() for c in COLUMNS.split(",")]
    assert list(documented) == [c for c in columns if c != "detail"]
    app = client.application
    body, _ = improving_patient_request(app)
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    (real,) = audit_records(app)
    prefetch_keys = app.extensions["spine_cds"].discovery.services[SELECT_ID].prefetch
    assert set(documented["data_sources"]) == set(prefetch_keys)
    assert documented["data_sources"] == dict(real.data_sources)
    assert documented["counts"] == dict(real.counts)
    for name in ("service_id", "hook", "decision", "reason", "status", "shadow", "fhir_ms"):
        assert documented[name] == getattr(real, name), name
    assert documented["rules_fired"] == list(real.rules_fired)
    assert documented["card_uuids"] == list(real.card_uuids)


def test_a_reason_coded_in_a_local_system_is_listed_for_the_site_to_teach(
    client: FlaskClient, tmp_path: Path
) -> None:
    """An integrator's review: an Epic order whose reason carried only Epic's own
    diagnosis code got no card (a reason the service cannot read as the infection), and
    ``spine-cds report`` never showed the code. It now does; taught through
    ``valueset_dir``, the same order gets its card."""
    from cds_service.tools.report_codes import format_unrecognised, unrecognised_codes

    local = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.728286", "code": "OSTEO-77"}
    body, _ = improving_patient_request(client.application)
    _selected_order(body)["reasonCode"] = [{"coding": [local], "text": "Osteomyelitis, lumbar"}]
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).get_json()["cards"] == []
    (record,) = audit_records(client.application)
    assert record.reason == "not-routine-follow-up"
    assert record.detail["unrecognised"]["reasons"] == [[local["system"], local["code"]]]
    text = format_unrecognised(unrecognised_codes([record]))
    assert f"      1  {local['system']}|OSTEO-77" in text.splitlines()
    assert "Osteomyelitis, lumbar" not in text  # codes only, never a clinician's text

    site = tmp_path / "site"
    site.mkdir()
    (site / "reasons.json").write_text(
        json.dumps(
            {
                "valueSet": "conditions",
                "source": "a site's own diagnosis code, as its report listed it (synthetic)",
                "entries": [
                    {
                        "system": local["system"],
                        "code": local["code"],
                        "match": "exact",
                        "category": "nvo",
                        "name": "vertebral osteomyelitis",
                        "verified": False,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    taught = create_app(make_settings(tmp_path, valueset_dir=str(site)))
    cards = taught.test_client().post(f"/cds-services/{SELECT_ID}", json=body).get_json()
    assert cards["cards"] and cards["cards"][0]["indicator"] == "warning"
