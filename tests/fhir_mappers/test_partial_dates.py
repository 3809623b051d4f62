"""A partial date is a whole month or year, not its first day.

FHIR lets a dateTime be "2026-09" or "2026" (a Condition's onset is often recorded so).
The parser orders it by its first day, as before, but keeps its precision: the rules ask
whether the whole span lies in a window (``last_day``), and a card shows the date as the
record holds it (``shown``), never a day the record does not give.
"""

from __future__ import annotations

from datetime import date

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.timeutil import parse_fhir_time
from tests.fhir_mappers.test_conditions import condition


@pytest.mark.parametrize(
    ("text", "partial", "first", "last"),
    [
        ("2026-09", "month", date(2026, 9, 1), date(2026, 9, 30)),
        ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),  # a leap year
        ("2025-02", "month", date(2025, 2, 1), date(2025, 2, 28)),
        ("2026-12", "month", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026", "year", date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_a_partial_date_keeps_its_precision_and_its_whole_span(
    text: str, partial: str, first: date, last: date
) -> None:
    when = parse_fhir_time(text)
    assert (when.partial, when.date_only) == (partial, True)
    assert when.day == first  # ordering is unchanged: the period's first day
    assert when.last_day == last
    assert when.shown == text


@pytest.mark.parametrize(
    "text",
    ["2026-09-10", "2026-09-10T08:00:00Z", "2026-09-10T23:30:00-05:00", "2026-09-10T08:00:00"],
)
def test_a_full_date_or_a_date_time_is_not_partial(text: str) -> None:
    when = parse_fhir_time(text)
    assert when.partial is None
    assert when.last_day == when.day == date(2026, 9, 10)
    assert when.shown == "2026-09-10"


def test_a_condition_onset_of_a_month_is_read_as_that_month() -> None:
    resource = condition(
        "abscess", "G06.2", onsetDateTime="2026-09", recordedDate="2026-09-25T09:00:00Z"
    )
    (fact,), issues = map_conditions([resource], load_value_sets())
    assert issues == ()
    assert fact.onset is not None and fact.onset.partial == "month"
    assert (fact.onset.shown, fact.onset.last_day) == ("2026-09", date(2026, 9, 30))
    assert fact.recorded is not None and fact.recorded.partial is None
