"""The example patients, placed for the CDS Hooks sandbox, give their printed card at any
hour of the day.

The sandbox's orders carry no ``authoredOn``, so the service judges them at the moment
they are placed. A tester loading the examples at 01:50 UTC saw e5 and e10 say "latest
CRP 13 days old": the day's results, stored at 08:00 local time, were still in the future
for a patient at UTC-8. ``load_examples_as_of`` places each order on today in its own
time zone with nothing dated after the moment of loading. The service's clock is set for
the test (the one fault a real clock will not produce on demand: another hour).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.discovery import load_discovery
from cds_service.examples import Example, load_examples, load_examples_as_of
from cds_service.runtime import Runtime
from tests.builders import SELECT_ID
from tests.support.ehr_calls import local_prefetch, order_request

HOURS = [datetime(2026, 12, 7, h, m, tzinfo=UTC) for h, m in ((1, 50), (7, 30), (15, 0), (23, 40))]


def sandbox_answer(client: FlaskClient, example: Example) -> str:
    """The recommendation for the example's order as the sandbox sends it: no date."""
    order = {k: v for k, v in example.draft_order.items() if k != "authoredOn"}
    body = order_request("order-select", example.patient_id, order)
    service = load_discovery().services[SELECT_ID]
    resources = [e["resource"] for e in example.bundle["entry"]]
    body["prefetch"] = local_prefetch(service.prefetch, body["context"], resources)
    response = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert response.status_code == 200, response.get_json()
    cards: list[dict[str, Any]] = response.get_json()["cards"]
    return (
        str(cards[0]["extension"]["spine-cds-assessment"]["recommendation"]) if cards else "no-card"
    )


def at(client: FlaskClient, now: datetime) -> None:
    runtime: Runtime = client.application.extensions["spine_cds"]
    runtime.now = lambda: now


def settable(example: Example) -> bool:
    """An order the sandbox's PAMA tab can place (no priority, no stated reason)."""
    return not {"priority", "reasonCode"} & set(example.draft_order)


@pytest.mark.parametrize("now", HOURS, ids=[h.strftime("%H%M") for h in HOURS])
def test_every_example_gives_its_printed_card_at_this_hour(
    client: FlaskClient, now: datetime
) -> None:
    at(client, now)
    differ = {
        e.key: answer
        for e in load_examples_as_of(now)
        if settable(e) and (answer := sandbox_answer(client, e)) != e.expected
    }
    assert differ == {}


def test_one_date_for_all_gave_other_cards_in_the_early_hours(client: FlaskClient) -> None:
    """What the tester saw: the placement this replaced, at 01:50 UTC."""
    now = HOURS[0]
    at(client, now)
    differ = [
        e.key
        for e in load_examples(now.date())
        if settable(e) and sandbox_answer(client, e) != e.expected
    ]
    assert differ == ["e05-mixed-units", "e10-entered-in-error"]


def _instants(value: Any) -> list[datetime]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _instants(v)]
    if isinstance(value, list):
        return [t for v in value for t in _instants(v)]
    if isinstance(value, str) and len(value) > 10 and value[4] == "-" and value[10] == "T":
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return []
        return [when] if when.tzinfo is not None else []
    return []


def test_nothing_is_dated_after_the_moment_of_loading() -> None:
    now = HOURS[0]
    for example in load_examples_as_of(now):
        stamps = _instants(example.bundle) + _instants(example.draft_order)
        assert stamps and max(stamps) <= now, example.key
