"""No red flag: is the response favourable (advise-against), or what is missing?

clinical-rules.md: advise-against needs a usable CRP trend that fell enough or reached
the normal range, pain not worse since treatment start, a recent CRP, and reads that
reach back far enough when paging was cut off; otherwise the answer is insufficient
data, saying what to do. This module finds the gaps and gives the figures of both outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from fhir_mappers.model import ConditionFact, DataIssue, Measurement

from .assessment import (
    FACTS,
    RULE_ADVISE_AGAINST,
    RULE_INSUFFICIENT_DATA,
    Recommendation,
    Remark,
    RuleFinding,
)
from .limits import below_normal_limit, sort_key, within_normal_range
from .records import figure
from .rules import CrpTrend, day_of, pct_change
from .thresholds import PCT_DIGITS, RuleSettings


def is_recent(day: date, eval_day: date, settings: RuleSettings) -> bool:
    """A value of ``day`` is at most ``crp_max_age_days`` before the order (clinical-rules
    .md: advise-against needs a recent CRP): the one place a CRP's age is judged."""
    return (eval_day - day).days <= settings.crp_max_age_days


def none_on_treatment(days: int, settings: RuleSettings) -> Remark:
    """No CRP on treatment yet, ``days`` after its start: the first on-treatment CRP is
    due about one weekly check in (``crp_max_age_days``, 7: "weekly markers are the usual
    rhythm", clinical-rules.md), and from that day on a CRP now will show the response
    (``due``): an outside clinician read "the first on-treatment CRP, about day 7, will
    show the response" on day 10 (the service's own reading, to be confirmed by the
    clinical reviewers)."""
    first = settings.crp_max_age_days
    return Remark(
        "crp-none-on-treatment", {"daysSinceT0": days, "firstCheckDay": first, "due": days >= first}
    )


def favourable_response_gaps(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    t0_day: date,
    eval_day: date,
    crp_count: int,
    settings: RuleSettings,
    crp_skipped: int,
    discordant: bool = False,
    pain_skipped: int = 0,
) -> tuple[list[Remark], list[Remark]]:
    """What is missing, and which criterion is unmet, for advise-against.

    Beyond the letter of clinical-rules.md, the latest CRP must be on or after T0: a fall
    seen only in pre-treatment values says nothing about the response to treatment.
    ``crp_skipped`` counts CRP results on record that could not be used (e.g. an
    unconvertible unit), so that the card never says "no CRP" when there are some;
    ``pain_skipped`` the pain scores since T0 likewise (``pain-none-usable``).
    A CRP on T0's own day is not yet on treatment: with none later the trend on treatment
    is unknown, which is said as such, never as "not yet down 25%". A ``discordant``
    latest pair (see ``discordant_pair``) is judged by neither value. Pain scores only on
    T0's day are no pain on treatment either (``pain-none-on-treatment``).
    """
    missing: list[Remark] = []
    unmet: list[Remark] = []
    latest, baseline = trend.latest, trend.baseline
    if crp_count == 0 or latest is None:
        if crp_skipped:
            missing.append(Remark("crp-none-usable", {"skipped": crp_skipped}))
        else:
            missing.append(Remark("crp-none", {"lookbackDays": settings.data_lookback_days}))
    elif crp_count == 1:
        recent = is_recent(latest.when.day, eval_day, settings)
        missing.append(Remark("crp-single", {"latest": figure(latest, t0_day), "recent": recent}))
    elif latest.when.day <= t0_day:
        missing.append(none_on_treatment((eval_day - t0_day).days, settings))
    elif not trend.usable:
        missing.append(Remark("crp-none-after-baseline", {"latestDay": day_of(latest, t0_day)}))
    if latest is not None and crp_count > 0 and not is_recent(latest.when.day, eval_day, settings):
        missing.append(Remark("crp-not-recent", {"ageDays": (eval_day - latest.when.day).days}))
    if not pain:
        # scores on record that could not be used (a value sent as text, say) are named
        # below on the card: "record one" alone contradicted them (an interop review)
        missing.append(
            Remark("pain-none-usable", {"skipped": pain_skipped})
            if pain_skipped
            else Remark("pain-none")
        )
    elif max(p.when.day for p in pain) <= t0_day:
        # Pain only on T0's own day: "since T0" by the letter, but no course of the pain
        # on treatment, as a CRP on T0's day is no CRP on treatment (an outside clinician
        # saw advise-against, and a delete, beside "record a pain score now").
        latest_pain = max(pain, key=sort_key)
        only: dict[str, Any] = {"latest": figure(latest_pain, t0_day)}
        if pain_skipped:
            # later scores on record that could not be used: named, not "record one" alone
            only["skipped"] = pain_skipped
        missing.append(Remark("pain-none-on-treatment", only))
    if trend.usable and latest is not None and latest.when.day > t0_day and not discordant:
        slow = slow_fall(trend, t0_day, settings)
        if slow is not None:
            unmet.append(slow)
        elif not fell_enough_or_normal(trend, settings):
            assert baseline is not None
            data: dict[str, Any] = {
                "baseline": figure(baseline, t0_day),
                "latest": figure(latest, t0_day),
                "minFallPct": settings.plateau_min_fall_pct,
                "normalLimitMgL": settings.crp_normal_mg_l,
            }
            if trend.change_pct is not None:
                data["changePct"] = trend.change_pct
            data["plateauAfterDays"] = settings.plateau_after_days
            data["orderDay"] = (eval_day - t0_day).days
            # recent: no second CRP is asked for now (``next_steps``), nor said to be
            data["recent"] = is_recent(latest.when.day, eval_day, settings)
            unmet.append(Remark("crp-not-falling", data))
    if pain:
        series = sorted(pain, key=sort_key)
        first, last = series[0], series[-1]
        if last.value > first.value:
            unmet.append(
                Remark(
                    "pain-not-improving",
                    {"first": figure(first, t0_day), "latest": figure(last, t0_day)},
                )
            )
    return missing, unmet


