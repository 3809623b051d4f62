"""How the cards say things: numbers, percentages, condition names, days, pain.

One arrow style, a typographic minus, signed percentages, no resource ids. The
phrasebook and the card's detail build their sentences with these; nothing here
decides anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from cds_service.cards.safe_text import quote
from cds_service.engine.findings import clinical_label
from cds_service.engine.thresholds import RuleSettings
from fhir_mappers.model import ConditionFact, ImagingOrder

MINUS = "\u2212"  # a typographic minus sign: a fall reads as one at a glance


ARROW = "\u2192"  # one arrow style on every card: "142→18"


# The values the sentences compare results with, in their units (CRP mg/L, ESR mm/h):
# the defaults of the rule settings (10 and 27.5 mg/L, 55 mm/h), one home in
# ``engine/thresholds.py``.
THRESHOLD_VALUES = frozenset(
    float(getattr(RuleSettings(), f.name))
    for f in fields(RuleSettings)
    if f.name.endswith(("_mg_l", "_mm_h"))
)


def fmt(value: float) -> str:
    """A value as a clinician reads it: no trailing zeros, at most one decimal, unless
    that rounds it onto a threshold it is not (``THRESHOLD_VALUES``): a CRP of 27.54 mg/L
    read "still 27.5 mg/L" as a slow fall, beside 27.5 mg/L itself, which is not one (a
    clinician reviewer). Such a value keeps two decimals (``_beside``), as a percentage
    next to its own thresholds does (``_pct_text``)."""
    one = round(value, 1)
    if one not in THRESHOLD_VALUES or math.isclose(value, one, abs_tol=1e-9):
        return f"{one:g}"
    return _beside(value, one)


def _beside(value: float, threshold: float) -> str:
    """``value``, which one decimal rounds onto ``threshold``, with two decimals; cut
    towards the value when even those reach the threshold, so it stays on its side
    ("24.99" for 24.999, "27.51" for 27.501)."""
    two = round(value, 2)
    if two != threshold:
        return f"{two:.2f}"
    cents = math.floor(value * 100 + 1e-6) if value < threshold else math.ceil(value * 100 - 1e-6)
    return f"{cents / 100:.2f}"


def as_sent(value: float) -> str:
    """A number as the record sent it, every digit kept and no exponent ("0.08", "15",
    "142.35"): a value left out is named as the chart shows it, never rounded into
    another number (a CRP of 0.08 g/L is not "0.1 g/L")."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def shown(value: Mapping[str, Any], digits: int | None = None) -> str:
    """A value of the engine's data ({"value", "comparator"?}) with its comparator kept:
    "<5", "18" (clinical-rules.md: "CRP 100→<5"); with ``digits`` (``change_digits``),
    to that many decimals, trailing zeros dropped."""
    comparator = value.get("comparator") or ""
    return f"{comparator}{_to(value['value'], digits)}"


def _to(value: float, digits: int | None) -> str:
    """``value`` to ``digits`` decimals, trailing zeros dropped; as ``fmt`` never lands on
    a value threshold it is not (a clinician reviewer read "still 27.5 mg/L", for
    27.5004, on a slow-fall card, where 27.5 itself is not a slow fall)."""
    if digits is None:
        return fmt(value)
    text = f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")
    said = float(text)
    if said in THRESHOLD_VALUES and not math.isclose(value, said, abs_tol=1e-9):
        return _beside(value, said)
    return text


def change_digits(first: float, last: float, pct: float | None) -> int | None:
    """The decimals two values of a change are said with: the fewest, up to 3, whose own
    change lies on the same side of every percentage threshold (``THRESHOLD_PCTS``) as
    the change itself. A clinician reviewer summed "36→27 mg/L (-24.99%)" to exactly
    -25%, the fall the card said was missed, and "50→60 mg/L (+20.1%)" to exactly the 20%
    it said was passed; "36→27.01" and "50→60.05" are not. None (``fmt``'s own) when one
    decimal already does, as for almost every change."""
    if pct is None or not _said(pct) or first <= 0:
        return None
    size = abs(pct)
    near = [t for t in THRESHOLD_PCTS if t != size]
    for digits in (1, 2, 3):
        a, b = round(first, digits), round(last, digits)
        own = abs(b - a) / a * 100 if a > 0 else size
        if all((own - t) * (size - t) > 0 for t in near):
            return None if digits == 1 else digits
    return 3


