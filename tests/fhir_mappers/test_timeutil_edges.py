"""The FHIR time parser's general path: fractions of a second, and what an error names.

The general path reads what the fast path does not (no offset, a leap second, a partial
date). A fraction of a second is read to the microsecond: digits past the sixth are
dropped, fewer are padded ("0.5" is half a second). A value that cannot be read raises
a ValueError that quotes it, which the mappers' DataIssue then shows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_mappers.model import When
from fhir_mappers.timeutil import parse_fhir_time


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2024-01-10T08:30:00.5", 500_000),
        ("2024-01-10T08:30:00.05", 50_000),
        ("2024-01-10T08:30:00.123456", 123_456),
        ("2024-01-10T08:30:00.1234567", 123_456),
        ("2024-01-10T08:30:00.123456789", 123_456),
        ("2024-01-10T08:30:60.25Z", 250_000),
    ],
)
def test_a_fraction_of_a_second_is_read_to_the_microsecond(text: str, micro: int) -> None:
    when = parse_fhir_time(text)
    assert when.instant.microsecond == micro
    assert when.instant.second in (0, 59)
    assert when.day == date(2024, 1, 10)
    assert when.date_only is False


def test_a_time_without_an_offset_is_read_as_utc_on_the_day_written() -> None:
    assert parse_fhir_time("2024-01-10T23:30:00.75") == When(
        datetime(2024, 1, 10, 23, 30, 0, 750_000, tzinfo=UTC), date(2024, 1, 10), False
    )


@pytest.mark.parametrize("text", ["2024-02-30", "2024-02-30T08:00:00", "2024-13-01T08:00:00Z"])
def test_an_impossible_date_is_refused_with_the_value_quoted(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_fhir_time(text)
    assert str(refused.value).startswith(f"not a FHIR date/time: {text!r} (")
