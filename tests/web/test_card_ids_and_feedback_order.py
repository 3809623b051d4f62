"""Card uuids and feedback through the real service (gunicorn, development mode, SQLite).

An outside security and integration review found three things, each reproduced here:

- an audit row gave its patient away through its card uuid: the uuid was an unkeyed
  uuid5 over the patient id and the orders, rules and figures the same row keeps, so
  trying ids until one gave the row's uuid found the patient (a numeric id among 200,000
  in 3.5 s), whatever ``audit_patient_id = hash`` promised;
- the report counted a card with the feedback that arrived last, not the last one given:
  an override at 23:00 followed by a late "accepted" stamped 22:00 was counted accepted;
- the same outcome sent with its time spelled three ways (``Z``, ``+00:00``, ``.000Z``)
  was stored three times, and counted as three by anyone reading the table.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from cds_service.cli import main
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.audit_wait import eventually
from tests.support.ehr_calls import card_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HOOK = f"/cds-services/{SELECT_ID}"
FEEDBACK = f"{HOOK}/feedback"
# The namespace the card uuids were made in (cds_service/cards/identity.py), as the
# review's script used it.
CARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://spine-cds.invalid/card")


@dataclass(frozen=True)
class Service:
    url: str
    database: Path

    def call(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(self.url + HOOK, json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        (card,) = answer.json()["cards"]
        assert isinstance(card, dict)
        return card

    def feedback(self, *entries: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(self.url + FEEDBACK, json={"feedback": list(entries)}, timeout=30)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def audit_row(self, hook_instance: str) -> tuple[str, list[str], dict[str, Any]]:
        """The patient key, card uuids and detail of the audit row of one call."""

        def read() -> list[tuple[str, str, str]]:
            with sqlite3.connect(self.database) as db:
                return db.execute(
                    "SELECT patient_key, card_uuids, detail FROM audit_log WHERE hook_instance = ?",
                    (hook_instance,),
                ).fetchall()

        ((patient_key, cards, detail),) = eventually(read, bool)
        return patient_key, json.loads(cards), json.loads(detail)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    where = tmp_path_factory.mktemp("service")
    database = where / "spine-cds.sqlite3"
    env = {"SPINE_CDS_DATABASE_PATH": str(database)}
    with ServiceProcess(env=env, workers=2, log_path=where / "service.log") as process:
        yield Service(process.url, database)


def for_patient(body: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """``body`` for another patient id with the same records: the patient's id and every
    reference to it changed, nothing else (the records' own ids stay as they are)."""
    old = body["context"]["patientId"]
    text = json.dumps(body).replace(f'"{old}"', f'"{patient_id}"')
    changed: dict[str, Any] = json.loads(text.replace(f'Patient/{old}"', f'Patient/{patient_id}"'))
    changed["hookInstance"] = str(uuid.uuid4())
    return changed


def test_an_audit_row_does_not_lead_back_to_its_patient_through_its_card_uuid(
    service: Service,
) -> None:
    body = for_patient(card_request("e01-improving"), "12824066")  # a numeric id, as some EHRs
    card = service.call(body)
    patient_key, cards, detail = service.audit_row(body["hookInstance"])
    assert cards == [card["uuid"]]
    assert patient_key not in ("12824066", None)  # the audit keeps the keyed hash
    # The review's attack: what the row keeps, with each patient id one may guess.
    rest = {
        "orders": sorted(
            [o["reference"], sorted(f"{c['system']}|{c['code']}" for c in o["codes"])]
            for o in detail["orders"]
        ),
        "recommendation": detail["recommendation"],
        "rules": [r["id"] for r in detail["rulesFired"]],
        "figures": detail["figures"],
    }
    guesses = [str(n) for n in range(12823000, 12825000)]
    found = [
        guess
        for guess in guesses
        if str(
            uuid.uuid5(
                CARD_NAMESPACE,
                json.dumps({**rest, "patient": guess}, sort_keys=True, separators=(",", ":")),
            )
        )
        == card["uuid"]
    ]
    assert found == []


def test_the_card_uuid_is_not_made_from_the_patient_id(service: Service) -> None:
    """The same records under another patient id give the same card and suggestions: the
    uuid comes from the records (the infection's Condition among them), not from the id."""
    body = card_request("e01-improving")
    one = service.call(body)
    other = service.call(for_patient(body, "12824066"))
    assert one["uuid"] == other["uuid"]
    assert [s["uuid"] for s in one["suggestions"]] == [s["uuid"] for s in other["suggestions"]]
    # ... and another infection's record is another card
    elsewhere = json.loads(json.dumps(body).replace("spine-cds-e1-nvo", "spine-cds-e1-nvo-2"))
    elsewhere["hookInstance"] = str(uuid.uuid4())
    assert service.call(elsewhere)["uuid"] != one["uuid"]


def report(service: Service, tmp_path: Path) -> dict[str, Any]:
    config = tmp_path / "spine-cds.toml"
    config.write_text(f"database_path = {json.dumps(str(service.database))}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_card_counts_with_the_feedback_given_last_not_the_one_that_arrived_last(
    service: Service, tmp_path: Path
) -> None:
    body = card_request("e03-plateau")  # a support card, this module's only one
    card = service.call(body)
    service.audit_row(body["hookInstance"])  # stored: the report counts the card shown
    before = report(service, tmp_path)["acceptance"].get("support", {})
    assert before.get("cards") == 1 and before.get("noFeedback") == 1, before
    later = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    reason = card["overrideReasons"][0]
    overridden = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": stamp(later),
    }
    # accepted an hour before the override, and sent after it (a queue, a retry)
    accepted = {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": stamp(later - timedelta(hours=1)),
    }
    assert service.feedback(overridden) == {"stored": 1, "duplicates": 0}
    assert service.feedback(accepted) == {"stored": 1, "duplicates": 0}

    counted = report(service, tmp_path)["acceptance"]["support"]
    assert (counted["accepted"], counted["overridden"]) == (0, 1), counted


def test_one_outcome_is_stored_once_however_its_time_is_spelled(service: Service) -> None:
    card = service.call(card_request("e01-improving"))
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    local = moment + timedelta(hours=2)  # the same instant on a clock at +02:00
    spellings = [
        stamp(moment),
        moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        moment.strftime("%Y-%m-%dt%H:%M:%S.000000z"),
        local.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    ]
    entry = {"card": card["uuid"], "outcome": "accepted"}
    answers = [service.feedback({**entry, "outcomeTimestamp": s}) for s in spellings]
    assert answers == [{"stored": 1, "duplicates": 0}] + [{"stored": 0, "duplicates": 1}] * 4
    with sqlite3.connect(service.database) as db:
        kept = db.execute(
            "SELECT outcome_timestamp, entry_json FROM feedback WHERE card_uuid = ?",
            (card["uuid"],),
        ).fetchall()
    assert [(t, json.loads(e)["outcomeTimestamp"]) for t, e in kept] == [(stamp(moment),) * 2]
