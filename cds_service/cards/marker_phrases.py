"""The phrasebook's remarks that ask for the CRP again before the trend can be read: a
rise too early to count, a slow fall, two latest CRPs that disagree, a result awaiting
verification, one drawn whose result is not in yet, or one the service could not read
(clinical-rules.md, "Slow fall", "Pending
results").

Like ``remark_phrases`` (which lists these among all remarks): one function per remark
code, from the remark's data to its (message, short).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.cards import text
from cds_service.cards.phrase import Data, Phrase
from cds_service.cards.words import ARROW, as_sent, change_digits, change_pct, count_of, shown


def _crp_early_rise(d: Data) -> Phrase:
    low, latest = d["lowest"], d["latest"]
    # no percentage above a lowest of 0
    # a lowest or latest at a lab limit ("<5"): the true rise lies beyond (an outside re-run)
    limits = latest.get("comparator"), low.get("comparator")
    rise = change_pct(d["risePct"], *limits) if "risePct" in d else ""
    by = f" ({rise})" if rise else ""
    up = f"CRP up {rise.lstrip('+')} since day" if rise else "CRP up since day"
    digits = change_digits(low["value"], latest["value"], d.get("risePct"))
    return Phrase(
        f"CRP up from its lowest: {shown(low, digits)}{ARROW}{shown(latest, digits)} mg/L{by} "
        f"from day "
        f"{low['day']} to day {latest['day']}. The rules count a rise only after day "
        f"{d['afterDays']}, but this is not a favourable response: repeat CRP before "
        "deciding on imaging; if it is still rising, image and look for another source.",
        f"{up} {low['day']}, repeat CRP",
    )


def _crp_slow_fall(d: Data) -> Phrase:
    latest = d["latest"]
    digits = change_digits(d["baseline"]["value"], latest["value"], d["changePct"])
    still = f"still {shown(latest, digits)} mg/L on day {latest['day']}"
    return Phrase(
        f"CRP falling slowly: {shown(d['baseline'], digits)}{ARROW}{shown(latest, digits)} mg/L "
        f"({change_pct(d['changePct'], latest.get('comparator'), d['baseline'].get('comparator'))})"
        f", {still}: repeat CRP and ESR {text.REPEAT_INTERVAL} and "
        "reassess.",
        f"CRP falling slowly, {still}",
    )


def _apart(hours: float) -> str:
    """ "11 hours 59 minutes apart", "12 hours apart": to the minute, as the rule counts
    (less than 12 hours); a clinician reviewer read CRPs 11 h 59 min apart as "12 hours
    apart" beside a rule for less than 12."""
    minutes = round(hours * 60)
    whole, rest = divmod(minutes, 60)
    parts = [count_of(whole, "hour")] if whole else []
    if rest or not whole:
        parts.append(count_of(rest, "minute"))
    return " ".join(parts) + " apart"


def _crp_discordant(d: Data) -> Phrase:
    apart = "on the same day" if d["sameDay"] else _apart(d["hoursApart"])
    return Phrase(
        f"The latest two CRPs, {apart}, disagree ({shown(d['earlier'])} and "
        f"{shown(d['latest'])} mg/L): repeat CRP.",
        "latest two CRPs disagree: repeat CRP",
    )


def _crp_pending_rise(d: Data) -> Phrase:
    status, value, day, latest = d["status"], as_sent(d["value"]), d["day"], d["latest"]
    return Phrase(
        f"A {status} CRP of {value} mg/L on day {day}, after {shown(latest)} mg/L on day "
        f"{latest['day']}, awaits verification: ask the laboratory to confirm it and examine "
        "the patient today (fever, pain, neurology). If confirmed, CRP is rising again: image "
        "and look for another source.",
        f"{status} CRP {value} mg/L on day {day} awaits verification",
    )


def _crp_unread_latest(d: Data) -> Phrase:
    latest, day = d["latest"], d["day"]
    what = "A CRP" if d["count"] == 1 else f"{d['count']} CRPs, the latest"
    return Phrase(
        f"{what} resulted on day {day}, after {shown(latest)} mg/L on day {latest['day']}, "
        "could not be read (below): read it in the chart, or repeat CRP, before deciding on "
        "imaging. If it shows CRP rising again: image and look for another source.",
        f"CRP of day {day} not readable: read it or repeat CRP",
    )


def _crp_awaited(d: Data) -> Phrase:
    day, count = d["day"], d["count"]
    more = f"; {count} CRPs await their results" if count > 1 else ""
    return Phrase(
        f"A CRP drawn on day {day} awaits its result (status {d['status']}{more}): not used yet.",
        f"CRP of day {day} awaited",
    )


MARKER_REMARKS: dict[str, Callable[[Data], Phrase]] = {
    "crp-early-rise": _crp_early_rise,
    "crp-slow-fall": _crp_slow_fall,
    "crp-discordant": _crp_discordant,
    "crp-pending-rise": _crp_pending_rise,
    "crp-unread-latest": _crp_unread_latest,
    "crp-awaited": _crp_awaited,
}
