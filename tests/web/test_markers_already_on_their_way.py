"""The whole call, through the app: a card whose latest CRP is too old does not order a
CRP already in the order set, nor one drawn after the latest counted CRP whose result is
awaited (an outside clinician's review, 2026-12-08: "Order CRP and ESR" beside both).
The lab drafts are never judged or rated as imaging, and selections and ids of the spine
drafts are checked as before."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import SELECT_ID, SIGN_ID
from tests.support.ehr_calls import card_request, prefetched

LOINC = "http://loinc.org"
STALE = "e16-stale-crp"  # latest CRP on day 20, order on day 29


def _with_labs(service_id: str, *codes: str) -> dict[str, Any]:
    body = card_request(STALE, service_id)
    entries = body["context"]["draftOrders"]["entry"]
    (spine,) = entries
    for code in codes:
        lab = copy.deepcopy(spine)
        lab["resource"]["id"] = f"{spine['resource']['id']}-lab-{code}"
        lab["resource"]["code"] = {"coding": [{"system": LOINC, "code": code}]}
        entries.append(lab)
    return body


def _card(client: FlaskClient, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    answer = response.get_json()
    assert "systemActions" not in answer  # insufficient data: no rating, of any draft
    (card,) = answer["cards"]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "insufficient-data"
    return card  # type: ignore[no-any-return]


def _created(card: dict[str, Any]) -> list[str]:
    return [
        a["resource"]["code"]["coding"][0]["code"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a["type"] == "create"
    ]


@pytest.mark.parametrize("service_id", [SIGN_ID, SELECT_ID], ids=["sign", "select"])
def test_a_crp_in_the_order_set_is_not_ordered_again(client: FlaskClient, service_id: str) -> None:
    # order-select: the CRP draft is not selected, the spine order alone is
    card = _card(client, service_id, _with_labs(service_id, "1988-5"))
    assert _created(card) == ["4537-7"]
    assert [s["label"] for s in card["suggestions"]] == ["Order an ESR"]
    assert "A CRP is already in this order set: not ordered again." in card["detail"]


def test_with_crp_and_esr_in_the_order_set_no_lab_is_offered(client: FlaskClient) -> None:
    card = _card(client, SIGN_ID, _with_labs(SIGN_ID, "1988-5", "4537-7"))
    assert "suggestions" not in card
    assert "A CRP and an ESR are already in this order set" in card["detail"]


def test_a_crp_drawn_and_awaited_is_named_by_its_day_and_not_ordered(
    client: FlaskClient,
) -> None:
    body = card_request(STALE, SIGN_ID)
    observations = prefetched(body, "Observation")
    latest = next(o for o in observations if o["id"].endswith("crp-d20"))
    day28 = next(o for o in observations if o["id"].endswith("pain-d28"))
    drawn = {**copy.deepcopy(latest), "id": "drawn-d28", "status": "registered"}
    drawn["effectiveDateTime"] = day28["effectiveDateTime"]
    del drawn["valueQuantity"], drawn["issued"]
    for bundle in body["prefetch"].values():
        entries = bundle.get("entry", []) if isinstance(bundle, dict) else []
        if any(e["resource"] is latest for e in entries):
            entries.append({"resource": drawn})
    card = _card(client, SIGN_ID, body)
    assert "A CRP drawn on day 28 awaits its result (status registered)" in card["detail"]
    assert card["summary"].endswith("CRP result awaited")
    assert _created(card) == ["4537-7"]
