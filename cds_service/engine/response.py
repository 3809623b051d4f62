"""No red flag: is the response favourable (advise-against), or what is missing?

clinical-rules.md: advise-against needs a usable CRP trend that fell enough or reached
the normal range, pain not worse since treatment start, a recent CRP, and reads that
reach back far enough when paging was cut off; otherwise the answer is insufficient
data, saying what to do. This module finds the gaps and words both outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from fhir_mappers.model import Measurement, MeasurementKind, PatientData

from .assessment import (
    RULE_ADVISE_AGAINST,
    RULE_INSUFFICIENT_DATA,
    Recommendation,
    Remark,
    RuleFinding,
    figure,
)
from .rules import CrpTrend, day_of, sort_key
from .thresholds import RuleSettings
from .wording import ARROW, fmt, pain_phrase, signed_pct


def favourable_response_gaps(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    t0_day: date,
    eval_day: date,
    crp_count: int,
    settings: RuleSettings,
    crp_skipped: int,
) -> tuple[list[Remark], list[Remark]]:
    """What is missing, and which criterion is unmet, for advise-against.

    Beyond the letter of clinical-rules.md, the latest CRP must be on or after T0: a fall
    seen only in pre-treatment values says nothing about the response to treatment.
    ``crp_skipped`` counts CRP results on record that could not be used (e.g. an
    unconvertible unit), so that the card never says "no CRP" when there are some.
    """
    missing: list[Remark] = []
    unmet: list[Remark] = []
    latest, baseline = trend.latest, trend.baseline
    if crp_count == 0 or latest is None:
        if crp_skipped:
            missing.append(
                Remark(
                    "crp-none-usable",
                    f"No usable CRP: {crp_skipped} CRP result(s) on record could not be used "
                    "(see below).",
                    "no usable CRP",
                )
            )
        else:
            missing.append(
                Remark(
                    "crp-none",
                    f"No CRP since {settings.data_lookback_days} days before treatment start.",
                    "no CRP since treatment start",
                )
            )
    elif crp_count == 1:
        recent = (eval_day - latest.when.day).days <= settings.crp_max_age_days
        when = "at the next weekly check" if recent else "now"
        missing.append(
            Remark(
                "crp-single",
                f"One CRP only ({fmt(latest.value)} mg/L on day {day_of(latest, t0_day)}): "
                f"repeat it {when} to see a trend.",
                "one CRP only",
            )
        )
    elif latest.when.day < t0_day:
        missing.append(
            Remark(
                "crp-pre-treatment-only",
                "CRP only from before treatment started: no value shows the response.",
                "no CRP since treatment start",
            )
        )
    elif not trend.usable:
        missing.append(
            Remark(
                "crp-none-after-baseline",
                f"No CRP after day {day_of(latest, t0_day)}: a later value is needed to see "
                "a trend.",
                "no CRP trend yet",
            )
        )
    if latest is not None and crp_count > 0:
        age = (eval_day - latest.when.day).days
        if age > settings.crp_max_age_days:
            missing.append(
                Remark(
                    "crp-not-recent",
                    f"Latest CRP {age} days old: repeat CRP before deciding on imaging.",
                    f"latest CRP {age} days old",
                )
            )
    if not pain:
        missing.append(
            Remark(
                "pain-none",
                "No pain score (0-10) since treatment start: record one.",
                "no pain score",
            )
        )
    if trend.usable and latest is not None and latest.when.day >= t0_day:
        fall = trend.fall_pct
        fell_enough = fall is not None and fall >= settings.plateau_min_fall_pct
        normal = latest.value < settings.crp_normal_mg_l
        if not (fell_enough or normal):
            assert baseline is not None
            change = "" if trend.change_pct is None else f" ({signed_pct(trend.change_pct)})"
            unmet.append(
                Remark(
                    "crp-not-falling",
                    f"CRP {fmt(baseline.value)}{ARROW}{fmt(latest.value)} mg/L{change}: not yet "
                    f"down {fmt(settings.plateau_min_fall_pct)}% and not below "
                    f"{fmt(settings.crp_normal_mg_l)} mg/L.",
                    f"CRP not yet down {fmt(settings.plateau_min_fall_pct)}%",
                )
            )
    if pain:
        series = sorted(pain, key=sort_key)
        first, last = series[0], series[-1]
        if last.value > first.value:
            unmet.append(
                Remark(
                    "pain-not-improving",
                    f"Pain not decreasing: {fmt(first.value)}{ARROW}{fmt(last.value)}/10 since "
                    "treatment start.",
                    "pain not improving",
                )
            )
    return missing, unmet


def favourable_finding(
    trend: CrpTrend, pain: Sequence[Measurement], t0_day: date, settings: RuleSettings
) -> RuleFinding:
    assert trend.baseline is not None and trend.latest is not None
    series = sorted(pain, key=sort_key)
    data = {
        "baseline": figure(trend.baseline, t0_day),
        "latest": figure(trend.latest, t0_day),
        "minFallPct": settings.plateau_min_fall_pct,
        "normalLimitMgL": settings.crp_normal_mg_l,
        "belowNormal": trend.latest.value < settings.crp_normal_mg_l,
        "painFirst": figure(series[0], t0_day),
        "painLatest": figure(series[-1], t0_day),
        "crpMaxAgeDays": settings.crp_max_age_days,
    }
    if trend.fall_pct is not None:
        data["fallPct"] = round(trend.fall_pct, 1)
    crp = f"CRP {fmt(trend.baseline.value)}{ARROW}{fmt(trend.latest.value)} mg/L"
    fell = trend.fall_pct is not None and trend.fall_pct >= settings.plateau_min_fall_pct
    if fell:
        crp += f", {signed_pct(trend.change_pct or 0.0)}"
    else:  # advise-against through the normal limit: the CRP did not fall enough, say so
        crp += f", below the normal limit of {fmt(settings.crp_normal_mg_l)} mg/L"
    # "Improving" only when the CRP fell; a CRP that stays normal is said as it is.
    state = "Improving" if fell else "CRP normal, pain not worse"
    return RuleFinding(
        rule_id=RULE_ADVISE_AGAINST,
        recommendation=Recommendation.ADVISE_AGAINST,
        message=f"{state}: {crp}; {pain_phrase(series)}; no red flag recorded.",
        data=data,
        short=f"{state if not fell else 'improving'} ({crp}; {pain_phrase(series)})",
    )


def insufficient_finding(missing: Sequence[Remark], unmet: Sequence[Remark]) -> RuleFinding:
    data: dict[str, object] = {}
    if missing:
        data["missing"] = [r.to_dict() for r in missing]
    if unmet:
        data["unmet"] = [r.to_dict() for r in unmet]
    text = " ".join(r.message for r in (*missing, *unmet))
    return RuleFinding(
        rule_id=RULE_INSUFFICIENT_DATA,
        recommendation=Recommendation.INSUFFICIENT_DATA,
        message=f"Not enough to judge the response to treatment. {text}",
        data=data,
        short="; ".join(r.short for r in (*missing, *unmet)),
    )


KIND_WORDS = {"conditions": "diagnoses", "crp": "CRP", "esr": "ESR", "pain": "pain"}


def cut_off_note(kinds: frozenset[str]) -> Remark:
    names = [KIND_WORDS.get(k, k) for k in sorted(kinds, key=list(KIND_WORDS).index)]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return Remark(
        "paging-cut-off",
        f"Not every {listed} result could be read from the record (paging cut off): "
        "older results may be missing.",
        "record only partly read",
    )


def incomplete_reads(data: PatientData, t0_day: date, settings: RuleSettings) -> list[Remark]:
    """Gaps that a cut-off search leaves, for the advise-against check.

    clinical-rules.md: with CRP paging cut off, advise-against stands only if the CRP
    values read reach back to the start of the baseline window (T0 - 7 d): the missing
    older pages may hold the baseline. The same caution applies to pain (the first score
    since T0 may be missing) and to diagnoses (a red flag may be on an unread page).
    """
    gaps: list[Remark] = []
    if not data.cut_off:
        return gaps
    if "conditions" in data.cut_off:
        gaps.append(
            Remark(
                "conditions-incomplete",
                "Not every diagnosis could be read: a red flag may be missing.",
                "diagnoses only partly read",
            )
        )
    window_start = t0_day - timedelta(days=settings.baseline_window_days)
    for kind, kind_enum, reach, code, words in (
        ("crp", MeasurementKind.CRP, window_start, "crp-incomplete", "CRP"),
        ("pain", MeasurementKind.PAIN, t0_day, "pain-incomplete", "pain score"),
    ):
        if kind not in data.cut_off:
            continue
        days = [m.when.day for m in data.measurements if m.kind is kind_enum]
        if not days or min(days) > reach:
            gaps.append(
                Remark(
                    code,
                    f"Older {words} results could not be read, so the values from the start of "
                    "treatment may be missing.",
                    f"older {words} results not read",
                )
            )
    return gaps


def count_of(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
