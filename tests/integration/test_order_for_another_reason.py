"""A draft ordered for another reason beside a red flag, through gunicorn: the card says
the flag stands on its own, and neither changes the draft nor rates it (an outside
clinician's review: a lumbar CT ordered for a fall beside a new epidural abscess was rated
"not appropriate" and offered as "Order MRI of the whole spine ... instead", which would
cancel the CT its own reason asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import card_request
from tests.support.ratings import ratings_by_id

pytestmark = pytest.mark.integration

FALL = {
    "coding": [
        {
            "system": "http://hl7.org/fhir/sid/icd-10-cm",
            "code": "W19.XXXA",
            "display": "Unspecified fall, initial encounter",
        }
    ],
    "text": "fall",
}
LUMBAR_CT = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72131"}]}


def _draft(body: dict[str, Any]) -> dict[str, Any]:
    (entry,) = body["context"]["draftOrders"]["entry"]
    draft: dict[str, Any] = entry["resource"]
    return draft


def _call(
    service: ServiceProcess, reason: bool, example: str = "e11-epidural-abscess"
) -> dict[str, Any]:
    body = card_request(example)
    _draft(body)["code"] = LUMBAR_CT
    if reason:
        _draft(body)["reasonCode"] = [FALL]
    response = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_ct_for_a_fall_beside_a_new_abscess_is_neither_changed_nor_rated(
    tmp_path: Path,
) -> None:
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, workers=1, log_path=tmp_path / "service.log") as service:
        plain = _call(service, reason=False)
        for_a_fall = _call(service, reason=True)
        emergency = _call(service, reason=True, example="e02-cauda-equina")
    # without a stated reason the CT is the card's to judge: changed into the MRI the
    # abscess needs, and rated (the comparison that makes the test able to fail)
    (card,) = plain["cards"]
    assert card["suggestions"]
    assert set(ratings_by_id(plain).values()) == {"not-appropriate"}
    # ordered for a fall: the flag's card stands and names the reason, the CT is kept
    (card,) = for_a_fall["cards"]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "support"
    assert "Ordered for “Unspecified fall, initial encounter”" in card["detail"]
    assert "the red flag above stands on its own" in card["detail"]
    draft_id = _draft(card_request("e11-epidural-abscess"))["id"]
    assert not [
        a
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a.get("resource", {}).get("id") == draft_id
    ]
    assert ratings_by_id(for_a_fall) == {}
    assert "MRI" in card["summary"]  # the study the abscess needs is still named
    # ... and ordered beside the CT, one click away (the clinician's re-run: with the CT
    # the only draft, the card offered nothing at all)
    (added,) = _created(card)
    assert added["resource"]["code"]["text"].startswith("MRI of the whole spine")
    assert "priority" not in added["resource"]
    # beside a new cauda equina syndrome: the emergency MRI, STAT, the CT kept
    (card,) = emergency["cards"]
    assert card["indicator"] == "critical"
    (added,) = _created(card)
    assert added["resource"]["priority"] == "stat"
    assert added["resource"]["subject"] == _draft(card_request("e02-cauda-equina"))["subject"]
    assert [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in added["resource"]["extension"]
        if e["url"].endswith("pama-rating")
    ] == ["appropriate"]
    assert ratings_by_id(emergency) == {}
    # its line says why the CT does not answer, not that it is the wrong study
    assert "ordered for its own reason cannot exclude" in card["detail"]
    assert "CT only if MRI is impossible" not in card["detail"]


def _created(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The create actions of the card's suggestions, each checked to be recommended."""
    found = []
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            assert action["type"] == "create", action
            assert suggestion["isRecommended"] is True
            found.append(action)
    return found
