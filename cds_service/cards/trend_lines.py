"""The card's trend lines: the CRP sentence and table, pain and ESR, in the order a
clinician reads them. Split from ``detail.py`` along the data flow: this module picks the
lines from the assessment's series and figures, in the words of ``trend_phrases``;
``detail.py`` puts them in the card with the advice and the evidence."""

from __future__ import annotations

from cds_service.cards import trend_phrases as says
from cds_service.engine.assessment import Assessment
from cds_service.engine.limits import sort_key
from fhir_mappers.model import Measurement

# A long series is shortened to its first and last TABLE_EDGE values and those with a
# role; the values between are counted in one row (the trend app shows every one).
TABLE_ROWS = 12
TABLE_EDGE = 3


def crp_section(a: Assessment) -> list[str]:
    f = a.figures
    t0 = f.t0_day
    if not a.crp:
        return []
    rose = any("rise" in r.data for r in a.rules_fired)
    in_window = t0 is not None and f.crp_baseline_in_window
    first = says.BASELINE if in_window else says.FIRST_AFTER_START
    if f.crp_read_short:
        # its first value read may not be the baseline, on a red-flag card too (a code
        # review found "| 91 | baseline |" on a support card beside "older ones may be
        # missing")
        first = says.EARLIEST_READ
    roles: dict[str, list[str]] = {}
    for role, m in (
        (first, f.crp_baseline),
        (says.LOWEST_BEFORE_LATEST, f.crp_lowest_earlier if rose else None),
        (says.LATEST, f.crp_latest),
    ):
        if m is not None and len(a.crp) > 1:
            roles.setdefault(m.reference, []).append(role)
    lines = list(says.TABLE_HEAD)
    left_out: list[Measurement] = []
    last = len(a.crp) - 1
    for index, m in enumerate(a.crp):
        named = roles.get(m.reference, [])
        if last >= TABLE_ROWS and not named and TABLE_EDGE <= index <= last - TABLE_EDGE:
            left_out.append(m)
            continue
        if left_out:
            lines.append(says.left_out_row(left_out, t0))
            left_out = []
        lines.append(says.table_row(m, t0, named))
    return lines


def up_since_lowest(a: Assessment) -> list[str]:
    """On an advise-against card, a latest CRP above its lowest since treatment start,
    under the rise that would change the advice: said, so "improving" does not hide it
    (a clinician reader: 100 -> 40 -> 47 mg/L read only as "-53%")."""
    f = a.figures
    low, rise = f.crp_lowest_earlier, f.crp_up_from_lowest_pct
    if low is None or rise is None or f.t0_day is None or f.crp_latest is None:
        return []
    return [says.up_since_lowest(low, f.crp_latest, f.t0_day, rise, a.settings)]


def trend_lines(a: Assessment, crp_figures: bool = True) -> list[str]:
    """CRP, pain and ESR in one line each: the numbers that matter, with the CRP's age.

    Without ``crp_figures`` (a red flag's bullet already gives them) the CRP line is the
    latest CRP's age alone.
    """
    f = a.figures
    t0 = f.t0_day
    if t0 is None:
        # no treatment start: nothing can be placed on treatment days, so nothing counts
        # (the engine keeps no value); say how many there are, not "no CRP"
        n = a.counts.get("beforeWindow", 0)
        return [says.not_judged(n) if n else says.NOTHING_ON_RECORD]
    lines = []
    latest = f.crp_latest
    if latest is not None:
        age = says.ago((a.evaluation_day - latest.when.day).days)
        codes = {r.code for r in a.missing}
        if not crp_figures:
            lines.append(says.latest_crp(age))
        elif "crp-discordant" in codes:
            lines.append(says.no_crp_trend(age))
        elif "crp-none-on-treatment" in codes:
            lines.append(says.before_treatment(a.crp, t0, age))
        elif f.crp_baseline is not None and f.crp_percent_change is not None:
            # a CRP that never rose "cannot show the response" (its note says so): no
            # percentage that invites the reading the note forbids (an outside review)
            never = any(n.code == "crp-never-raised" for n in a.notes)
            pct = None if never else f.crp_percent_change
            base, in_window = f.crp_baseline, f.crp_baseline_in_window
            lines.append(says.crp_change(base, latest, pct, in_window, age, f.crp_read_short))
        elif len(a.crp) > 1:
            window = a.settings.baseline_window_days
            lines.append(says.up_to_baseline(sorted(a.crp, key=sort_key), latest, t0, window, age))
        else:
            lines.append(says.one_crp(latest, age))
    else:
        lines.append(says.NO_CRP)
    if a.pain:
        series = sorted(a.pain, key=sort_key)
        if len(series) > 5:  # first, lowest and latest carry the rules
            low = min(series, key=lambda m: (m.value, sort_key(m)))
            series = sorted({id(m): m for m in (series[0], low, series[-1])}.values(), key=sort_key)
        lines.append(says.pain_series(series, t0))
    else:
        # scores on record that could not be used are named below: not "no pain score"
        lines.append(says.NO_USABLE_PAIN if a.figures.pain_unusable else says.NO_PAIN)
    if a.esr:
        esr = sorted(a.esr, key=sort_key)
        if len(esr) > 5:  # first and latest give the trend; the trend app shows them all
            lines.append(says.esr_series([esr[0], esr[-1]], t0, of=len(esr)))
        else:
            lines.append(says.esr_series(esr, t0))
    return lines
