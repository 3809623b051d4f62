"""A result dated by month or year only has no day to count from.

An outside integrator review (2026-12-07): a CRP of 300 mg/L dated "2026-11" was pinned to
1 November, shown as an exact date, and could become the baseline. clinical-rules.md
compares by day and is silent on partial dates; a month is not its first day (the rules
say so of Conditions, "Known at diagnosis"). Such a value is left out of every series and
named as recorded.
"""

from __future__ import annotations

from cds_service.engine import Recommendation
from fhir_mappers.timeutil import parse_fhir_time
from tests.cards.test_review_wording import card
from tests.engine.builders import T0, crp, pain, run
from tests.engine.test_order_day_in_zone import timed

MONTH = parse_fhir_time(T0.isoformat()[:7])  # the month of T0


def test_a_crp_dated_by_month_is_not_the_baseline_and_is_named() -> None:
    values = [crp(0, 120), crp(14, 50), crp(28, 15), pain(0, 7), pain(28, 3)]
    a = run([*values, timed(crp(0, 300), MONTH)], order_day=29)
    assert a.figures.crp_baseline is not None and a.figures.crp_baseline.value == 120
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    (note,) = [n for n in a.notes if n.code == "date-imprecise"]
    assert note.data["values"] == [{"kind": "crp", "value": 300, "date": T0.isoformat()[:7]}]
    detail = card(a)["detail"]
    assert (
        f"dated by month or year only (no day to count from): CRP 300 mg/L on {T0.isoformat()[:7]}"
        in detail
    )
