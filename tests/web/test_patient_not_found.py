"""A Patient key that holds no Patient of this request: the age is unknown, so no advice
against imaging, as when the Patient could not be read (an attack review: ``"patient":
null`` gave "Routine repeat spine MRI not recommended" with the age unknown, while a key
left out gave insufficient data, "age not known")."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request


def _answer(client: FlaskClient, patient: Any) -> dict[str, Any]:
    body = card_request("e01-improving")
    body["prefetch"]["patient"] = patient
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    (card,) = response.get_json()["cards"]
    result: dict[str, Any] = card["extension"]["spine-cds-assessment"]
    return {"summary": card["summary"], **result}


def test_the_patient_as_read_leaves_the_advice(client: FlaskClient) -> None:
    body = card_request("e01-improving")
    answer = _answer(client, body["prefetch"]["patient"])
    assert answer["recommendation"] == "advise-against"


@pytest.mark.parametrize(
    "patient",
    [None, {"resourceType": "Bundle", "type": "searchset", "entry": []}],
    ids=["null", "empty-bundle"],
)
def test_no_patient_found_is_no_advice_against_imaging(client: FlaskClient, patient: Any) -> None:
    answer = _answer(client, patient)
    assert answer["recommendation"] == "insufficient-data"
    assert "age-unread" in answer["missing"]
    assert "age not known" in answer["summary"]
