"""order-select with a spine draft of the order set that is not selected: the card never
changes the selected order into a study another draft already orders (an outside
clinician's review: a lumbar CT selected beside an unselected lumbar MRI, on a plateau,
was offered as "Order MRI of the lumbar spine without and with gadolinium instead",
which would order that MRI twice)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request

CT = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72131"}]}
MRI = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}]}
MRI_PLAIN = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}


def _with_other_draft(code: dict[str, Any] | None) -> dict[str, Any]:
    body = card_request("e03-plateau")
    (entry,) = body["context"]["draftOrders"]["entry"]
    entry["resource"]["code"] = CT
    if code is not None:
        other = copy.deepcopy(entry)
        other["resource"]["id"] = entry["resource"]["id"] + "-mri"
        other["resource"]["code"] = code
        body["context"]["draftOrders"]["entry"].append(other)
    return body


def _updates(client: FlaskClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    (card,) = response.get_json()["cards"]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "support"
    return [a for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "update"]


def test_the_ct_alone_is_offered_as_the_mri(client: FlaskClient) -> None:
    (update,) = _updates(client, _with_other_draft(None))
    assert update["resource"]["code"]["coding"][0]["code"] == "72158"


def test_beside_an_unselected_mri_of_the_level_nothing_is_changed(client: FlaskClient) -> None:
    assert _updates(client, _with_other_draft(MRI)) == []


@pytest.mark.parametrize("code", [MRI_PLAIN], ids=["mri-without-contrast"])
def test_an_unselected_mri_that_cannot_answer_leaves_the_offer(
    client: FlaskClient, code: dict[str, Any]
) -> None:
    # an MRI without gadolinium does not order the study the card asks for
    (update,) = _updates(client, _with_other_draft(code))
    assert update["resource"]["code"]["coding"][0]["code"] == "72158"