# The largest percentage said as a number: from 999999.5 on, one decimal in ``fmt`` turns
# into an exponent ("+1.63934e+306%"), and an infinite one would not print at all (a CRP
# near the largest double rose by an infinite percentage, and the call failed with a 500:
# an attack review). Not a clinical limit: such values are still used as the record
# gives them, and every change below it reads as before.
PCT_SAID_UP_TO = 999_999


def _said(value: float) -> bool:
    """Whether ``signed_pct`` states ``value`` as a number (False for NaN and infinity)."""
    return abs(value) < PCT_SAID_UP_TO + 0.5


def signed_pct(value: float) -> str:
    """A percentage with its sign always shown: "+58%", MINUS + "87%", "0%"; beyond
    ``PCT_SAID_UP_TO`` (or infinite), "more than +999999%"; never an error, so a card is
    never lost to its percentage ("change not computable" for NaN)."""
    if math.isnan(value):
        return "change not computable"
    if not _said(value):
        return f"more than {'+' if value > 0 else MINUS}{PCT_SAID_UP_TO}%"
    text = _pct_text(abs(value))
    if text == "0":
        return "0%"
    return f"+{text}%" if value > 0 else f"{MINUS}{text}%"


# The percentages the sentences state as thresholds: the defaults of the rule settings
# (25, 20 and 50%), one home in ``engine/thresholds.py``.
THRESHOLD_PCTS = frozenset(
    round(getattr(RuleSettings(), f.name)) for f in fields(RuleSettings) if f.name.endswith("_pct")
)


def _pct_text(value: float) -> str:
    """At most one decimal, as ``fmt``, unless that rounds a value onto a threshold it is
    not (``THRESHOLD_PCTS``): a fall of 24.99% would read "25%" beside "fell less than
    25%". Such a value keeps two decimals, and when even those round onto the threshold
    they are cut towards the value, so it stays on its side ("24.99" for 24.999, "20.01"
    for 20.001); "57%" or "40%" stays so (no threshold there, and a busy reader needs no
    hundredths); under 0.05% is still "0"."""
    one = round(value, 1)
    if (
        one != round(one)
        or one == 0
        or round(one) not in THRESHOLD_PCTS
        or math.isclose(value, one, abs_tol=1e-9)
    ):
        # one decimal, as ``fmt`` without its thresholds, which are values, not percentages
        return f"{one:g}"
    return _beside(value, one)


def change_pct(value: float, comparator: str | None, baseline_comparator: str | None = None) -> str:
    """``signed_pct`` of a change between values that may be given as limits ("<5",
    ">200"): the true change lies beyond the one computed, and the card says so
    ("MINUS 95% or more"), never more exactly than the results allow (clinical-rules.md:
    comparator values keep their sign). A latest value below its limit, or a baseline above
    its own, makes the true change lower; the other two make it higher; when they pull
    both ways the change cannot be bounded, and the card says only that."""
    lower = comparator in ("<", "<=") or baseline_comparator in (">", ">=")
    higher = comparator in (">", ">=") or baseline_comparator in ("<", "<=")
    text = signed_pct(value)
    if (lower or higher) and not _said(value):  # not "more than +999999% or less"
        return f"{text}, a value at a lab limit: true change unknown"
    if lower and higher:
        return f"{text}, both values at a lab limit: true change unknown"
    if lower:  # the true change is more negative: a larger fall, a smaller rise
        return f"{text} or more" if value < 0 else f"{text} or less"
    if higher:
        return f"{text} or more" if value > 0 else f"{text} or less"
    return text


def named(label: str | None, code: str | None, shown: Callable[[str], str] = quote) -> str:
    """The condition's clinical name: the value set's name or the record's display, else
    "a condition recorded as <code>" (clinical-rules.md: never "a condition coded
    G82.20"), never its resource id. A display or code from the record is ``shown``
    quoted (``safe_text.quote``) for the card's sentences; the value sets' names pass
    unchanged."""
    if label:
        return shown(label)
    if code is not None:
        return f"a condition recorded as {shown(code)}"
    return "an unnamed condition"


