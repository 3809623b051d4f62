"""The card's detail (markdown): for a ten-second read, the evidence last."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from cds_service.cards import text
from cds_service.cards.episode_line import episode_line
from cds_service.cards.left_out import left_out
from cds_service.cards.phrasebook import phrase
from cds_service.cards.safe_text import quote
from cds_service.cards.summary import mri_preferred_to_ct, neuro_seen_on_study, seen_on_study
from cds_service.cards.words import (
    ARROW,
    as_sent,
    change_pct,
    count_of,
    fmt,
    signed_pct,
    upper_first,
)
from cds_service.engine import study
from cds_service.engine.assessment import FACTS, Assessment, Recommendation
from cds_service.engine.rules import sort_key
from fhir_mappers.model import Measurement, Modality


def shown_value(m: Measurement) -> str:
    """A value with its comparator kept ("<5"): clinical-rules.md, "CRP 100→<5 mg/L"."""
    return f"{m.comparator}{fmt(m.value)}" if m.comparator else fmt(m.value)


def _value_text(m: Measurement) -> str:
    value = f"{m.comparator}{fmt(m.value)}" if m.comparator else fmt(m.value)
    if m.original_unit and m.original_unit != m.unit:
        value += f" (reported {as_sent(m.original_value)} {quote(m.original_unit)})"
    return value


def _ago(days: int) -> str:
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def _crp_section(a: Assessment) -> list[str]:
    f = a.figures
    t0 = f.t0_day
    if not a.crp:
        return []
    rose = any("rise" in r.data for r in a.rules_fired)
    in_window = t0 is not None and _baseline_in_window(a)
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


def _baseline_in_window(a: Assessment) -> bool:
    base, t0 = a.figures.crp_baseline, a.figures.t0_day
    if base is None or t0 is None:
        return False
    return abs((base.when.day - t0).days) <= a.settings.baseline_window_days


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


def _up_since_lowest(a: Assessment) -> list[str]:
    """On an advise-against card, a latest CRP above its lowest since treatment start,
    under the rise that would change the advice: said, so "improving" does not hide it
    (a clinician reader: 100 -> 40 -> 47 mg/L read only as "-53%")."""
    f = a.figures
    low, latest = f.crp_lowest_earlier, f.crp_latest
    s = a.settings
    if low is None or latest is None or f.t0_day is None or latest.value <= low.value:
        return []
    if latest.value < s.crp_normal_mg_l:
        return []  # within the normal range a rise means nothing (clinical-rules.md)
    rise = (latest.value - low.value) / low.value * 100
    if rise <= s.rise_pct:
        why = f"under the {fmt(s.rise_pct)}% rise that would change this advice"
    elif (latest.when.day - f.t0_day).days <= s.rise_after_days:
        why = f"a rise counts only after day {s.rise_after_days} of treatment"
    else:
        return []  # the rise rule would have fired: not an advise-against card
    return [
        f"CRP up from its lowest, {shown_value(low)} mg/L on day {(low.when.day - f.t0_day).days},"
        f" to {shown_value(latest)} mg/L ({signed_pct(rise)}): {why}; worth repeating."
    ]


def _trend_lines(a: Assessment, crp_figures: bool = True) -> list[str]:
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
            label = "baseline" if _baseline_in_window(a) else "first value after the start"
            lines.append(
                f"CRP {shown_value(f.crp_baseline)}{ARROW}{shown_value(f.crp_latest)} mg/L "
                f"({change_pct(f.crp_percent_change, f.crp_latest.comparator)} from the "
                f"{label}); latest CRP {age}."
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


def _bullets(items: Sequence[str]) -> list[str]:
    return [f"- {i}" for i in items]


def _evidence(keys: Sequence[str], said: str = "") -> list[str]:
    """The statements for ``keys`` and the sources they cite, with every source the card
    names elsewhere (``said``) as "Author year" (e.g. "Yoon 2010" in a remark)."""
    lines = ["**Evidence**", ""]
    cited: list[str] = []
    for key in keys:
        statement, refs = text.STATEMENTS[key]
        lines.append(f"- {statement}")
        cited += [r for r in refs if r not in cited]
    said = "\n".join([said, *lines])
    cited += [r for r, short in _CITED_AS.items() if r not in cited and short in said]
    lines += ["", "Sources: " + "; ".join(text.CITATIONS[r] for r in cited) + "."]
    return lines


def _cited_as(citation: str) -> str:
    """How card text names a source: its first author's surname and its year."""
    year = re.search(r"\b(?:19|20)\d\d\b", citation)
    return f"{citation.split()[0]} {year.group(0) if year else ''}".strip()


