"""A card answered "not yet recorded" (503) is that for a bounded time per worker: an
integration review's re-check kept one client's feedback on a card never shown to it at
503 for 15 tries in 15 s, while a flood of other unknown-card feedback held the wait.
After DEFER_SECONDS the same card gets its 400."""

from __future__ import annotations

import time
import uuid

import pytest

from cds_service.routes import feedback


def test_a_card_is_deferred_at_most_defer_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "DEFER_SECONDS", 0.2)
    card, later = str(uuid.uuid4()), str(uuid.uuid4())
    assert not feedback._deferred_long_enough("client-a", {card})
    assert not feedback._deferred_long_enough("client-a", {card})  # not yet
    time.sleep(0.25)
    assert feedback._deferred_long_enough("client-a", {card})
    # a card first deferred now is deferred afresh, and so is the whole body with it
    assert not feedback._deferred_long_enough("client-a", {card, later})
    # per client: another client's first deferral of the same card starts its own clock
    assert not feedback._deferred_long_enough("client-b", {card})


def test_the_cards_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "_DEFERRED_KEPT", 10)
    for _ in range(25):
        feedback._deferred_long_enough("client-c", {str(uuid.uuid4())})
    assert len(feedback._deferred) <= 10
