"""Which outcome a card counts with when its feedback says both.

In the CDS Hooks sandbox a card stays on screen after its suggestion is taken; closing it
sends "overridden" with no reason, and the report counted the taken suggestion as an
override (seen in a browser). An integration review's card got accepted, overridden with
a reason, accepted: the override vanished without a word. Now a reasonless override after
an acceptance leaves it accepted, and every card with both outcomes is counted.
"""

from __future__ import annotations

from typing import Any

from cds_service.tools.report import build_report
from tests.stores.test_audit import record

SYSTEM = "https://spine-cds.invalid/CodeSystem/override-reason"


def feedback(card: str, outcome: str, reason: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"card": card, "outcome": outcome}
    if reason:
        entry["overrideReason"] = {"reason": {"system": SYSTEM, "code": reason}}
    return {"entry": entry}


def test_closing_a_card_after_taking_its_suggestion_leaves_it_accepted() -> None:
    cards = ("c-closed", "c-changed-mind", "c-accepted-last", "c-once")
    report = build_report(
        [record(card_uuids=cards)],
        [
            feedback("c-closed", "accepted"),
            feedback("c-closed", "overridden"),  # closed after the suggestion was taken
            feedback("c-changed-mind", "accepted"),
            feedback("c-changed-mind", "overridden", "surgical-planning"),
            feedback("c-accepted-last", "overridden", "surgical-planning"),
            feedback("c-accepted-last", "accepted"),
            feedback("c-once", "overridden"),
        ],
    )
    acceptance = report.acceptance["advise-against"]
    assert (acceptance.cards, acceptance.accepted, acceptance.overridden) == (4, 2, 2)
    assert report.conflicting_feedback == 3
    assert report.to_dict()["conflictingFeedback"] == 3
