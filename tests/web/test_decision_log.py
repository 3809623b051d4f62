"""An answered hook call's request log line carries its decision and, when no card is
given, the reason code, as the audit records them; never a patient id.

An integrator's review: a 200 with ``{"cards": []}`` logged only ``status=200
duration_ms=... hook_instance=...``, so "the card never shows" (at 3 a.m., from the log)
could only be answered from the audit database.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cds_service.app import create_app
from tests.builders import (
    EMPTY_PREFETCH,
    SELECT_ID,
    hook_request,
    medication_request,
    service_request,
)
from tests.conftest import make_settings
from tests.web.test_audit_and_shadow import audit_records, improving_patient_request

HOOK = f"/cds-services/{SELECT_ID}"
PATIENT_ID = "patient-log-5521"


def request_line(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("orders", "prefetch", "fields"),
    [
        # not a spine order: no card
        (
            [medication_request("m1", patient_id=PATIENT_ID)],
            EMPTY_PREFETCH,
            " decision=not-applicable reason=no-spine-imaging-order",
        ),
        # a spine order, no infection recorded: no card
        (
            [service_request("o1", patient_id=PATIENT_ID)],
            EMPTY_PREFETCH,
            " decision=not-applicable reason=no-active-nvo-episode",
        ),
    ],
)
def test_an_empty_answer_says_why_in_its_request_line(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    orders: list[dict[str, object]],
    prefetch: dict[str, object],
    fields: str,
) -> None:
    body = hook_request("order-select", orders, patient_id=PATIENT_ID, prefetch=prefetch)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        answer = client.post(HOOK, json=body)
    assert answer.status_code == 200
    assert answer.get_json() == {"cards": []}
    line = request_line(caplog)
    assert line.endswith(f"hook_instance={body['hookInstance']}{fields}")
    [record] = audit_records(client.application)
    assert fields == f" decision={record.decision} reason={record.reason}"
    assert PATIENT_ID not in caplog.text


def test_a_card_says_its_recommendation_and_no_patient_data(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body, patient_id = improving_patient_request(client.application)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        answer = client.post(HOOK, json=body)
    assert answer.status_code == 200 and answer.get_json()["cards"]
    line = request_line(caplog)
    assert line.endswith(" decision=advise-against")
    assert patient_id not in caplog.text


def test_in_shadow_mode_the_line_says_no_card_was_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An outside review: a shadow pilot's log said decision=advise-against, read after
    # "did the doctor get the warning?" as a card shown, when the answer was empty.
    app = create_app(make_settings(tmp_path, shadow_mode=True))
    body, patient_id = improving_patient_request(app)
    with caplog.at_level(logging.INFO, logger="cds_service"):
        answer = app.test_client().post(HOOK, json=body)
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}
    assert request_line(caplog).endswith(" decision=advise-against shadow=1")
    assert patient_id not in caplog.text


def test_a_refusal_keeps_its_own_fields(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    orders = [service_request("o1", patient_id=PATIENT_ID)]
    body = hook_request("order-select", orders, patient_id=PATIENT_ID)  # no data at all
    with caplog.at_level(logging.INFO, logger="cds_service"):
        answer = client.post(HOOK, json=body)
    assert answer.status_code == 412
    line = request_line(caplog)
    assert "decision=" not in line and "error=data_unavailable" in line