def fell_enough_or_normal(trend: CrpTrend, settings: RuleSettings) -> bool:
    """The latest CRP has fallen at least 25% from baseline, or is below the normal limit
    (a value reported as "<10" is): the CRP criterion of advise-against."""
    latest, fall = trend.latest, trend.fall_pct
    if latest is None:
        return False
    if fall is not None and fall >= settings.plateau_min_fall_pct:
        return True
    return below_normal_limit(latest.value, latest.comparator, settings.crp_normal_mg_l)


def crp_favourable(trend: CrpTrend, t0_day: date, settings: RuleSettings) -> bool:
    """The CRP response advise-against asks for (clinical-rules.md): a usable trend whose
    latest value was taken on treatment (after T0's day), fell at least 25% or is below
    the normal limit, and is not a slow fall. The discordant pair is the caller's."""
    latest = trend.latest
    if not trend.usable or latest is None or latest.when.day <= t0_day:
        return False
    return fell_enough_or_normal(trend, settings) and slow_fall(trend, t0_day, settings) is None


def favourable_finding(
    trend: CrpTrend,
    pain: Sequence[Measurement],
    t0_day: date,
    settings: RuleSettings,
    known: Sequence[ConditionFact] = (),
) -> RuleFinding:
    """Advise-against, with what its sentence says besides the figures: whether the CRP
    fell enough (else it is below the normal limit), how many pain scores there are and
    whether they stayed within a point, and whether a finding known at diagnosis is on
    record (then no *new* red flag, never "no red flag")."""
    assert trend.baseline is not None and trend.latest is not None
    series = sorted(pain, key=sort_key)
    data: dict[str, Any] = {
        "baseline": figure(trend.baseline, t0_day),
        "latest": figure(trend.latest, t0_day),
        "minFallPct": settings.plateau_min_fall_pct,
        "normalLimitMgL": settings.crp_normal_mg_l,
        "belowNormal": below_normal_limit(
            trend.latest.value, trend.latest.comparator, settings.crp_normal_mg_l
        ),
        "painFirst": figure(series[0], t0_day),
        "painLatest": figure(series[-1], t0_day),
        "crpMaxAgeDays": settings.crp_max_age_days,
    }
    if trend.fall_pct is not None:
        data["fallPct"] = round(trend.fall_pct, PCT_DIGITS)
    values = [m.value for m in series]
    data[FACTS] = {
        # a fall counts as a response only from a raised baseline: 8 -> 4 mg/L is noise
        "fell": trend.fall_pct is not None
        and trend.fall_pct >= settings.plateau_min_fall_pct
        and trend.baseline.value > settings.crp_normal_mg_l,
        "painCount": len(series),
        "painStable": max(values) - min(values) < 1,
        "knownAtDiagnosis": bool(known),
    }
    return RuleFinding(
        rule_id=RULE_ADVISE_AGAINST, recommendation=Recommendation.ADVISE_AGAINST, data=data
    )


