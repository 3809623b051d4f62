"""Feedback as the CDS Hooks sandbox sends it (docs/sandbox.md, step 7).

Reported from the sandbox in a browser: an override reason without ``display``, and
``accepted`` with the suggestion's id when a suggestion is taken. Both are taken and
kept as sent.
"""

from __future__ import annotations

from flask.testing import FlaskClient

from cds_service.cards.identity import REMOVE_IMAGING, suggestion_uuid
from tests.builders import SELECT_ID

SYSTEM = "https://spine-cds.invalid/CodeSystem/override-reason"
OVERRIDDEN = {
    "card": "1c0c2d1e-7a57-4a32-9a0e-5a1d0f0c6a01",
    "outcome": "overridden",
    "overrideReason": {"reason": {"system": SYSTEM, "code": "surgical-planning"}},
    "outcomeTimestamp": "2026-12-06T09:00:00Z",
}
ACCEPTED = {
    "card": "1c0c2d1e-7a57-4a32-9a0e-5a1d0f0c6a02",
    "outcome": "accepted",
    # the uuid of a suggestion on that card, as the sandbox sends it back
    "acceptedSuggestions": [
        {"id": suggestion_uuid("1c0c2d1e-7a57-4a32-9a0e-5a1d0f0c6a02", REMOVE_IMAGING)}
    ],
    "outcomeTimestamp": "2026-12-06T09:00:01Z",
}


def test_sandbox_feedback_is_taken_as_sent(client: FlaskClient) -> None:
    url = f"/cds-services/{SELECT_ID}/feedback"
    answer = client.post(url, json={"feedback": [OVERRIDDEN, ACCEPTED]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"stored": 2, "duplicates": 0}
    again = client.post(url, json={"feedback": [OVERRIDDEN]})
    assert again.get_json() == {"stored": 0, "duplicates": 1}
    rows = client.application.extensions["spine_cds"].stores.feedback.all()
    entries = sorted((row["entry"] for row in rows), key=lambda entry: str(entry["card"]))
    assert entries == [OVERRIDDEN, ACCEPTED]


def test_a_field_the_service_does_not_keep_is_named_in_the_answer(client: FlaskClient) -> None:
    url = f"/cds-services/{SELECT_ID}/feedback"
    sent = {**OVERRIDDEN, "extension": {"com.example.ehr.unit": "ward 7"}}
    answer = client.post(url, json={"feedback": [sent]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "stored": 1,
        "duplicates": 0,
        "notStored": ["$.feedback[0].extension"],
    }


def test_the_fields_not_kept_are_named_bounded_and_printable(client: FlaskClient) -> None:
    """The re-check: a name of 5,000 characters was echoed whole, control characters as
    sent, and the body's own unknown fields not named at all."""
    url = f"/cds-services/{SELECT_ID}/feedback"
    long_name, control = "x" * 5000, "a\\nb\\u0000c"
    sent = {**OVERRIDDEN, "card": "1c0c2d1e-7a57-4a32-9a0e-5a1d0f0c6a09", long_name: 1}
    sent[control.encode().decode("unicode_escape")] = 2
    body = {"feedback": [sent], "extension": {"x": 1}}
    answer = client.post(url, json=body).get_json()
    names = answer["notStored"]
    assert names[0] == "$.extension"
    assert all(len(n) < 80 and n.isprintable() for n in names), names
    assert len(names) == 3
    many = {**sent, **{f"f{i}": i for i in range(40)}}
    many["card"] = "1c0c2d1e-7a57-4a32-9a0e-5a1d0f0c6a0a"
    listed = client.post(url, json={"feedback": [many]}).get_json()["notStored"]
    assert len(listed) == 21 and listed[-1] == "(22 more)", listed
