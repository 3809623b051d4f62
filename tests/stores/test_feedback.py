"""The feedback store on SQLite and on a real PostgreSQL: idempotent, and nothing lost
when two instances take overlapping feedback at the same time."""

from __future__ import annotations

import copy
import json
import random
import threading
from typing import Any

import pytest

from cds_service.stores import SqlFeedbackStore, dedupe_key
from cds_service.stores.feedback import in_utc, not_stored, outcome_instant, spec_fields
from tests.conftest import Opener

SERVICE = "spine-imaging-nvo"


def entry(card: str, outcome: str = "accepted", **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "card": card,
        "outcome": outcome,
        "outcomeTimestamp": "2024-03-01T10:00:00Z",
    }
    value.update(extra)
    return value


def overridden(card: str, code: str) -> dict[str, Any]:
    reason = {
        "reason": {"system": "http://example.org/override", "code": code},
        "userComment": "synthetic",
    }
    return entry(card, "overridden", overrideReason=reason)


def test_a_repeat_is_recognised_whatever_the_key_order(open_db: Opener) -> None:
    store = SqlFeedbackStore(open_db())
    first = store.add(SERVICE, [entry("c-1"), overridden("c-2", "not-indicated")])
    reordered = {"outcomeTimestamp": "2024-03-01T10:00:00Z", "outcome": "accepted", "card": "c-1"}
    again = store.add(SERVICE, [reordered, overridden("c-2", "not-indicated")])

    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert len(store.all()) == 2


def test_a_different_entry_or_service_is_not_a_repeat(open_db: Opener) -> None:
    store = SqlFeedbackStore(open_db())
    store.add(SERVICE, [overridden("c-1", "a")])
    result = store.add(SERVICE, [overridden("c-1", "b"), entry("c-1")])
    other_service = store.add("another-service", [overridden("c-1", "a")])

    assert result.stored == 2
    assert other_service.stored == 1
    assert [row["service_id"] for row in store.all()] == [
        SERVICE,
        SERVICE,
        SERVICE,
        "another-service",
    ]


def test_a_repeat_within_one_request_is_stored_once(open_db: Opener) -> None:
    store = SqlFeedbackStore(open_db())
    result = store.add(SERVICE, [entry("c-1"), entry("c-1"), entry("c-2")])
    assert (result.stored, result.duplicates) == (2, 1)


def test_only_the_fields_of_the_spec_are_kept(open_db: Opener) -> None:
    store = SqlFeedbackStore(open_db())
    sent = overridden("c-3", "not-indicated")
    spec = copy.deepcopy(sent)
    sent["padding"] = "x" * 1000
    sent["overrideReason"]["reason"]["extra"] = "y"
    sent["overrideReason"]["more"] = "z"
    sent["acceptedSuggestions"] = [{"id": "s-1", "note": "w"}]
    store.add(SERVICE, [sent])
    (row,) = store.all()
    assert row["entry"] == {**spec, "acceptedSuggestions": [{"id": "s-1"}]}


def test_all_keeps_the_whole_entry_and_a_report_can_use_the_columns(open_db: Opener) -> None:
    db = open_db()
    store = SqlFeedbackStore(db)
    sent = overridden("c-9", "patient-preference")
    sent["acceptedSuggestions"] = [{"id": "s-1"}]
    store.add(SERVICE, [sent])

    (row,) = store.all()
    assert row["entry"] == sent
    assert row["service_id"] == SERVICE
    assert isinstance(row["received_at"], str) and row["received_at"]
    with db.transaction(write=False) as tx:
        columns = tx.query(
            "SELECT card_uuid, outcome, override_code, accepted_suggestions FROM feedback"
        )
    assert columns == [("c-9", "overridden", "patient-preference", '[{"id": "s-1"}]')]


