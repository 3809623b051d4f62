"""FHIR date, dateTime and instant strings -> ``When``.

One small parser instead of fhir.resources' validators because it runs on every
selected Observation (see performance-notes.md) and because the rules need two
readings of one value: an aware instant for ordering and the calendar day as written
for counting days.

Decisions:
- A partial date orders as its first day: "2024" -> 2024-01-01, "2024-03" ->
  2024-03-01; both are marked ``date_only``, like a full date without a time, and
  ``partial`` keeps their precision ("year", "month"): a month is not its first day, and
  a rule that asks whether the value lies in a window reads its whole span
  (``When.last_day``), a card shows it as recorded (``When.shown``).
- A date without a time orders as midnight UTC of that day.
- A dateTime with a time but without an offset is not valid FHIR. It is read as UTC:
  its ``day`` is still the day as written, so day counts are unaffected, and dropping a
  lab value over a missing offset would hide data from the rules. Conditions and
  ServiceRequests that carry one fail their full parse (fhir.resources rejects such
  values) and are read the same way, the mappers saying so (``zone_missing``).
- A leap second (":60") is read as :59.
- A year before 1800 or after 2200 is refused, like any unreadable value. EHRs use
  0001-01-01 and 9999-12-31 as placeholders, and the rules' day arithmetic (a week
  before treatment start, the day in the patient's time zone) overflows Python's dates
  near years 1 and 9999: such a value answered 500 instead of being reported. No date
  in a living patient's record lies outside these years.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

from fhir_mappers.model import When

_FHIR_TIME = re.compile(
    r"(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?"
    r")?)?)?"
)


# The usual value, a full dateTime with seconds and an offset that _zone accepts (hours up
# to 14, minutes up to 59); no leap second. What it matches, the C parser reads alone.
_USUAL = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{1,9})?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)"
)


EARLIEST_YEAR = 1800
LATEST_YEAR = 2200


def parse_fhir_time(text: object) -> When:
    """Parse a FHIR date/dateTime/instant; raise ValueError with the value when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"not a date/time string: {text!r}")
    fast = usual_time(text)
    if fast is not None:
        return fast
    match = _FHIR_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a FHIR date/time: {text!r}")
    return _general_path(text, match)


def zone_missing(text: str) -> bool:
    """True for a FHIR dateTime with a time but no offset, which ``parse_fhir_time``
    reads as UTC: its day is as written, its hour a guess the audit should show."""
    match = _FHIR_TIME.fullmatch(text)
    return match is not None and match["hour"] is not None and match["zone"] is None


def usual_time(text: str) -> When | None:
    """The usual case, a full dateTime with its offset, read by the C parser in about a
    tenth of the time of the general path, with the same answer; None for anything else
    (the general path then reads it or says why not)."""
    if _USUAL.fullmatch(text) is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if not EARLIEST_YEAR <= instant.year <= LATEST_YEAR:
        return None  # the general path says why
    return When(instant, instant.date())


def _general_path(text: str, match: re.Match[str]) -> When:
    year = int(match["year"])
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"not a FHIR date/time in years {EARLIEST_YEAR}-{LATEST_YEAR}: {text!r}")
    month = int(match["month"] or 1)
    day_number = int(match["day"] or 1)
    try:
        day = date(year, month, day_number)
        if match["hour"] is None:
            instant = datetime(year, month, day_number, tzinfo=UTC)
            partial = (
                "year" if match["month"] is None else "month" if match["day"] is None else None
            )
            return When(instant=instant, day=day, date_only=True, partial=partial)
        zone = _zone(match["zone"])
        second = min(int(match["second"]), 59)
        micro = int((match["fraction"] or "0")[:6].ljust(6, "0"))
        instant = datetime(
            year,
            month,
            day_number,
            int(match["hour"]),
            int(match["minute"]),
            second,
            micro,
            tzinfo=zone,
        )
    except ValueError as exc:
        raise ValueError(f"not a FHIR date/time: {text!r} ({exc})") from None
    return When(instant=instant, day=day, date_only=False)


@lru_cache(maxsize=128)  # a handful of offsets recur across all values
def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