def condition_name(c: ConditionFact) -> str:
    """A Condition's clinical name as data (the card's machine-readable result), not
    markdown (see ``named``)."""
    return named(clinical_label(c), c.codes[0].code if c.codes else None, shown=str)


def name_of(facts: Mapping[str, Any]) -> str:
    """The clinical name of a condition as the engine's data gives it ({"name"} or
    {"code"})."""
    return named(facts.get("name"), facts.get("code"))


def lower_first(text: str) -> str:
    """ "Cauda equina syndrome" -> "cauda equina syndrome"; "MRSA ..." stays as it is."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


# How a finding's entry that does not confirm it is said beside its date.
VERIFICATION_WORDS = {
    "provisional": "a provisional diagnosis",
    "differential": "a differential diagnosis",
    "unconfirmed": "unconfirmed",
}


def verification_words(status: str) -> str:
    """A Condition's verification status as a card says it ("a differential diagnosis"),
    for a red flag's finding and for the episode itself alike."""
    return VERIFICATION_WORDS.get(status, status)


# A finding no longer active, as its clinicalStatus says it (``engine.findings.
# ended_facts``): FHIR's inactive and remission are not resolved.
ENDED_WORDS = {"inactive": "inactive", "remission": "in remission", "resolved": "resolved"}


def ended_status(facts: Mapping[str, Any]) -> str:
    """ "resolved", "inactive", "in remission"; "ended" when only an end date says so."""
    return ENDED_WORDS.get(str(facts.get("status")), "ended")


def ended_on(facts: Mapping[str, Any]) -> str:
    """ "resolved day 20" (resolved), else "ended day 20"; the date when that is before
    treatment start ("resolved 2024-03-01"); "" when the record gives no end day."""
    if "endedDay" not in facts:
        return ""
    day = int(facts["endedDay"])
    on = str(facts["endedDate"]) if day < 0 and "endedDate" in facts else f"day {day}"
    return f"{'resolved' if facts.get('status') == 'resolved' else 'ended'} {on}"


def when_found(facts: Mapping[str, Any]) -> str:
    """ "day 26", "present at diagnosis (day 0)", "present at diagnosis, recorded day 3",
    "day 15, onset 2026-09" (an onset of a month or a year, recorded on day 15),
    "date not recorded"; "" without a treatment start. For a summary, which has no room
    for the entry's status: the detail says it (``status_and_when``). A finding recorded
    as a recurrence or relapse carries only its first date: "recurrence, first day -1"."""
    recurred = facts.get("recurred")
    if recurred:
        first = _first_found(facts)
        return f"{recurred}, first {first}" if first else str(recurred)
    return _first_found(facts)


def _first_found(facts: Mapping[str, Any]) -> str:
    if facts.get("undated"):
        return "date not recorded"
    if facts.get("partial"):
        # a month or a year ("2026-09"): as recorded, never a day the record does not
        # hold; the day it was recorded, when the record gives one
        if "recordedDay" in facts:
            return f"day {facts['recordedDay']}, onset {facts['date']}"
        return str(facts["date"])
    if "day" not in facts:
        return ""
    if facts["atStart"]:
        if "recordedDay" in facts:
            return f"present at diagnosis, recorded day {facts['recordedDay']}"
        return f"present at diagnosis (day {facts['day']})"
    return f"recorded day {facts['day']}" if facts.get("recordedOnly") else f"day {facts['day']}"


def status_and_when(facts: Mapping[str, Any], when: str) -> str:
    """``when`` after the entry's status, when it is recorded as provisional, differential
    or unconfirmed: "a provisional diagnosis, day 20" (a clinician reviewer read a
    provisional paraplegia as a certain one). Only in a detail: in a summary the words
    cost the next steps their room (a review: "spine surgery now" dropped)."""
    verification = facts.get("verification")
    if verification is None:
        return when
    status = verification_words(str(verification))
    return f"{status}, {when}" if when else status