def insufficient_finding(missing: Sequence[Remark], unmet: Sequence[Remark]) -> RuleFinding:
    data: dict[str, object] = {}
    if missing:
        data["missing"] = [r.to_dict() for r in missing]
    if unmet:
        data["unmet"] = [r.to_dict() for r in unmet]
    return RuleFinding(
        rule_id=RULE_INSUFFICIENT_DATA, recommendation=Recommendation.INSUFFICIENT_DATA, data=data
    )


def slow_fall(trend: CrpTrend, t0_day: date, settings: RuleSettings) -> Remark | None:
    """From day 28, a fall of 25% to under 50% with the latest CRP still above 27.5 mg/L:
    the response is not yet favourable (clinical-rules.md, "Slow fall"; Yoon 2010)."""
    latest, baseline, fall = trend.latest, trend.baseline, trend.fall_pct
    if not trend.usable or latest is None or baseline is None or fall is None:
        return None
    day = day_of(latest, t0_day)
    if day < settings.plateau_after_days:
        return None
    if not settings.plateau_min_fall_pct <= fall < settings.slow_fall_max_pct:
        return None
    if latest.value <= settings.slow_fall_crp_mg_l:
        return None
    return Remark(
        "crp-slow-fall",
        {
            "baseline": figure(baseline, t0_day),
            "latest": figure(latest, t0_day),
            "changePct": trend.change_pct or 0.0,
        },
    )


def discordant_pair(
    crp: Sequence[Measurement], settings: RuleSettings
) -> tuple[Measurement, Measurement] | None:
    """The latest two CRPs when they were taken less than 12 h apart and differ by more
    than 50% of the lower value: CRP doubles in about 8 hours at most, so neither can be
    trusted alone (clinical-rules.md, "Discordant pair")."""
    if len(crp) < 2:
        return None
    earlier, latest = crp[-2], crp[-1]
    seconds = (latest.when.instant - earlier.when.instant).total_seconds()
    if seconds >= settings.discordant_max_hours * 3600:
        return None
    low, high = sorted((earlier.value, latest.value))
    if high == low:
        return None
    differ = pct_change(low, high)
    if differ is not None and differ <= settings.discordant_min_pct:
        return None
    return earlier, latest


def discordant_remark(pair: tuple[Measurement, Measurement]) -> Remark:
    earlier, latest = pair
    hours = (latest.when.instant - earlier.when.instant).total_seconds() / 3600
    return Remark(
        "crp-discordant",
        {
            "earlier": figure(earlier, None),
            "latest": figure(latest, None),
            "sameDay": latest.when.date_only,
            "hoursApart": hours,
        },
    )


# Statuses of a result still awaiting verification (clinical-rules.md, "Pending results").
PENDING_STATUSES = frozenset({"preliminary", "registered"})
# Statuses of a result that is out (a preliminary one too: its value, once readable, is
# judged by the pending rule): an unreadable value there may hide the answer.
RESULT_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


