"""The phrasebook's remarks: what is missing, what is unmet, and the notes.

Each remark code has one function from the remark's data to its (message, short): the
message is a sentence of the card's detail, the short a few words for its summary. The
engine decided; these only say it (``phrasebook.phrase`` is the way in).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.cards import text
from cds_service.cards.completeness_phrases import COMPLETENESS_REMARKS
from cds_service.cards.imaging_phrases import IMAGING_REMARKS
from cds_service.cards.known_phrases import KNOWN_REMARKS
from cds_service.cards.level_phrases import LEVEL_REMARKS
from cds_service.cards.marker_phrases import MARKER_REMARKS
from cds_service.cards.phrase import Data, Phrase, fixed
from cds_service.cards.safe_text import quote
from cds_service.cards.words import (
    ARROW,
    at_weeks,
    change_digits,
    change_pct,
    count_of,
    fmt,
    shown,
)


def _crp_none_usable(d: Data) -> Phrase:
    return Phrase(
        f"No usable CRP: {count_of(int(d['skipped']), 'CRP result')} on record could not be "
        "used (see below).",
        "no usable CRP",
    )


def _pain_none_usable(d: Data) -> Phrase:
    return Phrase(
        f"No usable pain score (0-10) since treatment start: "
        f"{count_of(int(d['skipped']), 'pain score')} on record could not be used (see "
        "below); record one.",
        "no usable pain score",
    )


def _crp_none(d: Data) -> Phrase:
    return Phrase(
        f"No CRP on record from {d['lookbackDays']} days before treatment start onwards.",
        "no CRP since treatment start",
    )


def _crp_single(d: Data) -> Phrase:
    when = "at the next weekly check" if d["recent"] else "now"
    latest = d["latest"]
    return Phrase(
        f"One CRP only ({shown(latest)} mg/L on day {latest['day']}): repeat it {when} to see "
        "a trend.",
        "one CRP only",
    )


def _crp_none_on_treatment(d: Data) -> Phrase:
    days = int(d["daysSinceT0"])
    since = "today" if days == 0 else f"{count_of(days, 'day')} ago"
    # its day passed (``due``): not "about day 7" on day 10 (an outside clinician)
    which = (
        "a CRP now" if d["due"] else f"the first on-treatment CRP, about day {d['firstCheckDay']},"
    )
    return Phrase(
        f"No CRP since treatment started ({since}): {which} will show the response.",
        "no CRP on treatment yet",
    )


def _pain_none_on_treatment(d: Data) -> Phrase:
    later = (
        f"; {count_of(int(d['skipped']), 'later pain score')} could not be used (see below)"
        if d.get("skipped")
        else ""
    )
    return Phrase(
        f"Pain recorded only on day 0 ({shown(d['latest'])}/10), before treatment could act"
        f"{later}: record a pain score now.",
        "no pain score on treatment",
    )


def _crp_none_after_baseline(d: Data) -> Phrase:
    return Phrase(
        f"No CRP after the baseline (day {d['latestDay']}): a later value is needed to see "
        "a trend.",
        "no CRP trend yet",
    )


def _crp_not_recent(d: Data) -> Phrase:
    age = d["ageDays"]
    return Phrase(
        f"Latest CRP {age} days old: repeat CRP before deciding on imaging.",
        f"latest CRP {age} days old",
    )


def _crp_not_falling(d: Data) -> Phrase:
    latest = d["latest"]
    comparator = latest.get("comparator")
    change = (
        f" ({change_pct(d['changePct'], comparator, d['baseline'].get('comparator'))})"
        if "changePct" in d
        else ""
    )
    least = fmt(d["minFallPct"])
    day, judged = latest["day"], d.get("plateauAfterDays")
    if comparator in ("<", "<="):
        # "<=10" after 12: the true value may be anywhere below, so whether it fell 25%
        # cannot be told, and the card does not say it did not (an outside re-run)
        return Phrase(
            f"CRP {shown(d['baseline'])}{ARROW}{shown(latest)} mg/L{change} by day {day}: a "
            f"result reported only as {shown(latest)} mg/L cannot show whether it is down "
            f"{least}%; repeat CRP with a measured value.",
            f"CRP reported only as {shown(latest)} mg/L: repeat CRP",
        )
    order_day = d.get("orderDay", day)
    # a CRP from before the day the plateau is judged: say when to look again (the next
    # step), by the order's day (an order past that day repeats them now)
    then = ""
    if judged is not None and day < judged:
        when, at = (
            (f"at about day {judged}", "then")
            if order_day < judged
            # a CRP of the last days: not "now" beside no order for one (a clinician
            # reviewer: "repeat now" the day after a CRP, and no CRP suggested)
            else ("at the next check" if d.get("recent") else "now", f"at day {judged} or later")
        )
        then = (
            f" Repeat CRP and ESR {when}: a fall still under {least}% {at} is read as "
            "markers not responding (IDSA 2015: markers unchanged or rising after 4 weeks "
            "raise suspicion of treatment failure)."
        )
    # at or above its baseline: no fall at all, not a fall "not yet" large enough (an
    # outside re-run read "+10% ... not yet down 25%")
    unfallen = d.get("changePct", -1) >= 0
    state = "not down from baseline" if unfallen else f"not yet down {least}%"
    digits = change_digits(d["baseline"]["value"], latest["value"], d.get("changePct"))
    return Phrase(
        f"CRP {shown(d['baseline'], digits)}{ARROW}{shown(latest, digits)} mg/L{change} by day "
        f"{day}: {state} and not below {fmt(d['normalLimitMgL'])} mg/L.{then}",
        f"CRP {state}",
    )


def _pain_not_improving(d: Data) -> Phrase:
    return Phrase(
        f"Pain not decreasing: {shown(d['first'])}{ARROW}{shown(d['latest'])}/10 since "
        "treatment start: re-examine (pain, neurology) before deciding on imaging.",
        "pain not improving",
    )


def _yoon_high_markers(d: Data) -> Phrase:
    return Phrase(
        # beside advise-against, as clinical-rules.md words it: "both are at the levels that
        # predicted failure (Yoon 2010)", a finding of that study, not a prediction here
        f"CRP {fmt(d['crp'])} mg/L and ESR {fmt(d['esr'])} mm/h {at_weeks(d['afterDays'])}: "
        "both at levels "
        f"that predicted failure in Yoon 2010 (CRP above {fmt(d['crpLimit'])} mg/L with ESR "
        f"above {fmt(d['esrLimit'])} mm/h): not reassuring; repeat both {text.REPEAT_INTERVAL}.",
        f"CRP and ESR still high {at_weeks(d['afterDays'])}",
    )


def _left_out(why: Callable[[Data], str]) -> Callable[[Data], Phrase]:
    """CRP values the chart shows but the rules did not use, with value and day."""

    def say(d: Data) -> Phrase:
        values = [
            f"{v.get('comparator') or ''}{fmt(v['value'])} mg/L on "
            + (f"day {v['day']}" if "day" in v else str(v["date"]))
            for v in d["values"]
        ]
        more = f" and {d['earlier']} earlier" if d["earlier"] else ""
        return Phrase(
            f"Not used, {why(d)}: CRP {', '.join(values)}{more}.", f"CRP {why(d)} not used"
        )

    return say


#: How a result of each kind reads when it is named (the scale after the value).
_NAMED_KIND = {"crp": ("CRP ", " mg/L"), "esr": ("ESR ", " mm/h"), "pain": ("pain ", "/10")}


def _named_results(d: Data) -> str:
    """ "CRP 75 mg/L on day 45, pain 8/10 on 2026-11 and 2 earlier": each value with its
    kind's scale and its day (or the date as recorded)."""
    values = []
    for v in d["values"]:
        before, after = _NAMED_KIND[v["kind"]]
        when = f"day {v['day']}" if "day" in v else str(v["date"])
        values.append(f"{before}{shown(v)}{after} on {when}")
    more = f" and {d['earlier']} earlier" if d["earlier"] else ""
    return ", ".join(values) + more


