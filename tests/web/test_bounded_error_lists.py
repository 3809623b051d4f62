"""However many problems a body holds, the answer and the audit row list a bounded number
and say how many there were (an attack review: 100,000 selections naming no draft order
gave an 11 MB 400 and an 11 MB audit row; 25,000 CRP results no subject could be
checked on stored 25,000 issues, a 2 MB row, per call)."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from cds_service.auditing import MAX_AUDITED_ENTRIES, MAX_AUDITED_ISSUES
from cds_service.validation import MAX_REPORTED_ERRORS, FieldError, reported
from tests.builders import SELECT_ID, hook_request, service_request
from tests.support.ehr_calls import card_request

BAD_SELECTIONS = 20_000


def _audited(client: FlaskClient, hook_instance: str) -> Any:
    (record,) = (
        r
        for r in client.application.extensions["spine_cds"].stores.audit.records()
        if r.hook_instance == hook_instance
    )
    return record


def test_selections_naming_no_draft_order_are_listed_up_to_the_cap(client: FlaskClient) -> None:
    selections = ["ServiceRequest/o1"] + [f"ServiceRequest/x{i}" for i in range(BAD_SELECTIONS)]
    body = hook_request("order-select", [service_request("o1")], selections=selections)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert len(details) == MAX_REPORTED_ERRORS
    assert details[0] == {
        "path": "$.context.selections[1]",
        "message": "'ServiceRequest/x0' is not an order in context.draftOrders",
    }
    assert details[-1]["path"] == f"$.context.selections[{MAX_REPORTED_ERRORS}]"
    assert details[-1]["message"].endswith(f"(and {BAD_SELECTIONS - MAX_REPORTED_ERRORS} more)")
    assert len(response.data) < 5_000
    record = _audited(client, body["hookInstance"])
    assert record.status == 400
    assert len(json.dumps(record.detail)) < 5_000
    assert len(record.detail["details"]) == MAX_REPORTED_ERRORS


def test_a_few_bad_selections_are_each_listed_as_before(client: FlaskClient) -> None:
    selections = ["ServiceRequest/x1", "ServiceRequest/x2"]
    body = hook_request("order-select", [service_request("o1")], selections=selections)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 400
    assert [d["message"] for d in response.get_json()["details"]] == [
        "'ServiceRequest/x1' is not an order in context.draftOrders",
        "'ServiceRequest/x2' is not an order in context.draftOrders",
    ]


def test_the_capper_keeps_its_note_within_a_message_and_counts_what_it_was_not_given() -> None:
    errors = [FieldError(f"$.a[{i}]", "x" * 400) for i in range(MAX_REPORTED_ERRORS)]
    assert reported(errors) == errors
    (*_, last) = reported(errors, total=MAX_REPORTED_ERRORS + 7)
    assert last.message.endswith("… (and 7 more)") and len(last.message) == 300


def test_the_audited_issues_of_an_answer_are_capped_and_counted(client: FlaskClient) -> None:
    body = card_request("e01-improving")
    crp = body["prefetch"]["crp"]
    unchecked = 3 * MAX_AUDITED_ISSUES  # results of someone named only by display
    crp["entry"] += [
        {
            "resource": {
                **crp["entry"][0]["resource"],
                "id": f"other-{i}",
                "subject": {"display": "Someone Else"},
            }
        }
        for i in range(unchecked)
    ]
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"]
    detail = _audited(client, body["hookInstance"]).detail
    total = detail["counts"]["issues"]
    assert total >= unchecked
    assert len(detail["issues"]) == MAX_AUDITED_ISSUES
    assert detail["issuesTotal"] == total
    assert len(json.dumps(detail["issues"])) < 200 * MAX_AUDITED_ISSUES


def test_a_few_issues_are_all_audited_with_no_total(client: FlaskClient) -> None:
    body = card_request("e01-improving")
    crp = body["prefetch"]["crp"]
    crp["entry"].append(
        {"resource": {**crp["entry"][0]["resource"], "id": "o", "subject": {"display": "X"}}}
    )
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 200
    detail = _audited(client, body["hookInstance"]).detail
    assert len(detail["issues"]) == detail["counts"]["issues"] >= 1
    assert "issuesTotal" not in detail


def test_the_audited_values_of_an_answer_are_capped_and_counted(client: FlaskClient) -> None:
    """An attack review: 15,000 CRPs from a FHIR server stored a 2.6 MB audit row for a
    746-byte call. Each input list keeps its first and last entries and a total."""
    body = card_request("e01-improving")
    crp = body["prefetch"]["crp"]
    first = crp["entry"][0]["resource"]
    day = first["effectiveDateTime"][:10]
    extra = 3 * MAX_AUDITED_ENTRIES
    crp["entry"] += [
        {
            "resource": {
                **first,
                "id": f"many-{i}",
                "effectiveDateTime": f"{day}T{i // 60 % 24:02d}:{i % 60:02d}:{i // 1440:02d}Z",
            }
        }
        for i in range(extra)
    ]
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200
    detail = _audited(client, body["hookInstance"]).detail
    used = detail["counts"]["crpUsed"]
    assert used > extra
    assert detail["crpTotal"] == used
    assert len(detail["crp"]) == MAX_AUDITED_ENTRIES
    assert detail["crp"][-1]["reference"] != detail["crp"][0]["reference"]
    assert len(json.dumps(detail)) < 200_000
