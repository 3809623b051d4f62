"""Cards an outside clinician's review (round twelve) found wrong, through the engine and
the renderer as the service runs them."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from tests.engine.builders import complication, improving, nvo, run


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CardContext(patient_id="p"))["cards"]
    return only


def test_an_undated_abscess_reads_as_on_record_not_recorded_date_not_recorded() -> None:
    a = run(improving(), [nvo(), complication(onset=None)])  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.SUPPORT
    summary = card(a)["summary"]
    assert "on record (undated)" in summary, summary
    assert "recorded date not recorded" not in summary