def compression_words(found: Sequence[Mapping[str, Any]]) -> str:
    """What a deficit's MRI looks for, by the deficits found: "compression of the cord or
    cauda equina" when a cauda equina syndrome is among them, never "cord compression"
    alone on such a card (clinical-rules.md, "What a card should say")."""
    names = " ".join(name_of(c).lower() for c in found)
    return "compression of the cord or cauda equina" if "cauda" in names else "cord compression"


def relative_date(facts: Mapping[str, Any]) -> str:
    """ "2024-03-01, 3 days before treatment start", "2024-03-04, the day treatment
    started", "2024-03-06, day 2"; the date alone without a treatment start."""
    date = str(facts["date"])
    if "day" not in facts:
        return date
    offset = int(facts["day"])
    if offset == 0:
        return f"{date}, the day treatment started"
    if offset < 0:
        return f"{date}, {count_of(-offset, 'day')} before treatment start"
    return f"{date}, day {offset}"


def dated(facts: Mapping[str, Any]) -> str:
    """ "paraplegia (2024-03-01, 3 days before treatment start)", "abscess (unconfirmed,
    2024-03-05, day 1)"; the name alone when undated and confirmed."""
    name = lower_first(name_of(facts))
    said = status_and_when(facts, relative_date(facts) if "date" in facts else "")
    return f"{name} ({said})" if said else name


def pain_phrase(first: float, last: float, count: int, stable: bool, scale: str = "") -> str:
    """Pain in a few words: "pain 8→3", "pain stable at 4", "pain 3 (one value)".

    ``scale`` follows each number, e.g. "/10".
    """
    if count == 0:
        return "no pain score"
    if count == 1:
        return f"pain {fmt(last)}{scale} (one value)"
    if stable:
        return f"pain stable at {fmt(last)}{scale}"
    return f"pain {fmt(first)}{ARROW}{fmt(last)}{scale}"


def at_weeks(days: int) -> str:
    """When a setting's day falls, as a clinician says it: "at 4 weeks" for day 28, "from
    day 30" otherwise (the day is a setting: the words follow it, never a fixed "4 weeks")."""
    return f"at {days // 7} weeks" if days % 7 == 0 else f"from day {days}"


def count_of(n: int, noun: str) -> str:
    """ "1 result", "3 results"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def listed(names: Sequence[str]) -> str:
    """ "paraplegia", "paraplegia and 2 more"."""
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


def joined(names: Sequence[str]) -> str:
    """ "CRP", "CRP and pain", "diagnoses, CRP and pain"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --- Imaging (clinical-rules.md, "Imaging", 2026-12-06) --------------------------------

CONTRAST_WORDS = {
    "without": "without contrast",
    "with": "with contrast",
    "without-and-with": "without and with gadolinium",
}


def modality_words(orders: Sequence[ImagingOrder]) -> str:
    """ "MRI", "MRI/CT": the modalities of ``orders``, MRI first; "imaging" for none."""
    kinds = sorted({o.modality.value for o in orders}, key=lambda m: (m != "MRI", m))
    return "/".join(kinds) if kinds else "imaging"


def order_words(modality: str, region: str | None = None, contrast: str | None = None) -> str:
    """ "spine MRI"; naming its region, "thoracic spine MRI" ("whole spine MRI"), and its
    contrast when given: "thoracic spine MRI without and with gadolinium"."""
    if region is None:
        return f"spine {modality}"
    where = "whole spine" if region == "spine" else f"{region} spine"
    said = f"{where} {modality}"
    if contrast in CONTRAST_WORDS:
        said += f" {CONTRAST_WORDS[contrast]}"
    return said


def study_words(modality: str, region: str, contrast: str | None) -> str:
    """ "MRI of the cervical spine without and with gadolinium"; "the whole spine" for a
    whole-spine study."""
    where = "the whole spine" if region == "spine" else f"the {region} spine"
    said = f"{modality} of {where}"
    if contrast in CONTRAST_WORDS:
        said += f" {CONTRAST_WORDS[contrast]}"
    return said


# --- end of the imaging block ----------------------------------------------------------
