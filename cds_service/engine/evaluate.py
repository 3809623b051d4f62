"""assess(): domain objects, settings and the evaluation time in; an Assessment out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from msgspec.structs import replace as replace_record

from fhir_mappers.model import (
    ImagingOrder,
    Measurement,
    MeasurementKind,
    PatientData,
    When,
)

from .assessment import (
    Assessment,
    Episode,
    KeyFigures,
    NotApplicableReason,
    Recommendation,
    Remark,
    RuleFinding,
)
from .episode import (
    applicability,
    covers,
    diagnosis_cutoff,
    evaluation_time,
    other_episode_starts,
    treatment_start,
)
from .findings import known_deficit_remark, known_notes, level_note
from .response import (
    count_of,
    cut_off_note,
    discordant_pair,
    discordant_remark,
    favourable_finding,
    favourable_response_gaps,
    incomplete_reads,
    insufficient_finding,
    pending_rise,
)
from .rules import (
    CrpTrend,
    complication_rule,
    crp_trend,
    known_findings,
    markers_rule,
    neuro_rule,
    pain_rule,
    sort_key,
    uncertain_dx_rule,
)
from .thresholds import RuleSettings
from .wording import ARROW, fmt

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
        unavailable=data.unavailable,
    )
    chosen, reason = applicability(orders, data.conditions, settings)
    if chosen is None:
        return replace(base, not_applicable_reason=reason)
    episode = treatment_start(chosen.condition, data.antibiotics, settings)
    first = _evaluate(base, episode, data, settings)
    others = [
        treatment_start(e.condition, data.antibiotics, settings)
        for e in other_episode_starts(data.conditions, settings, chosen)
    ]
    others = [e for e in others if e.t0 is None or episode.t0 is None or e.t0.day != episode.t0.day]
    if not others:
        return first
    # Which active NVO entry marks the treatment start is unknown: decide from each start
    # and keep the most cautious answer, so a second entry can never hide a red flag.
    results = [first] + [_evaluate(base, e, data, settings) for e in others]
    cautious = max(results, key=lambda a: CAUTION[a.recommendation])
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
    return replace(cautious, notes=(*cautious.notes, note))


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

    def moved(when: When) -> When:
        """The same value with its day in T0's zone; the very same object when that
        day is the one it already has (the usual case: one offset throughout), so a
        request with hundreds of values copies only the few that cross midnight."""
        if when.date_only:
            return when
        day = when.instant.astimezone(zone).date()
        return when if day == when.day else When(when.instant, day)

    def moved_or_none(when: When | None) -> When | None:
        return None if when is None else moved(when)

    measurements = []
    for m in data.measurements:
        when = moved(m.when)
        measurements.append(m if when is m.when else replace_record(m, when=when))
    conditions = []
    for c in data.conditions:
        onset, recorded = moved_or_none(c.onset), moved_or_none(c.recorded)
        abatement = moved_or_none(c.abatement)
        unchanged = onset is c.onset and recorded is c.recorded and abatement is c.abatement
        conditions.append(
            c
            if unchanged
            else replace_record(c, onset=onset, recorded=recorded, abatement=abatement)
        )
    return replace(data, measurements=tuple(measurements), conditions=tuple(conditions))


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
        notes.append(cut_off_note(data.cut_off))
    t0_day = episode.t0.day if episode.t0 is not None else None
    crp, esr, pain = _series(data.measurements, t0_day, eval_day, settings, counts, notes)

    cutoff = diagnosis_cutoff(episode, settings)
    known = known_findings(data.conditions, cutoff)
    findings: list[RuleFinding] = []
    for rule in (
        neuro_rule(data.conditions, t0_day, cutoff),
        complication_rule(data.conditions, t0_day, cutoff),
    ):
        if rule is not None:
            findings.append(rule)
    dx = uncertain_dx_rule(episode, data.conditions)
    if dx is not None:
        findings.append(dx)

    discordant = discordant_pair(crp, settings)
    trend = CrpTrend(None, None, None, None, None)
    if t0_day is not None:
        trend = crp_trend(crp, t0_day, settings)
        # a discordant latest pair is no evidence of a plateau or a rise
        markers = None if discordant else markers_rule(trend, t0_day, settings)
        for rule in (markers, pain_rule(pain, t0_day, settings)):
            if rule is not None:
                findings.append(rule)

    region = episode.condition.region
    covering = tuple(o.reference for o in base.orders if covers(o.region, region))
    if not findings and not covering:
        # no red flag and no study of the infected level: not repeat imaging of it
        return replace(
            base,
            episode=episode,
            infection_region=region,
            known=known,
            not_applicable_reason=NotApplicableReason.ORDER_OUTSIDE_INFECTION,
        )

    figures = _figures(trend, pain, esr, t0_day, eval_day)
    _marker_notes(crp, esr, trend, notes)
    notes.extend(known_notes(known, episode))
    missed = level_note(base.orders, covering, region)
    if missed is not None:
        notes.append(missed)

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
            deficit = known_deficit_remark(known, episode)
            if deficit is not None:
                missing.append(deficit)
            crp_skipped = sum(1 for i in data.issues if i.kind == "crp")
            gaps, unmet = favourable_response_gaps(
                trend,
                pain,
                t0_day,
                eval_day,
                len(crp),
                settings,
                crp_skipped,
                discordant=discordant is not None,
            )
            missing += gaps
            if discordant is not None:
                missing.append(discordant_remark(discordant))
            pending = pending_rise(data.issues, trend.latest, t0_day, eval_day, settings)
            if pending is not None:
                missing.append(pending)
            missing += incomplete_reads(data, t0_day, settings)
        if missing or unmet:
            recommendation = Recommendation.INSUFFICIENT_DATA
            findings.append(insufficient_finding(missing, unmet))
        else:
            recommendation = Recommendation.ADVISE_AGAINST
            assert t0_day is not None  # favourable response needs a T0
            findings.append(favourable_finding(trend, pain, t0_day, settings, known))
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
            yoon = _yoon_note(trend, esr, t0_day, settings)
            if yoon is not None:
                notes.append(yoon)

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
        known=known,
        covering=covering,
        infection_region=region,
    )


def _yoon_note(
    trend: CrpTrend, esr: Sequence[Measurement], t0_day: date, settings: RuleSettings
) -> Remark | None:
    """Advise-against at week 4 with CRP above 27.5 mg/L and ESR above 55 mm/h: both at
    the levels that predicted failure (Yoon 2010); the card does not reassure."""
    latest = trend.latest
    if latest is None or not esr or (latest.when.day - t0_day).days < settings.plateau_after_days:
        return None
    if latest.value <= settings.slow_fall_crp_mg_l or esr[-1].value <= settings.yoon_esr_mm_h:
        return None
    return Remark(
        "yoon-high-markers",
        f"CRP {fmt(latest.value)} mg/L and ESR {fmt(esr[-1].value)} mm/h after 4 weeks: both "
        f"above the levels that predicted treatment failure (CRP above "
        f"{fmt(settings.slow_fall_crp_mg_l)} mg/L with ESR above {fmt(settings.yoon_esr_mm_h)} "
        "mm/h, Yoon 2010): repeat CRP and ESR in 1-2 weeks.",
        "CRP and ESR still high at 4 weeks",
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
    kept = _without_duplicates(kept)
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
                f"{count_of(after_eval, 'result')} dated after the order "
                f"({eval_day.isoformat()}) not used.",
                "later results ignored",
            )
        )
    return tuple(crp), tuple(esr), tuple(pain)


def _without_duplicates(values: list[Measurement]) -> list[Measurement]:
    """Sorted by time, with equal duplicates shown once: the same kind, value and instant
    (a result sent by two interfaces) is one value (clinical-rules.md, "Discordant pair")."""
    values.sort(key=sort_key)
    kept: list[Measurement] = []
    seen: set[tuple[object, ...]] = set()
    for m in values:
        key = (m.kind, m.high_sensitivity, m.value, m.comparator, m.when.instant)
        if key in seen:
            continue
        seen.add(key)
        kept.append(m)
    return kept


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


__all__ = ["assess"]