_CITED_AS = {ref: _cited_as(citation) for ref, citation in text.CITATIONS.items()}


def _evidence_key(rule_id: str, data: Mapping[str, Any], a: Assessment) -> str:
    """A rise before day 28 is cited for what it suggests, not the 4-week rule; a mimic
    beside a confirmed infection, for the other condition, not as an unconfirmed one."""
    if rule_id == "markers-not-responding" and "rise" in data and "plateau" not in data:
        if int(data.get("latestDay", 0)) < a.settings.plateau_after_days:
            return "markers-rise-early"
    if rule_id == "uncertain-dx":
        facts = data[FACTS]
        if "unconfirmedAs" not in facts and not facts.get("causeUnconfirmed"):
            return "uncertain-dx-mimic"
    return rule_id


def _gap_evidence(a: Assessment) -> list[str]:
    """The evidence that fits a card without a red flag: a known deficit or a pending rise
    is not about a favourable response (the 4-week statement alone would not fit)."""
    codes = {r.code for r in a.missing}
    keys = []
    if "known-deficit" in codes:
        keys.append("known-deficit")
    if "crp-pending-rise" in codes:
        keys.append("markers-rise-early")
    return keys or [a.recommendation.value]


def _read_anyway(a: Assessment) -> str:
    """How to read a follow-up study done anyway: an MRI, or a CT (clinical-rules.md,
    "Imaging", 2026-12-06)."""
    advised = [o for o in a.orders if o.reference in a.covering] or list(a.orders)
    if advised and all(o.modality is Modality.CT for o in advised):
        return text.READ_ANYWAY_CT
    return text.READ_ANYWAY_MRI


