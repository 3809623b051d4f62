"""How the engine says things: numbers, percentages, condition names, dates, pain.

The rules' messages are read by clinicians on the cards, so their wording is made in
one place: one arrow style, a typographic minus, signed percentages, no resource ids.
Nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fhir_mappers.model import ConditionFact, Measurement

MINUS = "\u2212"  # a typographic minus sign: a fall reads as one at a glance


ARROW = "\u2192"  # one arrow style on every card: "142→18"


def fmt(value: float) -> str:
    """A value as a clinician reads it: no trailing zeros, at most one decimal."""
    return f"{round(value, 1):g}"


def shown(m: Measurement) -> str:
    """A value with its comparator kept: "<5", "18" (clinical-rules.md: "CRP 100→<5")."""
    return f"{m.comparator}{fmt(m.value)}" if m.comparator else fmt(m.value)


def signed_pct(value: float) -> str:
    """A percentage with its sign always shown: "+58%", MINUS + "87%", "0%"."""
    shown = fmt(abs(value))
    if shown == "0":
        return "0%"
    return f"+{shown}%" if value > 0 else f"{MINUS}{shown}%"


def condition_name(c: ConditionFact) -> str:
    """The condition's clinical name: the value set's name for its code, else the
    record's display, else "a condition recorded as <code>" (clinical-rules.md: never
    "a condition coded G82.20"), never its resource id."""
    if c.name:
        return c.name
    for code in c.codes:
        if code.display and code.display.strip():
            return code.display.strip()
    return f"a condition recorded as {c.codes[0].code}" if c.codes else "an unnamed condition"


def lower_first(text: str) -> str:
    """ "Cauda equina syndrome" -> "cauda equina syndrome"; "MRSA ..." stays as it is."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def when_found(c: ConditionFact, t0_day: date | None) -> tuple[str, bool]:
    """("day 26", False), ("present at diagnosis (day 0)", True) or a fallback; and
    whether the condition was there when treatment started (onset on or before T0)."""
    if t0_day is None:
        return "", False
    onset = c.onset.day if c.onset is not None else None
    recorded = c.recorded.day if c.recorded is not None else None
    if onset is None and recorded is None:
        return "date not recorded", False
    first = onset if onset is not None else recorded
    assert first is not None
    if first <= t0_day:
        later = recorded if recorded is not None and recorded > t0_day else None
        if later is not None:
            return f"present at diagnosis, recorded day {(later - t0_day).days}", True
        return f"present at diagnosis (day {(first - t0_day).days})", True
    return f"day {(first - t0_day).days}", False


def pain_phrase(series: Sequence[Measurement], scale: str = "") -> str:
    """Pain in a few words: "pain 8→3", "pain stable at 4", "pain 3 (one value)".

    ``scale`` follows each number, e.g. "/10".
    """
    if not series:
        return "no pain score"
    first, last = series[0], series[-1]
    if len(series) == 1:
        return f"pain {fmt(last.value)}{scale} (one value)"
    if max(m.value for m in series) - min(m.value for m in series) < 1:
        return f"pain stable at {fmt(last.value)}{scale}"
    return f"pain {fmt(first.value)}{ARROW}{fmt(last.value)}{scale}"
