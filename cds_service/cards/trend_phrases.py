"""The trend lines' words: the CRP table's rows, and the lines of CRP, pain and ESR in a
card's detail. ``trend_lines.py`` picks which, from the engine's figures and series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.cards.safe_text import quote
from cds_service.cards.words import ARROW, as_sent, change_digits, change_pct, count_of, fmt, shown
from cds_service.engine.thresholds import RuleSettings
from fhir_mappers.model import Measurement


def shown_value(m: Measurement, digits: int | None = None) -> str:
    """A value with its comparator kept ("<5"): clinical-rules.md, "CRP 100→<5 mg/L"
    (``words.shown``, for a Measurement)."""
    return shown({"value": m.value, "comparator": m.comparator}, digits)


def value_text(m: Measurement) -> str:
    """A value as shown, with the value and unit the record reported when they differ."""
    value = shown_value(m)
    if m.original_unit and m.original_unit != m.unit:
        value += f" (reported {as_sent(m.original_value)} {quote(m.original_unit)})"
    return value


def ago(days: int) -> str:
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def _day(m: Measurement, t0: date) -> int:
    return (m.when.day - t0).days


# --- The CRP table (``trend_lines.crp_section``) ------------------------------------------

TABLE_HEAD = ("| Date | Day | CRP mg/L | |", "|---|---|---|---|")
# the role of a value in the table's last column
BASELINE = "baseline"
FIRST_AFTER_START = "first after start"
# CRP paging cut off before the baseline window (gap ``crp-incomplete``): the first value
# read is not known to be the baseline (a clinician reviewer saw one labelled so while the
# card said older results could not be read)
EARLIEST_READ = "earliest read"
LOWEST_BEFORE_LATEST = "lowest before latest"
LATEST = "latest"


def table_row(m: Measurement, t0: date | None, roles: Sequence[str]) -> str:
    day = str(_day(m, t0)) if t0 is not None else ""
    return f"| {m.when.day.isoformat()} | {day} | {value_text(m)} | {', '.join(roles) or ' '} |"


def left_out_row(left_out: Sequence[Measurement], t0: date | None) -> str:
    """The one row that counts the values a long table leaves out."""
    first, last = left_out[0], left_out[-1]
    if t0 is not None:
        span = f"days {_day(first, t0)}-{_day(last, t0)}"
    else:
        span = f"{first.when.day.isoformat()} to {last.when.day.isoformat()}"
    return f"| … | | | {len(left_out)} more CRP ({span}) not shown: see the trend |"


# --- The lines (``trend_lines.trend_lines``) ----------------------------------------------

NOTHING_ON_RECORD = "No CRP, ESR or pain score on record."
NO_CRP = "No CRP counted."
NO_PAIN = "No pain score since treatment start."
NO_USABLE_PAIN = "No usable pain score since treatment start."


def not_judged(count: int) -> str:
    """Values on record with no treatment start: none can be placed on treatment days."""
    return (
        f"{count_of(count, 'CRP, ESR or pain result')} on record cannot be judged without a "
        "treatment start."
    )


def latest_crp(age: str) -> str:
    return f"Latest CRP {age}."


def no_crp_trend(age: str) -> str:
    """The latest two CRPs disagree: neither can be trusted, so no trend from them."""
    return f"No CRP trend until the latest is repeated; latest CRP {age}."


def before_treatment(crp: Sequence[Measurement], t0: date, age: str) -> str:
    before = ", ".join(f"{value_text(m)} mg/L (day {_day(m, t0)})" for m in crp)
    return f"CRP before treatment: {before}; none since; latest CRP {age}."


def crp_change(
    baseline: Measurement,
    latest: Measurement,
    pct: float | None,
    in_window: bool,
    age: str,
    incomplete: bool = False,
) -> str:
    """ "CRP 142→18 mg/L (-87% from the baseline); latest CRP 1 day ago." (the minus a
    typographic one); without ``pct`` (a CRP that never rose) no percentage; from "the
    earliest value read" when older results could not be read (``incomplete``)."""
    label = BASELINE if in_window else "first value after the start"
    if incomplete:
        label = "earliest value read"
    change = ""
    if pct is not None:
        change = f" ({change_pct(pct, latest.comparator, baseline.comparator)} from the {label})"
    digits = change_digits(baseline.value, latest.value, pct)
    return (
        f"CRP {shown_value(baseline, digits)}{ARROW}{shown_value(latest, digits)} mg/L{change}; "
        f"latest CRP {age}."
    )


def one_crp(latest: Measurement, age: str) -> str:
    return f"CRP {fmt(latest.value)} mg/L (one value), {age}."


def up_to_baseline(
    series: Sequence[Measurement], latest: Measurement, t0: date, window_days: int, age: str
) -> str:
    """Several CRPs whose latest is the baseline (the highest near treatment start): every
    one shown with its day (the first and the latest of more than five) and the signed
    change from the first, never "(one value)", which would hide an early rise ("CRP
    (mg/L): 120 (day 0) → 140 (day 2), +16.7%; the latest is the baseline (the highest
    within 7 days of treatment start)")."""
    shown = series if len(series) <= 5 else [series[0], series[-1]]
    points = f" {ARROW} ".join(f"{shown_value(m)} (day {_day(m, t0)})" for m in shown)
    first = series[0]
    change = ""
    if first.value and first.comparator is None:
        pct = (latest.value - first.value) / first.value * 100
        change = f", {change_pct(pct, latest.comparator)}"
    window = count_of(window_days, "day")
    return (
        f"CRP (mg/L): {points}{change}; the latest is the baseline (the highest within "
        f"{window} of treatment start); latest CRP {age}."
    )


def series_text(label: str, series: Sequence[Measurement], unit: str, t0: date | None) -> str:
    """ "ESR (mm/h): 95 (day 0) → 60 (day 28)." or "ESR 95 mm/h on day 0 (one value)."."""

    def day(m: Measurement) -> str:
        return f"day {_day(m, t0)}" if t0 is not None else m.when.day.isoformat()

    if len(series) == 1:
        sep = "" if unit.startswith("/") else " "
        return f"{label} {fmt(series[0].value)}{sep}{unit} on {day(series[0])} (one value)."
    points = f" {ARROW} ".join(f"{fmt(m.value)} ({day(m)})" for m in series)
    scale = "0-10" if unit == "/10" else unit
    return f"{label} ({scale}): {points}."


def pain_series(series: Sequence[Measurement], t0: date | None) -> str:
    return series_text("Pain", series, "/10", t0)


def esr_series(series: Sequence[Measurement], t0: date | None, of: int | None = None) -> str:
    """The ESR line; ``of``: the first and the latest of that many values."""
    line = series_text("ESR", series, "mm/h", t0)
    return f"{line[:-1]}; first and latest of {of} values." if of is not None else line


def up_since_lowest(
    low: Measurement,
    latest: Measurement,
    t0: date,
    rise: float,
    settings: RuleSettings,
) -> str:
    """A latest CRP above its lowest since treatment start, under the rise that would
    change the advice (one over it, too early to count, is no advise-against card:
    ``crp-early-rise``)."""
    # "more than": the rule's own word (a rise of exactly 20% reads "+20%", and "under the
    # 20% rise" beside it read as a contradiction to a clinician reviewer)
    why = f"a rise of more than {fmt(settings.rise_pct)}% would change this advice; worth repeating"
    return (
        f"CRP up from its lowest, {shown_value(low)} mg/L on day {_day(low, t0)}, to "
        f"{shown_value(latest)} mg/L ({change_pct(rise, latest.comparator, low.comparator)}): "
        f"{why}."
    )