def detail(a: Assessment) -> str:
    rec = a.recommendation
    blocks: list[list[str]] = []
    flags = a.red_flags
    if rec is Recommendation.ADVISE_AGAINST:
        first = any(n.code == "early-order" and n.data.get("noStudyOnRecord") for n in a.notes)
        blocks.append([text.SAFETY_NET, *([text.FIRST_IMAGING] if first else [])])
        finding = next(f for f in a.rules_fired if f.rule_id == "advise-against")
        lead = "Improving" if finding.data["facts"]["fell"] else "CRP normal, pain not worse"
        if any(n.code == "yoon-high-markers" for n in a.notes):
            # not reassuring at the week-4 levels that predicted failure (Yoon 2010)
            lead = "CRP falling but still high at 4 weeks"
        state = (
            f"{lead}, no new red flag recorded." if a.known else f"{lead}, no red flag recorded."
        )
        blocks.append([episode_line(a), state, *_trend_lines(a), *_up_since_lowest(a)])
        blocks.append([_read_anyway(a)])
    elif rec in (Recommendation.SUPPORT_URGENT, Recommendation.SUPPORT):
        seen = seen_on_study(a)
        if seen is not None:
            # every red flag seen on a study of the last days: say so first; on an urgent
            # card the protocol if the exam changed
            said = phrase(seen).short
            tail = (
                f" If it did: {text.URGENT_STUDY_SHORT}"
                if rec is Recommendation.SUPPORT_URGENT
                else ""
            )
            blocks.append([f"**{upper_first(said)}: a new MRI only if the exam changed.**{tail}"])
        elif rec is Recommendation.SUPPORT_URGENT and (deficit := neuro_seen_on_study(a)):
            # the deficit seen on a recent study beside a red flag that was not: the exam
            # and the surgeon stay urgent, a new MRI for the deficit only if it changed
            said = phrase(deficit).short
            blocks.append(
                [
                    f"**The new deficit was {said}: a new MRI for it only if the exam changed.**"
                    f" If it did: {text.URGENT_STUDY_SHORT}"
                ]
            )
        elif rec is Recommendation.SUPPORT_URGENT:
            blocks.append([f"**{text.URGENT_STUDY}**"])
        elif mri_preferred_to_ct(a):
            contrast_ct = all(
                o.contrast in ("with", "without-and-with")
                for o in a.orders
                if o.modality is Modality.CT
            )
            said = text.MRI_PREFERRED_TO_CONTRAST_CT if contrast_ct else text.MRI_PREFERRED
            blocks.append([f"**{said}**"])
        items = [phrase(f).message for f in flags]
        if any(f.rule_id == "complication" for f in flags) and rec is Recommendation.SUPPORT:
            items.append(text.COMPLICATION_ACTION)
            complication = next(f for f in flags if f.rule_id == "complication")
            if complication.data["facts"]["abscess"]:
                items.append(text.ABSCESS_NEXT_STEPS)
                items.append(text.ABSCESS_STUDY)
        markers = next((f for f in flags if f.rule_id == "markers-not-responding"), None)
        if markers is not None:
            items.append(text.MARKERS_CAVEAT)
            if "rise" in markers.data:
                items.append(text.REBOUND_SOURCES)
            items.append(text.MARKERS_NEXT_STEPS)
            items.append(text.MARKERS_STUDY)
        if any(f.rule_id == "uncertain-dx" for f in flags):
            items.append(text.UNCERTAIN_STUDY)
        if study.pain_with_falling_crp(flags):
            items.append(text.MECHANICAL_PAIN)
        elif (
            any(f.rule_id == "pain-worse" for f in flags)
            and markers is None
            and a.figures.crp_percent_change is not None
        ):
            # a CRP that is not clearly falling: not the mechanical reading
            items.append(text.PAIN_CRP_NOT_FALLING)
        blocks.append([episode_line(a)])
        blocks.append(_bullets(items))
        blocks.append(_trend_lines(a, crp_figures=markers is None))
    else:
        blocks.append(
            [
                "**Not enough data to judge repeat imaging: this card neither supports nor "
                "advises against it.**"
            ]
        )
        blocks.append([episode_line(a)])
        asks = [phrase(r).message for r in (*a.missing, *a.unmet)]
        # a known deficit's line already says the decision rests on the neurologic exam
        exam = [] if any(r.code == "known-deficit" for r in a.missing) else [text.NEURO_EXAM]
        blocks.append(["To decide:", "", *_bullets([*asks, *exam])])
        blocks.append(_trend_lines(a))
    # a pending value is named in its own line above: not again among the left-out ones
    pending = {str(r.data.get("reference")) for r in a.missing if r.code == "crp-pending-rise"}
    shown_issues = [i for i in a.issues if i.reference not in pending]
    # the bold first line already says the red flags were seen on the study
    said_first = rec is not Recommendation.INSUFFICIENT_DATA and (
        seen_on_study(a) is not None
        or (rec is Recommendation.SUPPORT_URGENT and neuro_seen_on_study(a) is not None)
    )
    notes = [
        phrase(r).message for r in a.notes if not (said_first and r.code == "flag-seen-on-study")
    ] + left_out(shown_issues, a.figures.t0_day)
    if notes:
        blocks.append(_bullets(notes))
    blocks.append(_crp_section(a))
    keys = [_evidence_key(f.rule_id, f.data, a) for f in flags] or _gap_evidence(a)
    if any(r.code == "esr-rising" for r in a.notes):
        keys.append("esr-rising")
    texts = ["\n".join(b) for b in blocks if b]  # each block joined once
    texts.append("\n".join(_evidence(list(dict.fromkeys(keys)), "\n".join(texts))))
    return "\n\n".join(texts)
