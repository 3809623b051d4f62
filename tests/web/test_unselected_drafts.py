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


def _card(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    (card,) = response.get_json()["cards"]
    result: dict[str, Any] = card
    return result


def test_the_unselected_mri_that_answers_is_named(client: FlaskClient) -> None:
    card = _card(client, _with_other_draft(MRI))
    assert (
        "The lumbar spine MRI also in this order set, not selected here, answers this question."
        in card["detail"]
    )


CERVICAL_MRI = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72156"}]}


def _routine_lumbar_mri_and(
    suffix: str, code: dict[str, Any], select_it: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """e02 (a new cauda equina syndrome, a lumbar infection) with a routine lumbar MRI and
    a second draft of ``code``: the second selected (``select_it``), else the MRI."""
    body = card_request("e02-cauda-equina")
    (entry,) = body["context"]["draftOrders"]["entry"]
    entry["resource"]["code"] = MRI
    entry["resource"]["priority"] = "routine"
    second = copy.deepcopy(entry)
    second["resource"]["id"] = entry["resource"]["id"] + suffix
    second["resource"]["code"] = code
    body["context"]["draftOrders"]["entry"].append(second)
    chosen = second if select_it else entry
    body["context"]["selections"] = [f"ServiceRequest/{chosen['resource']['id']}"]
    return body, entry, second


def test_on_an_urgent_card_the_unselected_draft_that_answers_is_made_stat(
    client: FlaskClient,
) -> None:
    """An outside clinician's review: a new cauda equina syndrome, a lumbar infection,
    and a cervical MRI selected beside a routine lumbar MRI not selected. The card asked
    for an emergency MRI, rated the cervical one not appropriate, and offered nothing,
    silent over the lumbar MRI in the same order set."""
    body, entry, _ = _routine_lumbar_mri_and("-cervical", CERVICAL_MRI, select_it=True)
    card = _card(client, body)
    assert card["indicator"] == "critical"
    assert (
        "The lumbar spine MRI also in this order set, not selected here, answers this "
        "question: make it STAT and extend it to the whole spine (below)." in card["detail"]
    )
    updates = [a for s in card["suggestions"] for a in s["actions"] if a["type"] == "update"]
    assert [u["resource"]["id"] for u in updates] == [entry["resource"]["id"]]
    assert updates[0]["resource"]["priority"] == "stat"


def test_beside_a_selected_draft_that_answers_its_unselected_twin_is_left_alone(
    client: FlaskClient,
) -> None:
    """A re-check: a lumbar MRI selected beside the same lumbar MRI not selected, a new
    cauda equina syndrome: both were made STAT, which orders the MRI twice."""
    body, entry, twin = _routine_lumbar_mri_and("-twin", MRI, select_it=False)
    card = _card(client, body)
    changed = {a.get("resource", {}).get("id") for s in card["suggestions"] for a in s["actions"]}
    assert twin["resource"]["id"] not in changed
    assert entry["resource"]["id"] in changed
    assert "not selected here" not in card["detail"]
