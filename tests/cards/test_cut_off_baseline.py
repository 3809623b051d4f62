"""With older CRP pages not read, the first value read is not called the baseline."""

from __future__ import annotations

from datetime import UTC, datetime

from cds_service.engine import Recommendation, RuleSettings, assess
from fhir_mappers.model import PatientData
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, neuro, nvo, order, pain, run


def test_a_cut_off_crp_search_does_not_call_its_first_value_read_the_baseline() -> None:
    """A clinician reviewer: with older CRP pages not read, the card labelled the day-7
    value "baseline" and gave the fall "from the baseline", while the real baseline was
    on the page not read."""
    data = PatientData(
        conditions=(nvo(),),
        measurements=(crp(7, 91), crp(14, 50), crp(28, 17.5), pain(0, 6), pain(28, 2)),
        cut_off=frozenset({"crp"}),
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert "crp-incomplete" in {r.code for r in a.missing}
    detail = card(a)["detail"]
    assert "| 91 | earliest read |" in detail, detail
    assert "from the earliest value read" in detail
    assert "baseline" not in detail.split("**Evidence**")[0]
    whole = card(run([crp(7, 91), crp(14, 50), crp(28, 17.5), pain(0, 6), pain(28, 2)]))
    assert "| 91 | baseline |" in whole["detail"]


def test_a_red_flag_card_from_a_cut_off_search_does_not_call_it_the_baseline_either() -> None:
    """A code review: a support card from a cut-off search (where no gap is listed; here
    a new deficit) still labelled the first value read "baseline" beside "older ones may
    be missing"."""
    data = PatientData(
        conditions=(nvo(), neuro(20)),
        measurements=(crp(7, 91), crp(14, 85), crp(28, 80), pain(0, 6), pain(28, 2)),
        cut_off=frozenset({"crp"}),
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    detail = card(a)["detail"]
    assert "| 91 | earliest read |" in detail, detail
    assert "| 91 | baseline |" not in detail


def test_a_cut_off_search_that_reaches_the_window_keeps_its_baseline() -> None:
    """Cut off, but its values reach back to T0 - 7 days: the baseline is among them."""
    data = PatientData(
        conditions=(nvo(),),
        measurements=(crp(-7, 91), crp(14, 85), crp(28, 80), pain(0, 6), pain(28, 2)),
        cut_off=frozenset({"crp"}),
    )
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert "| 91 | baseline |" in card(a)["detail"]
