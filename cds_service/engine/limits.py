"""How one value is read against others: a value reported as a limit ("<10", ">55")
against the normal limit, and the order of one kind's values in time.

The rules, the series and the response read them alike; apart from ``rules``, which
holds the rules themselves.
"""

from __future__ import annotations

from typing import Any

from fhir_mappers.model import Measurement

# Comparators of a value reported as a limit ("<10", ">10"): the true value lies below
# (or at most at) the limit, or above (or at least at) it.
BELOW = frozenset({"<", "<="})
ABOVE = frozenset({">", ">="})


def within_normal_range(value: float, comparator: str | None, limit: float) -> bool:
    """The value lies in the normal range, where a change is neither a plateau nor a
    rise (clinical-rules.md, "markers-not-responding"): a plain value below the normal
    limit, or one reported below or at most a limit at or below it ("<10" or "<=10" with a
    limit of 10). Any other limit is taken at its value ("A comparator value is taken at
    its limit"): "<12" reads as 12, ">5" as 5."""
    if comparator in BELOW:
        return value <= limit
    return value < limit


def below_normal_limit(value: float, comparator: str | None, limit: float) -> bool:
    """The value is below the normal limit (advise-against: "or is below the normal
    limit"): a plain value below it, or one reported below a limit at or below it ("<10");
    "<=10" may be 10 itself, and any other limit is taken at its value."""
    return value < limit or (comparator == "<" and value <= limit)


def sort_key(m: Measurement) -> tuple[Any, ...]:
    """Time order of one kind's values; at one instant by value, the higher as the later:
    a higher CRP, ESR or pain is the worse reading, so the worse is read as latest (and
    the lower as first, where the first value after the start is the baseline), whatever
    their ids. By reference, pain 3 and 5 charted at one moment read "pain worse" or
    "improving" by which id sorted last (an outside review). At one value, a limit by
    what it says of the true value ("<10" under "10" under ">10": a review found "<10" and
    "10" decided by id); the reference only orders equal readings, for a stable answer."""
    return (m.when.instant, m.value, _COMPARATOR_RANK.get(m.comparator, 2), m.reference)


# A comparator by what it says of the true value against its limit (no comparator: 2).
_COMPARATOR_RANK: dict[str | None, int] = {"<": 0, "<=": 1, ">=": 3, ">": 4}