def _date_imprecise(d: Data) -> Phrase:
    return Phrase(
        f"Not used, dated by month or year only (no day to count from): {_named_results(d)}.",
        "results without a day not used",
    )


def _after_evaluation(d: Data) -> Phrase:
    """Results dated after the order: this advice is as of the order's date, so they are
    named one by one, and the signer is asked to read them (they block advise-against)."""
    # only where they keep the card from advising: a support or urgent card stands on its
    # red flag, and must not ask the reader to wait (an outside re-read of an urgent card)
    read = (
        " This card is as of the order's date: read these results before deciding on imaging."
        if d.get("blocks")
        else ""
    )
    return Phrase(
        f"Dated after the order ({d['evaluationDay']}), so not used: {_named_results(d)}.{read}",
        f"results dated after the order ({d['evaluationDay']}) not judged",
    )


def _crp_never_raised(d: Data) -> Phrase:
    return Phrase(
        f"CRP never raised (at most {fmt(d['highest'])} mg/L since diagnosis): it cannot show "
        "the response; this advice rests on the clinical course; if the diagnosis was not "
        "confirmed microbiologically, reconsider it.",
        "CRP never raised",
    )


def _crp_at_limit(d: Data) -> Phrase:
    """A value reported below a limit at or under the normal limit ("<10") is read as
    normal, not at its limit (no plateau or rise from it); any other at its limit."""
    normal = d["normalLimitMgL"]
    low: list[str] = []
    at: list[str] = []
    for v in d["values"]:
        within = v.get("comparator") in ("<", "<=") and v["value"] <= normal
        (low if within else at).append(f"{shown(v)} mg/L on {v['date']}")
    said = []
    if at:
        said.append(f"CRP reported as a limit ({', '.join(at)}) is counted at the limit.")
    if low:
        said.append(
            f"CRP reported below a limit ({', '.join(low)}) is read as within the normal range: "
            "no plateau or rise is read from it."
        )
    return Phrase(" ".join(said), "CRP at a limit")