def test_the_store_survives_reopening(open_db: Opener) -> None:
    SqlFeedbackStore(open_db()).add(SERVICE, [entry("c-1")])
    reopened = SqlFeedbackStore(open_db())
    assert reopened.add(SERVICE, [entry("c-1")]).duplicates == 1
    assert len(reopened.all()) == 1


def test_concurrent_overlapping_feedback_on_two_instances_loses_nothing(open_db: Opener) -> None:
    """Two instances x 4 threads each send shuffled, overlapping batches at once."""
    instances = [SqlFeedbackStore(open_db()), SqlFeedbackStore(open_db())]
    unique = [overridden(f"card-{i}", f"r{i % 7}") for i in range(40)]
    threads_per_instance = 4
    per_thread = 30  # each thread sends a random three quarters: plenty of overlap
    sent: list[int] = []
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(instances) * threads_per_instance)

    def work(store: SqlFeedbackStore, seed: int) -> None:
        chosen = random.Random(seed).sample(unique, per_thread)
        try:
            barrier.wait()
            for start in range(0, per_thread, 10):
                batch = chosen[start : start + 10]
                result = store.add(SERVICE, batch)
                with lock:
                    sent.append(len(batch))
                    results.append((result.stored, result.duplicates))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(store, n * 100 + k))
        for n, store in enumerate(instances)
        for k in range(threads_per_instance)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    expected_keys = {
        dedupe_key(SERVICE, e)
        for n in range(len(instances))
        for k in range(threads_per_instance)
        for e in random.Random(n * 100 + k).sample(unique, per_thread)
    }
    rows = instances[0].all()
    stored_keys = [dedupe_key(row["service_id"], row["entry"]) for row in rows]
    assert len(stored_keys) == len(set(stored_keys)), "a duplicate was stored"
    assert set(stored_keys) == expected_keys, "an entry was lost"
    assert sum(s for s, _ in results) == len(expected_keys)
    assert sum(s + d for s, d in results) == sum(sent)


def test_two_clients_shown_one_card_each_keep_their_outcome(open_db: Opener) -> None:
    """An attack review: clients A and B were shown the same card (its uuid is the
    decision's); B's identical outcome was answered "duplicates": 1 and dropped."""
    store = SqlFeedbackStore(open_db())
    sent = entry("card-1", "overridden")
    assert store.add(SERVICE, [sent], client="https://a.example").stored == 1
    assert store.add(SERVICE, [sent], client="https://b.example").stored == 1
    again = store.add(SERVICE, [sent], client="https://a.example")
    assert (again.stored, again.duplicates) == (0, 1)
    assert len(store.all()) == 2


def test_one_instant_however_spelled_is_one_outcome_kept_in_utc(open_db: Opener) -> None:
    """A review stored the same outcome three times, its time sent as ``...48Z``,
    ``...48+00:00`` and ``...48.000Z``: the key was over the text, not the instant."""
    store = SqlFeedbackStore(open_db())
    spellings = [
        "2026-12-07T22:10:48Z",
        "2026-12-07T22:10:48+00:00",
        "2026-12-07T22:10:48.000Z",
        "2026-12-07t23:10:48.000000+01:00",
        "2026-12-07T17:10:48-05:00",
    ]
    results = [store.add(SERVICE, [entry("c-1", outcomeTimestamp=s)]) for s in spellings]
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0)] + [(0, 1)] * 4
    assert [row["entry"]["outcomeTimestamp"] for row in store.all()] == ["2026-12-07T22:10:48Z"]
    # a fraction is kept, to the microsecond, in one spelling too
    store.add(SERVICE, [entry("c-2", outcomeTimestamp="2026-12-07T23:10:48.250+01:00")])
    again = store.add(SERVICE, [entry("c-2", outcomeTimestamp="2026-12-07T22:10:48.25Z")])
    assert (again.stored, again.duplicates) == (0, 1)
    assert store.all()[-1]["entry"]["outcomeTimestamp"] == "2026-12-07T22:10:48.25Z"