def unread_latest(
    issues: Sequence[DataIssue], latest: Measurement | None, t0_day: date
) -> Remark | None:
    """A resulted CRP (final, amended, corrected, or preliminary: an outside clinician's
    re-run saw a preliminary "see comment" leave advise-against standing) taken after the
    latest counted CRP and
    left out because its value could not be read (a text result "95 mg/L", a number
    without a unit or with units that disagree): it may hide the rise that would change
    the answer, so it blocks advise-against as a pending rise does, and the card asks for
    it to be read (an outside clinician's review, 2026-12-07, to be confirmed by the
    clinical reviewers: "Pending results" extended to results the service cannot read).
    The latest of them is named; the left-out lines show its value as sent."""
    if latest is None:
        return None
    unread = [
        issue
        for issue in issues
        if issue.kind == "crp"
        and issue.status in RESULT_STATUSES
        and issue.value is None
        and not issue.kept
        and issue.when is not None
        and issue.when.instant > latest.when.instant
    ]
    if not unread:
        return None
    last = max(unread, key=lambda i: i.when.instant if i.when else latest.when.instant)
    assert last.when is not None
    return Remark(
        "crp-unread-latest",
        {
            "reference": last.reference,
            "day": (last.when.day - t0_day).days,
            "count": len(unread),
            "latest": figure(latest, t0_day),
        },
    )


def pending_rise(
    issues: Sequence[DataIssue],
    latest: Measurement | None,
    t0_day: date,
    settings: RuleSettings,
) -> Remark | None:
    """A CRP left out because it is not final, taken after the latest counted CRP, at or
    above the normal limit and more than 20% above the latest: it would change the answer
    if confirmed, so it blocks advise-against and its value is shown."""
    if latest is None:
        return None
    pending = []
    for issue in issues:
        if issue.kind != "crp" or issue.status not in PENDING_STATUSES:
            continue
        # one dated after the order counts too: an order pended days before it is signed
        # must not be advised against over a preliminary rise since (an outside re-read)
        if issue.value is None or issue.when is None:
            continue
        if issue.when.instant <= latest.when.instant:
            continue
        if within_normal_range(issue.value, issue.comparator, settings.crp_normal_mg_l):
            continue  # "<10" is no rise either
        rise = pct_change(latest.value, issue.value)
        if rise is None or rise > settings.rise_pct:
            pending.append(issue)
    if not pending:
        return None
    top = max(pending, key=lambda i: (i.value or 0.0, i.reference))
    assert top.value is not None and top.when is not None
    return Remark(
        "crp-pending-rise",
        {
            "reference": top.reference,
            "status": top.status,
            "value": top.value,
            "day": (top.when.day - t0_day).days,
            "latest": figure(latest, t0_day),
        },
    )


def crp_awaited(
    issues: Sequence[DataIssue],
    latest: Measurement | None,
    t0_day: date,
    eval_day: date,
    settings: RuleSettings,
) -> Remark | None:
    """A CRP drawn after the latest counted CRP (with none counted, since the look-back)
    whose result is not in yet: registered or preliminary, with no value. The card names
    it with its day, as every left-out value the chart shows (clinical-rules.md, "Pending
    results"), and does not order another CRP beside it (an outside clinician's review:
    "Order CRP and ESR" beside a CRP drawn on day 28 awaiting its result). It blocks
    nothing: a result not in cannot change the answer yet. The newest is named, with how
    many. Only one drawn by the order's day and no older than a CRP must be (a re-check
    found one registered 21 days before awaited still, one of the next day "drawn")."""
    since = t0_day - timedelta(days=settings.data_lookback_days)
    awaited = [
        (i.when.instant, i.reference, i.when.day, i.status)
        for i in issues
        if i.kind == "crp"
        and i.status in PENDING_STATUSES
        and i.value is None
        and i.text is None
        and i.reported is None
        and i.when is not None
        and (i.when.instant > latest.when.instant if latest is not None else i.when.day >= since)
        and i.when.day <= eval_day
        and is_recent(i.when.day, eval_day, settings)
    ]
    if not awaited:
        return None
    _, reference, day, status = max(awaited)
    return Remark(
        "crp-awaited",
        {
            "reference": reference,
            "status": status,
            "day": (day - t0_day).days,
            "count": len(awaited),
        },
    )
