"""Replay agrees with the live service: the examples, through gunicorn and through replay.

Each example patient is written as a Bulk export with its order as a ServiceRequest;
``spine-cds replay`` gives each order a decision. The same patient and order, sent as an
EHR sends them (order-select with prefetch) to the service under gunicorn, must get the
same decision (no card where the replay says not-applicable or finds no spine order).
"""

from __future__ import annotations

import csv
import json
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import requests

from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import load_examples
from cds_service.impact.replayer import Replayer, worker_settings
from cds_service.impact.run import ROWS_CSV, ReplayOptions, run_replay
from cds_service.impact.summary import Summary
from cds_service.invocation import Outcome
from cds_service.settings import load_settings
from cds_service.stores import PatientKeyer
from cds_service.tools.render import decision_of
from spine_cds_dev.service_process import ServiceProcess

ORDER_DATE = date(2026, 3, 2)
HOOK = "order-select"


def _write_export(directory: Path) -> None:
    by_type: dict[str, list[str]] = defaultdict(list)
    for example in load_examples(ORDER_DATE):
        order = dict(example.draft_order, status="active")
        for resource in [*bundle_resources(example.bundle), order]:
            by_type[resource["resourceType"]].append(json.dumps(resource))
    directory.mkdir()
    for rtype, lines in by_type.items():
        (directory / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _replayed(tmp_path: Path) -> dict[str, str]:
    export = tmp_path / "export"
    _write_export(export)
    run_replay(
        ReplayOptions(
            inputs=[export],
            out_dir=tmp_path / "out",
            settings=load_settings(environ={}),
            patient_key=PatientKeyer("plain"),
            workers=1,
        )
    )
    with (tmp_path / "out" / ROWS_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    decisions = {}
    for row in rows:
        decision = row["decision"]
        decisions[row["patient"]] = "no-card" if decision == "not-applicable" else decision
    return decisions


def _card_words(response: dict[str, Any]) -> list[dict[str, Any]]:
    """What a clinician reads on each card: summary, indicator, detail, suggestion labels
    (not the uuids, drawn anew each call, nor the links, which name the live server)."""
    return [
        {
            "summary": card.get("summary"),
            "indicator": card.get("indicator"),
            "detail": card.get("detail"),
            "suggestions": [s.get("label") for s in card.get("suggestions", [])],
        }
        for card in response.get("cards", [])
    ]


def _replayed_cards() -> dict[str, list[dict[str, Any]]]:
    """Each example's order replayed (the export's resources, the order as it was) with
    its whole answer, by patient."""
    replayer = Replayer(worker_settings(load_settings(environ={})))
    try:
        out: dict[str, list[dict[str, Any]]] = {}
        for example in load_examples(ORDER_DATE):
            order = dict(example.draft_order, status="active")
            outcomes: dict[str, Outcome] = {}
            resources = [*bundle_resources(example.bundle), order]
            rows = replayer.replay_patient(example.patient_id, resources, {}, Summary(), outcomes)
            for row in rows:
                out[example.patient_id] = _card_words(outcomes[row.order_id].response)
        return out
    finally:
        replayer.close()


def test_replay_gives_the_live_services_answer(tmp_path: Path) -> None:
    replayed = _replayed(tmp_path)
    live = {}
    live_cards: dict[str, list[dict[str, Any]]] = {}
    # its own database: run from the checkout, the default would be ./spine-cds.sqlite3
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "spine-cds.sqlite3")}
    with ServiceProcess(env=env, workers=1, log_path=tmp_path / "service.log") as service:
        session = requests.Session()
        services = session.get(f"{service.url}/cds-services", timeout=10).json()["services"]
        entry = next(s for s in services if s["hook"] == HOOK)
        for example in load_examples(ORDER_DATE):
            request = build_request(
                HOOK, str(uuid.uuid4()), example.patient_id, example.draft_order
            )
            request["prefetch"] = local_prefetch(
                entry["prefetch"], request["context"], bundle_resources(example.bundle)
            )
            response = session.post(
                f"{service.url}/cds-services/{entry['id']}", json=request, timeout=30
            )
            assert response.status_code == 200, response.text
            live[example.patient_id] = decision_of(response.json())
            live_cards[example.patient_id] = _card_words(response.json())
    compared = {pid: (replayed.get(pid, "no-card"), decision) for pid, decision in live.items()}
    assert {pid: pair for pid, pair in compared.items() if pair[0] != pair[1]} == {}
    # the cards' words too: what a decision does not show (the operation, the study and
    # the report of e38-e40, named on the card) must reach the replay as it reaches live
    replay_cards = _replayed_cards()
    assert {
        pid: (replay_cards.get(pid), words)
        for pid, words in live_cards.items()
        if replay_cards.get(pid, []) != words
    } == {}
    assert {"spine-cds-e38", "spine-cds-e39", "spine-cds-e40"} <= set(replayed)
    # not a vacuous agreement: every kind of answer is there, and most examples replayed
    assert set(live.values()) >= {"advise-against", "support", "support-urgent", "no-card"}
    assert len(replayed) >= 28