def test_an_early_year_is_stored_in_four_digits_and_read_back_in_its_order(
    open_db: Opener,
) -> None:
    # an attack review: "0999-06-01T00:00:00Z" was stored as "999-06-01T00:00:00Z", which
    # could not be read back, so the report fell back to the order of arrival
    assert in_utc("0999-06-01T00:00:00Z") == "0999-06-01T00:00:00Z"
    assert outcome_instant(in_utc("0999-06-01T01:00:00+01:00")).year == 999
    store = SqlFeedbackStore(open_db())
    store.add(
        SERVICE, [entry("c-1", outcome="overridden", outcomeTimestamp="2026-12-07T22:00:00Z")]
    )
    store.add(SERVICE, [entry("c-1", outcome="accepted", outcomeTimestamp="0999-06-01T00:00:00Z")])
    assert [row["entry"]["outcome"] for row in store.all()] == ["accepted", "overridden"]


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_outside_the_years_1_to_9999_in_utc_is_refused(stamp: str) -> None:
    with pytest.raises(ValueError, match="outside the years 1-9999"):
        outcome_instant(stamp)


def test_all_gives_feedback_in_the_order_it_was_given_not_received(open_db: Opener) -> None:
    """The report counts a card with its last feedback, in the order ``all`` gives: an
    override at 23:00 followed by a late acceptance stamped 22:00 was counted accepted.
    Ties keep the order of arrival, and a row stored before times were kept in UTC (in
    another zone, whose text sorts elsewhere) takes its place by its instant."""
    db = open_db()
    store = SqlFeedbackStore(db)
    store.add(SERVICE, [overridden("c-1", "surgical-planning")])  # 10:00Z
    store.add(SERVICE, [entry("c-1", outcomeTimestamp="2024-03-01T09:00:00Z")])
    store.add(SERVICE, [entry("c-2", outcomeTimestamp="2024-03-01T10:00:00Z")])  # a tie
    store.add(SERVICE, [entry("c-3", outcomeTimestamp="2024-03-01T09:30:00Z")])
    with db.transaction() as tx:  # as an earlier version kept it: 09:45Z, in another zone
        tx.execute(
            "UPDATE feedback SET entry_json = ? WHERE card_uuid = 'c-3'",
            (json.dumps(entry("c-3", outcomeTimestamp="2024-03-01T11:45:00+02:00")),),
        )
    order = [(row["entry"]["card"], row["entry"]["outcome"]) for row in store.all()]
    assert order == [
        ("c-1", "accepted"),
        ("c-3", "accepted"),
        ("c-1", "overridden"),
        ("c-2", "accepted"),
    ]


def test_every_field_not_kept_is_named_by_its_path() -> None:
    """An integration review sent an entry with an ``extension`` (CDS Hooks reserves it
    everywhere) and got ``{"stored": 1}``, the extension gone without a word."""
    entry = {
        "card": "c",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-12-08T10:00:00Z",
        "extension": {"com.example.ehr": 1},
        "overrideReason": {
            "reason": {"system": "s", "code": "c", "version": "1"},
            "userComment": "x",
            "note": "y",
        },
    }
    accepted = {
        "card": "d",
        "outcome": "accepted",
        "outcomeTimestamp": "2026-12-08T10:00:00Z",
        "extension": {"com.example.ehr": 2},
        "acceptedSuggestions": [{"id": "s", "label": "l"}],
    }
    assert not_stored({"feedback": [entry, accepted], "hookInstance": "x"}) == [
        "$.hookInstance",
        "$.feedback[0].extension",
        "$.feedback[0].overrideReason.note",
        "$.feedback[0].overrideReason.reason.version",
        "$.feedback[1].extension",
        "$.feedback[1].acceptedSuggestions[0].label",
    ]
    # what spec_fields keeps is exactly what is not named
    assert not_stored({"feedback": [spec_fields(entry), spec_fields(accepted)]}) == []
