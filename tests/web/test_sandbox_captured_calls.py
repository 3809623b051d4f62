"""The official CDS Hooks sandbox's own calls, captured in a browser, replayed.

The sandbox filled all nine prefetch keys itself from the project's FHIR test server
(``tests/data/sandbox-captured-calls.json``); its orders carry no ``authoredOn``, so the
service judges them at the moment of the call: the clock is set to the capture's minute
(the one fault a real clock will not give on demand). Its Rx tabs send medication orders,
which get no card; its feedback is taken as sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.runtime import Runtime
from tests.builders import SELECT_ID, SIGN_ID

CAPTURED = json.loads(
    (Path(__file__).parents[1] / "data/sandbox-captured-calls.json").read_text("utf-8")
)
CAPTURED_AT = datetime(2026, 12, 7, 1, 47, tzinfo=UTC)


@pytest.fixture(autouse=True)
def at_capture_time(app: Flask) -> None:
    runtime: Runtime = app.extensions["spine_cds"]
    runtime.now = lambda: CAPTURED_AT


def call(client: FlaskClient, key: str) -> dict[str, Any]:
    body = CAPTURED[key]
    service = SELECT_ID if body["hook"] == "order-select" else SIGN_ID
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def test_the_page_load_with_an_empty_order_gets_no_card(client: FlaskClient) -> None:
    assert call(client, "imaging_tab_page_load_order_select") == {"cards": []}


def test_a_lumbar_mri_for_the_improving_patient_gets_the_advice_and_a_rating(
    client: FlaskClient,
) -> None:
    answer = call(client, "imaging_tab_lumbar_mri_order_select")
    (card,) = answer["cards"]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "advise-against"
    # what the PAMA tab reads: the rating on an update in systemActions, and from every
    # update a suggestion makes, a code and a reasonCode list (it threw without one)
    (rating,) = answer["systemActions"]
    assert rating["type"] == "update"
    codes = [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in rating["resource"]["extension"]
        if e["url"] == "http://fhir.org/argonaut/Extension/pama-rating"
    ]
    assert codes == ["not-appropriate"]
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            if action["type"] == "update":
                assert action["resource"]["code"]["coding"][0]["code"]
                assert all(r["coding"][0] for r in action["resource"]["reasonCode"])


@pytest.mark.parametrize("key", ["rx_view_order_select", "rx_sign_tab_order_sign"])
def test_the_rx_tabs_medication_orders_get_no_card(client: FlaskClient, key: str) -> None:
    assert call(client, key) == {"cards": []}


@pytest.mark.parametrize(
    "key", ["feedback_accepted", "feedback_overridden_with_reason", "feedback_dismiss_plain"]
)
def test_the_sandboxs_feedback_is_taken(client: FlaskClient, key: str) -> None:
    response = client.post(f"/cds-services/{SELECT_ID}/feedback", json=CAPTURED[key])
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"stored": 1, "duplicates": 0}
