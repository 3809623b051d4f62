"""assess(): domain objects, settings and the evaluation time in; an Assessment out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from fhir_mappers.model import (
    ImagingOrder,
    Measurement,
    MeasurementKind,
    PatientData,
    When,
)

from .assessment import (
    RULE_ADVISE_AGAINST,
    RULE_INSUFFICIENT_DATA,
    Assessment,
    Episode,
    KeyFigures,
    Recommendation,
    Remark,
    RuleFinding,
    figure,
)
from .episode import applicability, evaluation_time, other_episode_starts
from .rules import (
    ARROW,
    CrpTrend,
    complication_rule,
    crp_trend,
    favourable_response_gaps,
    fmt,
    markers_rule,
    neuro_rule,
    pain_rule,
    signed_pct,
    sort_key,
    uncertain_dx_rule,
)
from .settings import RuleSettings

# The mapper has already dropped entered-in-error/cancelled/registered/unknown values and
# decided on preliminary ones; the engine re-checks so that a hand-built or future mapper
# input can never slip an unusable value into a trend.
USABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


def assess(
    orders: Sequence[ImagingOrder], data: PatientData, settings: RuleSettings, now: datetime
) -> Assessment:
    """Decide whether repeat spine imaging is supported for this patient at this time."""
    orders = tuple(sorted(orders, key=lambda o: o.reference))
    evaluated_at, eval_day, source = evaluation_time(orders, now)
    counts = {
        "conditions": len(data.conditions),
        "measurements": len(data.measurements),
        "issues": len(data.issues),
    }
    base = Assessment(
        recommendation=Recommendation.NOT_APPLICABLE,
        evaluated_at=evaluated_at,
        evaluation_day=eval_day,
        evaluation_time_source=source,
        orders=orders,
        settings=settings,
        counts=counts,
        issues=data.issues,
    )
    episode, reason = applicability(orders, data.conditions, settings)
    if episode is None:
        return replace(base, not_applicable_reason=reason)
    first = _evaluate(base, episode, data, settings)
    others = other_episode_starts(data.conditions, settings, episode)
    if not others:
        return first
    # Which active NVO entry marks the treatment start is unknown: decide from each start
    # and keep the most cautious answer, so a second entry can never hide a red flag.
    results = [first] + [_evaluate(base, e, data, settings) for e in others]
    chosen = max(results, key=lambda a: CAUTION[a.recommendation])
    starts = ", ".join(
        sorted(
            r.episode.t0.day.isoformat()
            for r in results
            if r.episode is not None and r.episode.t0 is not None
        )
    )
    note = Remark(
        "several-episode-starts",
        f"The infection is recorded more than once, with different start dates ({starts}): "
        "the most cautious answer is shown.",
        "several start dates",
    )
    return replace(chosen, notes=(*chosen.notes, note))


def _days_in_zone_of(episode: Episode, data: PatientData) -> PatientData:
    """Count days in T0's time zone, so that day numbers follow elapsed time.

    Each value's ``day`` is the calendar date in its own offset; with mixed offsets a value
    near midnight could otherwise fall a day off at a threshold (28 d 5 h counted as day
    27). Date-only values keep their date ("a date-only value is that day"); without a
    timed T0 the dates stay as written.
    """
    t0 = episode.t0
    if t0 is None or t0.date_only:
        return data
    zone = t0.instant.tzinfo

    def moved(when: When | None) -> When | None:
        if when is None or when.date_only:
            return when
        return replace(when, day=when.instant.astimezone(zone).date())

    measurements = tuple(replace(m, when=moved(m.when) or m.when) for m in data.measurements)
    conditions = tuple(
        replace(c, onset=moved(c.onset), recorded=moved(c.recorded), abatement=moved(c.abatement))
        for c in data.conditions
    )
    return replace(data, measurements=measurements, conditions=conditions)


# The more cautious answer wins when the data allow several readings.
CAUTION = {
    Recommendation.ADVISE_AGAINST: 0,
    Recommendation.INSUFFICIENT_DATA: 1,
    Recommendation.SUPPORT: 2,
    Recommendation.SUPPORT_URGENT: 3,
    Recommendation.NOT_APPLICABLE: -1,
}


def _evaluate(
    base: Assessment,
    episode: Episode,
    data: PatientData,
    settings: RuleSettings,
) -> Assessment:
    """The rules for one episode start (T0)."""
    data = _days_in_zone_of(episode, data)
    eval_day = base.evaluation_day
    counts = dict(base.counts)
    notes: list[Remark] = []
    if data.cut_off:
        notes.append(_cut_off_note(data.cut_off))
    t0_day = episode.t0.day if episode.t0 is not None else None
    crp, esr, pain = _series(data.measurements, t0_day, eval_day, settings, counts, notes)

    findings: list[RuleFinding] = []
    for rule in (neuro_rule(data.conditions, t0_day), complication_rule(data.conditions, t0_day)):
        if rule is not None:
            findings.append(rule)
    dx = uncertain_dx_rule(episode, data.conditions)
    if dx is not None:
        findings.append(dx)

    trend = CrpTrend(None, None, None, None, None)
    if t0_day is not None:
        trend = crp_trend(crp, t0_day, settings)
        for rule in (markers_rule(trend, t0_day, settings), pain_rule(pain, t0_day, settings)):
            if rule is not None:
                findings.append(rule)

    figures = _figures(trend, pain, esr, t0_day, eval_day)
    _marker_notes(crp, esr, trend, notes)

    missing: list[Remark] = []
    unmet: list[Remark] = []
    if findings:
        urgent = any(f.recommendation is Recommendation.SUPPORT_URGENT for f in findings)
        recommendation = Recommendation.SUPPORT_URGENT if urgent else Recommendation.SUPPORT
    else:
        if t0_day is None:
            missing.append(
                Remark(
                    "episode-start-unknown",
                    "The infection diagnosis has no onset or recorded date, so the treatment "
                    "start is unknown.",
                    "treatment start unknown",
                )
            )
        else:
            crp_skipped = sum(1 for i in data.issues if i.kind == "crp")
            missing, unmet = favourable_response_gaps(
                trend, pain, t0_day, eval_day, len(crp), settings, crp_skipped
            )
            missing += _incomplete_reads(data, t0_day, settings)
        if missing or unmet:
            recommendation = Recommendation.INSUFFICIENT_DATA
            findings.append(_insufficient(missing, unmet))
        else:
            recommendation = Recommendation.ADVISE_AGAINST
            assert t0_day is not None  # favourable response needs a T0
            findings.append(_favourable(trend, pain, t0_day, settings))
            days = figures.days_since_t0
            if days is not None and days < settings.plateau_after_days:
                notes.append(
                    Remark(
                        "early-order",
                        f"Ordered on day {days} of treatment: before day "
                        f"{settings.plateau_after_days}, imaging can look worse while the patient "
                        "recovers.",
                        "early order",
                    )
                )

    return replace(
        base,
        counts=counts,
        recommendation=recommendation,
        episode=episode,
        rules_fired=tuple(findings),
        crp=crp,
        pain=pain,
        esr=esr,
        figures=figures,
        missing=tuple(missing),
        unmet=tuple(unmet),
        notes=tuple(notes),
    )


def _series(
    measurements: Sequence[Measurement],
    t0_day: date | None,
    eval_day: date,
    settings: RuleSettings,
    counts: dict[str, int],
    notes: list[Remark],
) -> tuple[tuple[Measurement, ...], tuple[Measurement, ...], tuple[Measurement, ...]]:
    """The CRP, ESR and pain values that count, each sorted by time.

    Counted: usable status, finite value, from T0 - lookback to the evaluation day;
    pain only from T0 on ("since T0"). hs-CRP only when no standard CRP counts.
    Without a T0 nothing can be windowed, so nothing counts.
    """
    ignored_status = after_eval = before_window = 0
    kept: list[Measurement] = []
    for m in measurements:
        if m.status not in USABLE_STATUSES or not math.isfinite(m.value):
            ignored_status += 1
            continue
        if m.when.day > eval_day:
            after_eval += 1
            continue
        if t0_day is None or (m.when.day - t0_day).days < -settings.data_lookback_days:
            before_window += 1
            continue
        kept.append(m)
    kept.sort(key=sort_key)
    standard = [m for m in kept if m.kind is MeasurementKind.CRP and not m.high_sensitivity]
    crp = standard or [m for m in kept if m.kind is MeasurementKind.CRP and m.high_sensitivity]
    if crp and not standard:
        notes.append(
            Remark(
                "hs-crp-used",
                "High-sensitivity CRP used: no standard CRP on record.",
                "hs-CRP used",
            )
        )
    esr = [m for m in kept if m.kind is MeasurementKind.ESR]
    pain = [
        m
        for m in kept
        if m.kind is MeasurementKind.PAIN and t0_day is not None and m.when.day >= t0_day
    ]
    counts.update(
        crpUsed=len(crp),
        esrUsed=len(esr),
        painUsed=len(pain),
        ignoredStatus=ignored_status,
        afterEvaluation=after_eval,
        beforeWindow=before_window,
    )
    if after_eval:
        notes.append(
            Remark(
                "after-evaluation",
                f"{_count(after_eval, 'result')} dated after the order "
                f"({eval_day.isoformat()}) not used.",
                "later results ignored",
            )
        )
    return tuple(crp), tuple(esr), tuple(pain)


def _figures(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    esr: Sequence[Measurement],
    t0_day: date | None,
    eval_day: date,
) -> KeyFigures:
    pain_sorted = sorted(pain, key=sort_key)
    return KeyFigures(
        t0_day=t0_day,
        days_since_t0=(eval_day - t0_day).days if t0_day is not None else None,
        crp_baseline=trend.baseline,
        crp_latest=trend.latest,
        crp_lowest_earlier=trend.lowest_earlier,
        crp_percent_change=trend.change_pct if trend.usable else None,
        crp_rise_pct=trend.rise_pct if trend.usable else None,
        pain_first=pain_sorted[0] if pain_sorted else None,
        pain_lowest=min(pain_sorted, key=lambda m: (m.value, sort_key(m))) if pain_sorted else None,
        pain_latest=pain_sorted[-1] if pain_sorted else None,
        esr_first=esr[0] if esr else None,
        esr_latest=esr[-1] if esr else None,
    )


def _marker_notes(
    crp: Sequence[Measurement], esr: Sequence[Measurement], trend: CrpTrend, notes: list[Remark]
) -> None:
    limits = [m for m in crp if m.comparator]
    if limits:
        shown = ", ".join(
            f"{m.comparator}{fmt(m.value)} mg/L ({m.when.day.isoformat()})" for m in limits
        )
        notes.append(
            Remark(
                "crp-at-limit",
                f"CRP reported as a limit ({shown}) is counted at the limit.",
                "CRP at a limit",
            )
        )
    if (
        len(esr) >= 2
        and esr[-1].value > esr[0].value
        and trend.change_pct is not None
        and trend.change_pct < 0
    ):
        notes.append(
            Remark(
                "esr-rising",
                f"ESR rising ({fmt(esr[0].value)}{ARROW}{fmt(esr[-1].value)} mm/h) while CRP "
                "falls: ESR follows bone change, which resolves more slowly (Ahn 2020); alone "
                "it does not mean failure. Consider repeating CRP and ESR.",
                "ESR rising",
            )
        )


def _favourable(
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


def _insufficient(missing: Sequence[Remark], unmet: Sequence[Remark]) -> RuleFinding:
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


def _cut_off_note(kinds: frozenset[str]) -> Remark:
    names = [KIND_WORDS.get(k, k) for k in sorted(kinds, key=list(KIND_WORDS).index)]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return Remark(
        "paging-cut-off",
        f"Not every {listed} result could be read from the record (paging cut off): "
        "older results may be missing.",
        "record only partly read",
    )


def _incomplete_reads(data: PatientData, t0_day: date, settings: RuleSettings) -> list[Remark]:
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


__all__ = ["assess"]
