"""The card's trend lines: the CRP sentence and table, pain and ESR, in the order a
clinician reads them. Split from ``detail.py`` along the data flow: this module turns the
assessment's series into lines; ``detail.py`` puts them in the card with the advice and
the evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.cards.safe_text import quote
from cds_service.cards.words import (
    ARROW,
    as_sent,
    change_pct,
    count_of,
    fmt,
    signed_pct,
)
from cds_service.engine.assessment import Assessment
from cds_service.engine.rules import sort_key
from fhir_mappers.model import Measurement


def shown_value(m: Measurement) -> str:
    """A value with its comparator kept ("<5"): clinical-rules.md, "CRP 100→<5 mg/L"."""
    return f"{m.comparator}{fmt(m.value)}" if m.comparator else fmt(m.value)


def _value_text(m: Measurement) -> str:
    value = shown_value(m)
    if m.original_unit and m.original_unit != m.unit:
        value += f" (reported {as_sent(m.original_value)} {quote(m.original_unit)})"
    return value


def _ago(days: int) -> str:
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def crp_section(a: Assessment) -> list[str]:
    f = a.figures
    t0 = f.t0_day
    if not a.crp:
        return []
    rose = any("rise" in r.data for r in a.rules_fired)
    in_window = t0 is not None and f.crp_baseline_in_window
    roles: dict[str, list[str]] = {}
    if len(a.crp) == 1:
        roles = {}
    for role, m in (
        ("baseline" if in_window else "first after start", f.crp_baseline),
        ("lowest before latest", f.crp_lowest_earlier if rose else None),
        ("latest", f.crp_latest),
    ):
        if m is not None and len(a.crp) > 1:
            roles.setdefault(m.reference, []).append(role)
    lines = ["| Date | Day | CRP mg/L | |", "|---|---|---|---|"]
    left_out: list[Measurement] = []
    last = len(a.crp) - 1
    for index, m in enumerate(a.crp):
        day = str((m.when.day - t0).days) if t0 is not None else ""
        role = ", ".join(roles.get(m.reference, []))
        if last >= TABLE_ROWS and not role and TABLE_EDGE <= index <= last - TABLE_EDGE:
            left_out.append(m)
            continue
        if left_out:
            lines.append(_left_out_row(left_out, t0))
            left_out = []
        lines.append(f"| {m.when.day.isoformat()} | {day} | {_value_text(m)} | {role or ' '} |")
    return lines


# A long series is shortened to its first and last TABLE_EDGE values and those with a
# role; the values between are counted in one row (the trend app shows every one).
TABLE_ROWS = 12
TABLE_EDGE = 3


def _left_out_row(left_out: Sequence[Measurement], t0: date | None) -> str:
    first, last = left_out[0].when.day, left_out[-1].when.day
    if t0 is not None:
        span = f"days {(first - t0).days}-{(last - t0).days}"
    else:
        span = f"{first.isoformat()} to {last.isoformat()}"
    return f"| … | | | {len(left_out)} more CRP ({span}) not shown: see the trend |"


def _series_text(label: str, series: Sequence[Measurement], unit: str, t0: date | None) -> str:
    """ "ESR (mm/h): 95 (day 0) → 60 (day 28)." or "ESR 95 mm/h on day 0 (one value)."."""

    def day(m: Measurement) -> str:
        return f"day {(m.when.day - t0).days}" if t0 is not None else m.when.day.isoformat()

    if len(series) == 1:
        sep = "" if unit.startswith("/") else " "
        return f"{label} {fmt(series[0].value)}{sep}{unit} on {day(series[0])} (one value)."
    points = f" {ARROW} ".join(f"{fmt(m.value)} ({day(m)})" for m in series)
    scale = "0-10" if unit == "/10" else unit
    return f"{label} ({scale}): {points}."


def early_rise(a: Assessment) -> tuple[Measurement, float] | None:
    """A rise over the threshold that came too early to count (by day 14): advise-against
    stands by the rules, but the card does not call the patient "improving" (an outside
    review: 100 -> 50 -> 70 mg/L on day 14 read "improving" beside "+40%")."""
    f = a.figures
    low, pct = f.crp_lowest_earlier, f.crp_up_from_lowest_pct
    return (low, pct) if low is not None and pct is not None and f.crp_rise_too_early else None


def up_since_lowest(a: Assessment) -> list[str]:
    """On an advise-against card, a latest CRP above its lowest since treatment start,
    under the rise that would change the advice: said, so "improving" does not hide it
    (a clinician reader: 100 -> 40 -> 47 mg/L read only as "-53%")."""
    f = a.figures
    low, rise = f.crp_lowest_earlier, f.crp_up_from_lowest_pct
    if low is None or rise is None or f.t0_day is None or f.crp_latest is None:
        return []
    s = a.settings
    why = (
        f"a rise counts only after day {s.rise_after_days} of treatment; repeat CRP within a week"
        if f.crp_rise_too_early
        else f"under the {fmt(s.rise_pct)}% rise that would change this advice; worth repeating"
    )
    return [
        f"CRP up from its lowest, {shown_value(low)} mg/L on day "
        f"{(low.when.day - f.t0_day).days}, to {shown_value(f.crp_latest)} mg/L "
        f"({signed_pct(rise)}): {why}."
    ]


def trend_lines(a: Assessment, crp_figures: bool = True) -> list[str]:
    """CRP, pain and ESR in one line each: the numbers that matter, with the CRP's age.

    Without ``crp_figures`` (a red flag's bullet already gives them) the CRP line is the
    latest CRP's age alone.
    """
    f = a.figures
    if f.t0_day is None:
        # no treatment start: nothing can be placed on treatment days, so nothing counts
        # (the engine keeps no value); say how many there are, not "no CRP"
        n = a.counts.get("beforeWindow", 0)
        if not n:
            return ["No CRP, ESR or pain score on record."]
        return [
            f"{count_of(n, 'CRP, ESR or pain result')} on record cannot be judged without a "
            "treatment start."
        ]
    lines = []
    if f.crp_latest is not None:
        age = _ago((a.evaluation_day - f.crp_latest.when.day).days)
        codes = {r.code for r in a.missing}
        if not crp_figures:
            lines.append(f"Latest CRP {age}.")
        elif "crp-discordant" in codes:
            # the card says neither of the latest two can be trusted: no trend from them
            lines.append(f"No CRP trend until the latest is repeated; latest CRP {age}.")
        elif "crp-none-on-treatment" in codes:
            before = ", ".join(
                f"{_value_text(m)} mg/L (day {(m.when.day - f.t0_day).days})"
                for m in a.crp
                if f.t0_day is not None
            )
            lines.append(f"CRP before treatment: {before}; none since; latest CRP {age}.")
        elif f.crp_baseline is not None and f.crp_percent_change is not None:
            label = "baseline" if f.crp_baseline_in_window else "first value after the start"
            pct = change_pct(
                f.crp_percent_change, f.crp_latest.comparator, f.crp_baseline.comparator
            )
            # a CRP that never rose "cannot show the response" (its note says so): no
            # percentage that invites the reading the note forbids (an outside review)
            never = any(n.code == "crp-never-raised" for n in a.notes)
            change = "" if never else f" ({pct} from the {label})"
            lines.append(
                f"CRP {shown_value(f.crp_baseline)}{ARROW}{shown_value(f.crp_latest)} mg/L"
                f"{change}; latest CRP {age}."
            )
        elif len(a.crp) > 1:
            lines.append(_up_to_baseline(a, age))
        else:
            lines.append(f"CRP {fmt(f.crp_latest.value)} mg/L (one value), {age}.")
    else:
        lines.append("No CRP counted.")
    if a.pain:
        series = sorted(a.pain, key=sort_key)
        if len(series) > 5:  # first, lowest and latest carry the rules
            low = min(series, key=lambda m: (m.value, sort_key(m)))
            series = sorted({id(m): m for m in (series[0], low, series[-1])}.values(), key=sort_key)
        lines.append(_series_text("Pain", series, "/10", f.t0_day))
    else:
        lines.append("No pain score since treatment start.")
    if a.esr:
        esr = sorted(a.esr, key=sort_key)
        if len(esr) > 5:  # first and latest give the trend; the trend app shows them all
            line = _series_text("ESR", [esr[0], esr[-1]], "mm/h", f.t0_day)
            lines.append(f"{line[:-1]}; first and latest of {len(esr)} values.")
        else:
            lines.append(_series_text("ESR", esr, "mm/h", f.t0_day))
    return lines


def _up_to_baseline(a: Assessment, age: str) -> str:
    """Several CRPs whose latest is the baseline (the highest near treatment start): every
    one shown with its day and the signed change from the first, never "(one value)",
    which would hide an early rise ("CRP (mg/L): 120 (day 0) → 140 (day 2), +16.7%; the
    latest is the baseline (the highest within 7 days of treatment start)")."""
    f = a.figures
    assert f.t0_day is not None and f.crp_latest is not None
    series = sorted(a.crp, key=sort_key)
    shown = series if len(series) <= 5 else [series[0], series[-1]]
    points = f" {ARROW} ".join(
        f"{shown_value(m)} (day {(m.when.day - f.t0_day).days})" for m in shown
    )
    first, latest = series[0], f.crp_latest
    change = ""
    if first.value and first.comparator is None:
        pct = (latest.value - first.value) / first.value * 100
        change = f", {change_pct(pct, latest.comparator)}"
    window = count_of(a.settings.baseline_window_days, "day")
    return (
        f"CRP (mg/L): {points}{change}; the latest is the baseline (the highest within "
        f"{window} of treatment start); latest CRP {age}."
    )
