"""POST /cds-services/{id}/feedback: what the clinician did with a card.

Feedback is bounded (``MAX_FEEDBACK_BYTES``; the schema bounds each field), only the
spec's fields are kept (``stores.feedback.spec_fields``), and in secure mode a client
may give feedback only on cards this service showed to it: the audit keeps each card
uuid with the client it was shown to (``audit_cards``), so one client cannot override,
or accept, another's card. In development mode callers are not identified and
feedback is taken as sent. Card and suggestion uuids are read in lower case, whatever
case they come in (``_in_one_case``); an outcome time is read once, by the store
(``stores.feedback.outcome_instant``), which keeps it as its UTC instant in one spelling.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from cds_service.cards.identity import suggestion_uuids
from cds_service.errors import ApiError
from cds_service.routes import entrance
from cds_service.routes.responses import json_response
from cds_service.runtime import Runtime
from cds_service.stores.feedback import not_stored, outcome_instant
from cds_service.validation import MAX_REPORTED_ERRORS, FieldError, shown_name

blueprint = Blueprint("feedback", __name__)

# 100 entries (the schema's maximum) of a typical size fit many times over; the hook
# bodies' max_body_bytes (megabytes of prefetch) is no bound for a few card outcomes.
MAX_FEEDBACK_BYTES = 64 * 1024


def _in_one_case(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with each card and accepted-suggestion uuid in lower case, as this
    service writes them. A uuid is the same whatever its letters' case (RFC 4122), and an
    attack review found the upper-case form of a card shown to the client refused in
    secure mode (the audit keeps the card as shown) and stored as a second card in
    development mode (the report then counted it twice). The ``outcomeTimestamp`` is left
    to the store, which keeps one spelling of its instant (``stores.feedback.in_utc``)."""
    for entry in entries:
        entry["card"] = entry["card"].lower()
        for suggestion in entry.get("acceptedSuggestions") or ():
            suggestion["id"] = suggestion["id"].lower()
    return entries


def _check_size() -> None:
    length = request.content_length
    if length is not None and length > MAX_FEEDBACK_BYTES:
        raise ApiError(
            413,
            "request_entity_too_large",
            f"a feedback body may be at most {MAX_FEEDBACK_BYTES} bytes; this one is {length}:"
            " send the entries in several calls",
        )


# A card answered "not yet recorded" is that for this long at most, per worker: a card
# shown is in the audit well within it (batches are written every 50 ms), and a client
# that sends feedback on cards never shown gets its 400 in the end, however many other
# feedback calls keep the wait taken (an integration review's re-check: 15 tries in 15 s,
# all 503, beside a flood of unknown cards).
DEFER_SECONDS = 5.0
_DEFERRED_KEPT = 4096  # (client, card) pairs remembered per worker, oldest forgotten
_deferred: OrderedDict[tuple[str, str], float] = OrderedDict()
_deferred_lock = threading.Lock()


def _deferred_long_enough(client: str, cards: set[str]) -> bool:
    """Whether every card was already answered "not yet recorded" to ``client`` at least
    DEFER_SECONDS ago; the others are remembered from now."""
    now = time.monotonic()
    with _deferred_lock:
        firsts = [_deferred.setdefault((client, card), now) for card in sorted(cards)]
        while len(_deferred) > _DEFERRED_KEPT:
            _deferred.popitem(last=False)
    return all(now - first >= DEFER_SECONDS for first in firsts)


def _check_cards_shown(
    runtime: Runtime, client: str, service_id: str, entries: Sequence[dict[str, Any]]
) -> None:
    """400 naming each entry whose card this service never showed to ``client``; 503 to
    send again when a card not found may still be on its way to the audit (the wait for
    another worker's writer was taken by other calls), so that no feedback is lost."""
    with runtime.turns.idle():  # it may wait for another worker's writer
        unknown, waited = runtime.stores.audit.cards_not_shown(
            [entry["card"] for entry in entries], client, service_id
        )
    if unknown and not waited and not _deferred_long_enough(client, unknown):
        raise ApiError(
            503,
            "card_not_yet_recorded",
            "a card named here may not be recorded yet (other feedback calls are waiting for"
            " the audit): send the same feedback again in a second",
            headers={"Retry-After": "1"},
        )
    problems = [
        FieldError(
            f"$.feedback[{i}].card",
            "no card with this uuid was shown to your client by this service (or its"
            " record has passed the audit retention): feedback is taken only from the"
            " client that was shown the card",
        )
        for i, entry in enumerate(entries)
        if entry["card"] in unknown
    ]
    if problems:
        raise ApiError(
            400, "unknown_card", "feedback names a card not shown to this client", problems
        )