def _esr_rising(d: Data) -> Phrase:
    return Phrase(
        f"ESR rising ({fmt(d['first']['value'])}{ARROW}{fmt(d['latest']['value'])} mm/h) "
        "while CRP falls: ESR follows bone change, which resolves more slowly (Ahn 2020); "
        "alone it does not mean failure. Consider repeating CRP and ESR.",
        "ESR rising",
    )


def _several_episode_starts(d: Data) -> Phrase:
    return Phrase(
        f"The infection is recorded more than once, with different start dates "
        f"({', '.join(d['starts'])}): the most cautious answer is shown.",
        "several start dates",
    )


def _episode_start_unknown(d: Data) -> Phrase:
    """No date on the diagnosis: with an antibiotic order on record, its start is named as
    on record but not tied to the infection, never "treatment start unknown"."""
    if "antibiotic" not in d:
        return Phrase(
            "The infection diagnosis has no onset or recorded date, so the treatment start is "
            "unknown and no CRP or pain score can be judged against it: a dated diagnosis "
            "(its onset or recorded date) would let them count.",
            "treatment start unknown (diagnosis undated)",
        )
    order = d["antibiotic"]
    return Phrase(
        "The infection diagnosis has no onset or recorded date, so the "
        f"{quote(order['name'])} order started {order['start']} cannot be tied to it as its "
        "treatment start and no CRP or pain score can be judged: a dated diagnosis (its "
        "onset or recorded date) would let them count.",
        "antibiotic order not tied to the infection (diagnosis undated)",
    )


def _early_order(d: Data) -> Phrase:
    # with no study on record, the card's first lines say the order may be the first
    # imaging (text.first_imaging)
    return Phrase(
        f"Ordered on day {d['day']} of treatment, before day {d['afterDays']}: early imaging "
        "can falsely suggest progression, and bone can look worse for weeks to months while "
        "the patient recovers.",
        "early order",
    )


REMARKS: dict[str, Callable[[Data], Phrase]] = {
    # missing
    "crp-none-usable": _crp_none_usable,
    "crp-none": _crp_none,
    "crp-single": _crp_single,
    "crp-none-on-treatment": _crp_none_on_treatment,
    "crp-none-after-baseline": _crp_none_after_baseline,
    "crp-not-recent": _crp_not_recent,
    "pain-none-on-treatment": _pain_none_on_treatment,
    "pain-none": fixed("No pain score (0-10) since treatment start: record one.", "no pain score"),
    "pain-none-usable": _pain_none_usable,
    "episode-start-unknown": _episode_start_unknown,
    # unmet
    "crp-not-falling": _crp_not_falling,
    "pain-not-improving": _pain_not_improving,
    # notes
    "hs-crp-used": fixed("High-sensitivity CRP used: no standard CRP on record.", "hs-CRP used"),
    "hs-crp-beside-crp": _left_out(lambda d: "high-sensitivity CRP beside a standard CRP"),
    "crp-before-look-back": _left_out(
        lambda d: f"before the look-back ({d['lookbackDays']} days before treatment start)"
    ),
    "crp-start-unknown": _left_out(lambda d: "with no treatment start to judge them from"),
    "after-evaluation": _after_evaluation,
    "date-imprecise": _date_imprecise,
    "crp-never-raised": _crp_never_raised,
    "crp-at-limit": _crp_at_limit,
    "esr-rising": _esr_rising,
    **KNOWN_REMARKS,
    **LEVEL_REMARKS,
    "early-order": _early_order,
    "yoon-high-markers": _yoon_high_markers,
    "several-episode-starts": _several_episode_starts,
    # what the order and the patient's studies say (imaging_phrases.py)
    **IMAGING_REMARKS,
    **COMPLETENESS_REMARKS,
    **MARKER_REMARKS,
}


def remark_phrase(code: str, data: Data) -> Phrase:
    """The sentence and the short words of a remark; a KeyError for an unknown code (a
    new remark needs its words here)."""
    return REMARKS[code](data)
