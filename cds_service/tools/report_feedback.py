"""Which outcome each card shown counts with, from the feedback received for it.

A card uuid is stable (the same patient, order and data give the same card), so a card
shown twice is counted once, and its outcome is its last feedback: the last given, by
``outcomeTimestamp``, in the order ``FeedbackStore.all`` hands them in, not the last to
arrive (an EHR may send a late one), except that an override without a reason after an
acceptance leaves it accepted: in the CDS Hooks sandbox (and EHRs like it) a card stays
on screen after its suggestion is taken, and closing it sends "overridden" with no
reason. Cards that got both outcomes are counted, so that the rule is never silent.
Pure: feedback entries in, outcomes out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def card_outcomes(
    feedback: Iterable[Mapping[str, Any]], shown: Mapping[str, str]
) -> tuple[dict[str, Mapping[str, Any]], int, int]:
    """For the cards in ``shown`` (card uuid -> decision): the entry each counts with,
    how many entries named a card not shown (not counted), and how many cards got both
    outcomes."""
    outcome: dict[str, Mapping[str, Any]] = {}
    said: dict[str, set[str]] = defaultdict(set)  # card uuid -> outcomes received
    unlinked = 0
    for item in feedback:
        entry = item.get("entry")
        if not isinstance(entry, Mapping):
            continue
        card = str(entry.get("card", ""))
        if card not in shown:
            unlinked += 1
            continue
        said[card].add(str(entry.get("outcome")))
        if not _dismissal_after_acceptance(outcome.get(card), entry):
            outcome[card] = entry
    conflicting = sum(1 for outcomes_of in said.values() if len(outcomes_of) > 1)
    return outcome, unlinked, conflicting


def _dismissal_after_acceptance(before: Mapping[str, Any] | None, entry: Mapping[str, Any]) -> bool:
    """An override with no reason arriving after an acceptance: the card closed after its
    suggestion was taken, not a change of mind."""
    return (
        before is not None
        and before.get("outcome") == "accepted"
        and entry.get("outcome") == "overridden"
        and not entry.get("overrideReason")
    )