# How far ahead of this service's clock an outcome may be dated (the EHR's clock may run
# a little fast); later is a time that has not come.
FUTURE_SKEW = timedelta(minutes=5)


def _check_timestamps(entries: Sequence[dict[str, Any]], now: datetime) -> list[FieldError]:
    """Each ``outcomeTimestamp`` that has the form of a date-time but names none (month 13,
    25 o'clock, 31 February: the schema checks the form, this the date), or names a time
    that has not come, so that what the report reads back is a time that was."""
    problems = []
    for i, entry in enumerate(entries):
        path = f"$.feedback[{i}].outcomeTimestamp"
        try:
            when = outcome_instant(entry["outcomeTimestamp"])
        except ValueError:
            problems.append(
                FieldError(
                    path,
                    "expected a real date and time with its time zone (RFC 3339), e.g. "
                    "2026-12-06T10:15:00Z",
                )
            )
            continue
        if when > now + FUTURE_SKEW:
            # The tolerance and this clock's time, so that an EHR team sees clock skew
            # (an integrator's review: "has not come" alone did not say by how much).
            clock = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            minutes = int(FUTURE_SKEW.total_seconds() // 60)
            problems.append(
                FieldError(
                    path,
                    "expected the time the clinician acted: this one has not come (more than "
                    f"{minutes} minutes ahead of the service's clock, which reads {clock}; "
                    "is the EHR's clock fast?)",
                )
            )
    return problems


def _check_outcomes(entries: Sequence[dict[str, Any]]) -> list[FieldError]:
    """Entries that contradict themselves, which the report would otherwise count one way
    and drop the rest of (an integration tester's finding): an override reason on an
    accepted card, accepted suggestions on an overridden one, and a suggestion the card
    never offered (each card's suggestions have uuids derived from its own). The uuids
    are in lower case (``_in_one_case``)."""
    problems = []
    for i, entry in enumerate(entries):
        outcome = entry["outcome"]
        if outcome == "accepted" and "overrideReason" in entry:
            problems.append(
                FieldError(
                    f"$.feedback[{i}].overrideReason",
                    "an override reason goes with outcome 'overridden'; this entry is 'accepted'",
                )
            )
        accepted = entry.get("acceptedSuggestions") or []
        if outcome == "overridden" and accepted:
            problems.append(
                FieldError(
                    f"$.feedback[{i}].acceptedSuggestions",
                    "accepted suggestions go with outcome 'accepted'; this entry is 'overridden'",
                )
            )
            continue
        offered = suggestion_uuids(entry["card"])
        problems.extend(
            FieldError(
                f"$.feedback[{i}].acceptedSuggestions[{j}].id",
                "no suggestion with this uuid is offered on this card",
            )
            for j, suggestion in enumerate(accepted)
            if suggestion["id"] not in offered
        )
    return problems


@blueprint.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    runtime = entrance.runtime()
    entrance.service(runtime, service_id)
    caller = entrance.authenticate(runtime, "feedback", service_id)
    _check_size()
    body = entrance.validated(runtime, "feedback", entrance.json_body(runtime))
    entries = _in_one_case(body["feedback"])
    problems = _check_timestamps(entries, datetime.now(UTC)) + _check_outcomes(entries)
    if problems:
        raise ApiError(400, "invalid_request", "feedback that cannot be true as sent", problems)
    if caller is not None:
        _check_cards_shown(runtime, caller.iss, service_id, entries)
    client = caller.iss if caller is not None else None
    result = runtime.stores.feedback.add(service_id, entries, client=client)
    answer: dict[str, Any] = {"stored": result.stored, "duplicates": result.duplicates}
    dropped = not_stored(body, shown_name)
    if dropped:
        # at most MAX_REPORTED_ERRORS named, then how many more: the answer stays small
        more = len(dropped) - MAX_REPORTED_ERRORS
        answer["notStored"] = dropped[:MAX_REPORTED_ERRORS] + (
            [f"({more} more)"] if more > 0 else []
        )
    return json_response(answer)
