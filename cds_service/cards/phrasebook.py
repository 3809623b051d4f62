"""The phrasebook: the sentences a clinician reads about what the engine found (the
findings' and remarks' words; the other phrase modules, listed in docs/architecture.md,
word the summary, the trend lines and the fixed lines around them).

The engine returns codes and numbers: a RuleFinding (``rule_id`` and ``data``) and a
Remark (``code`` and ``data``). ``phrase`` turns either into a ``Phrase``: the message (a
sentence of the card's detail) and the short (a few words for its summary). The
remarks' words are in ``remark_phrases``, the helpers in ``words``; the fixed wording of
the cards (evidence, safety net) in ``text``.

``card_data`` is a finding's data as the card publishes it (docs/cards.md): without what
only the sentences need, and with the sentences the card contract carries as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cds_service.cards import text
from cds_service.cards.known_phrases import drained_on
from cds_service.cards.phrase import Phrase
from cds_service.cards.remark_phrases import remark_phrase
from cds_service.cards.words import (
    ARROW,
    at_weeks,
    change_digits,
    change_pct,
    compression_words,
    fmt,
    listed,
    lower_first,
    name_of,
    pain_phrase,
    shown,
    status_and_when,
    upper_first,
    verification_words,
    when_found,
)
from cds_service.engine.assessment import FACTS, Remark, RuleFinding

__all__ = ["Phrase", "card_data", "phrase"]

Data = Mapping[str, Any]


def phrase(item: RuleFinding | Remark) -> Phrase:
    """The (message, short) of a finding or a remark."""
    if isinstance(item, Remark):
        return remark_phrase(item.code, item.data)
    return FINDINGS[item.rule_id](item.data)


def card_data(finding: RuleFinding) -> dict[str, Any]:
    """The finding's ``data`` as the card (and the audit) publish it: the uncertain
    diagnosis with its ``reasons`` and insufficient data with each remark's ``message``
    in words (docs/cards.md), what only the sentences need left out."""
    data = {k: v for k, v in finding.data.items() if k != FACTS}
    if finding.rule_id == "uncertain-dx":
        reasons = [message for message, _ in _uncertain_parts(finding.data[FACTS])]
        data = {"episode": data["episode"], "reasons": reasons, **data}
    elif finding.rule_id == "insufficient-data":
        for key in ("missing", "unmet"):
            if key in data:
                data[key] = [{"code": r["code"], "message": _said(r).message} for r in data[key]]
    return data


def _said(remark: Data) -> Phrase:
    """A remark as the insufficient-data finding's data holds it ({"code", "data"?})."""
    return remark_phrase(remark["code"], remark.get("data", {}))


def _dated_names(found: Sequence[Data]) -> str:
    parts = []
    for c in found:
        when, name = status_and_when(c, when_found(c)), lower_first(name_of(c))
        parts.append(f"{name} ({when})" if when else name)
    return "; ".join(parts)


# From how many days before the order a new deficit's age is said ("day 4, 26 days
# before this order"): a deficit of the last days is the emergency the card is about.
DEFICIT_AGE_SHOWN_DAYS = 3


def _neuro(d: Data) -> Phrase:
    found = d[FACTS]["found"]
    first = found[0]
    when, name = when_found(first), lower_first(name_of(first))
    lead = upper_first(name) if first.get("atStart") else f"New {name}"
    head = f"{lead} ({when})" if when else lead
    rest = [lower_first(name_of(c)) for c in found[1:]]
    names = " ".join(name_of(c).lower() for c in found)
    squeeze = compression_words(found)
    # a recorded compression is not looked for again: its cause is
    look = (
        "an epidural abscess"
        if "compression" in names and "cauda" not in names
        else f"an epidural abscess or {squeeze}"
    )
    # its age in the detail (the summary has no room): a deficit of day 4 read on day 30
    order_day = d[FACTS].get("orderDay")
    age = order_day - first["day"] if order_day is not None and "day" in first else 0
    dates = "was recorded" if first.get("recordedOnly") else "dates from"
    old = (
        f" It {dates} {age} days before this order."
        # a recurrence's date is the first one's, not when it came back
        if age >= DEFICIT_AGE_SHOWN_DAYS and not first.get("partial") and "recurred" not in first
        else ""
    )
    return Phrase(
        f"Neurologic deficit recorded: {_dated_names(found)}.{old} Look for {look} now; urgent "
        "spine surgery review.",
        f"{head}, and {listed(rest)}" if rest else head,
    )


def _complication(d: Data) -> Phrase:
    found = d[FACTS]["found"]
    first = found[0]
    when, name = when_found(first), upper_first(name_of(first))
    if first.get("undated"):
        short = f"{name} on record (undated)"  # not "recorded date not recorded"
    elif first.get("atStart"):
        short = f"{name} {when}"
    elif first.get("recurred"):
        short = f"{name} ({when})"
    else:
        when = when.removeprefix("recorded ")  # "recorded day 12", not "recorded recorded"
        short = f"{name} recorded {when}" if when else f"{name} recorded"
    if len(found) > 1:
        short += f", and {listed([lower_first(name_of(c)) for c in found[1:]])}"
    return Phrase(f"Complication recorded: {_dated_names(found)}.", short)


# --- Imaging (clinical-rules.md, "Imaging", 2026-12-06): the mechanical class --------


def abscess_next_steps(facts: Data) -> str:
    """A new abscess's next steps: drainage, and Park 2016's 8 weeks if undrained; when
    the engine found a drainage on or after it (``drainage``), that drainage named
    instead (an outside clinician's review: an abscess drained on day 22 was told
    "consider drainage ... if undrained, at least 8 weeks" beside the drainage's own
    line)."""
    drainage = facts.get("drainage")
    if drainage is not None:
        name = lower_first(str(drainage["name"]))
        return (
            f"A new abscess on treatment, drained {drained_on(drainage)} ({name}), raises "
            f"suspicion of failure: {text.ABSCESS_REVIEW}"
        )
    if facts["found"][0].get("undated"):
        return text.ABSCESS_NEXT_STEPS_UNDATED
    return text.ABSCESS_NEXT_STEPS


def _mechanical(d: Data) -> Phrase:
    """A new collapse, fracture, instability or kyphosis: the question is alignment and
    stability, which standing radiographs and CT answer."""
    found = d[FACTS]["found"]
    first = found[0]
    when, name = when_found(first), lower_first(name_of(first))
    head = f"New {name} ({when})" if when else f"New {name}"
    if len(found) > 1:
        head += f", and {listed([lower_first(name_of(c)) for c in found[1:]])}"
    return Phrase(
        f"Mechanical complication recorded: {_dated_names(found)}. The question is alignment "
        "and stability: standing radiographs (CT if needed) and spine surgery review.",
        head,
    )


# --- end of the imaging block ----------------------------------------------------------


BIOPSY = "imaging reasonable; if no organism is known, consider image-guided biopsy"


def _uncertain_parts(facts: Data) -> list[Phrase]:
    """What the record shows, one part each: the unconfirmed diagnosis, the mimics."""
    parts = []
    name = lower_first(name_of(facts["episode"]))
    status = facts.get("unconfirmedAs")
    if status is not None:
        head = f"Diagnosis not confirmed ({name} recorded as {verification_words(status)})"
        parts.append(Phrase(f"{head}: {BIOPSY}", head))
    elif facts.get("causeUnconfirmed"):
        parts.append(
            Phrase(
                f"Diagnosis not confirmed ({name} recorded without a confirmed infectious "
                f"cause): {BIOPSY}",
                f"Diagnosis not confirmed ({name})",
            )
        )
    if "mimics" in facts:
        names = [lower_first(name_of(m)) for m in facts["mimics"]]
        why = (
            "imaging may be needed for the cancer or to tell infection from tumour"
            if facts["tumour"]
            else "imaging may be needed for it or to tell infection from it"
        )
        parts.append(
            Phrase(
                f"{upper_first(', '.join(names))} also recorded: {why}",
                f"{upper_first(listed(names))} also recorded",
            )
        )
    return parts


def _uncertain_dx(d: Data) -> Phrase:
    parts = _uncertain_parts(d[FACTS])
    return Phrase("; ".join(p.message for p in parts) + ".", "; ".join(p.short for p in parts))


def _markers(d: Data) -> Phrase:
    day, latest = d["latestDay"], d["latest"]
    parts: list[Phrase] = []
    # a latest CRP at or above its baseline that is also a rise: the rise says it all ("fell
    # less than 25%" beside "+66.7%" read as a contradiction to an outside reviewer)
    unfallen = d.get("fallPct", 0) <= 0
    if "plateau" in d and not (unfallen and "rise" in d):
        plateau = d["plateau"]
        fall = change_pct(-d["fallPct"], latest.get("comparator"), d["baseline"].get("comparator"))
        digits = change_digits(d["baseline"]["value"], latest["value"], -d["fallPct"])
        trend = f"{shown(d['baseline'], digits)}{ARROW}{shown(latest, digits)} mg/L ({fall})"
        least = fmt(plateau["minFallPct"])
        # a limit that hides a larger fall ("14 -> <12"): counted at the limit, as the rules
        # ask, and the card says the fall may be larger (an outside review read "-14.3% or
        # more: less than a 25% fall" as a contradiction)
        hidden = " or more" in fall
        parts.append(
            Phrase(
                # the day said once ("less than a 25% fall by day 30 (judged from day 28)")
                f"CRP {trend}: "
                + ("no fall" if unfallen else f"less than a {least}% fall")
                + f" by day {day}"
                + (
                    f" (judged from day {plateau['afterDays']})"
                    if day != plateau["afterDays"]
                    else ""
                )
                + (", counted at the lab's limit; the true fall may be larger" if hidden else ""),
                # the short form says what the numbers show: a fall, too small, or none
                (
                    "CRP not down from baseline"
                    if unfallen
                    else f"CRP fell less than {least}%" + (" at the lab's limit" if hidden else "")
                )
                + f": {trend} by day {day}",
            )
        )
    if "rise" in d:
        rise = d["rise"]
        lowest = rise["lowestEarlier"]
        limits = latest.get("comparator"), lowest.get("comparator")
        by = f" ({change_pct(rise['risePct'], *limits)})" if "risePct" in rise else ""
        digits = change_digits(lowest["value"], latest["value"], rise.get("risePct"))
        low, high = shown(lowest, digits), shown(latest, digits)
        parts.append(
            Phrase(
                f"CRP rising again: {low} mg/L on day {lowest['day']}, {high} mg/L on day "
                f"{day}{by}, more than {fmt(rise['thresholdPct'])}% above its lowest since "
                "treatment start",
                f"CRP rising again: {low}{ARROW}{high} mg/L{by} since day {lowest['day']}",
            )
        )
    return Phrase("; ".join(p.message for p in parts) + ".", "; ".join(p.short for p in parts))


def _pain(d: Data) -> Phrase:
    lowest, latest = d["lowest"], d["latest"]
    return Phrase(
        f"Pain worse: {shown(latest)}/10 on day {latest['day']}, {fmt(d['risePoints'])} points "
        f"above its lowest since treatment start ({shown(lowest)}/10 on day {lowest['day']}).",
        f"Pain worse: {shown(lowest)}{ARROW}{shown(latest)}/10 since "
        + ("treatment start" if lowest["day"] == 0 else f"day {lowest['day']}"),
    )


def crp_before_pain_rose(flags: Sequence[RuleFinding]) -> str | None:
    """The line of a pain flag whose CRP fell but was last taken before the pain rose
    (``pain.pain_rule``'s ``crpBeforeRise``): not "think mechanical" from a CRP older
    than the worse pain, nor "not clearly falling" of one that fell."""
    pain = next((f for f in flags if f.rule_id == "pain-worse"), None)
    facts = pain.data[FACTS] if pain is not None else {}
    crp = facts.get("crpBeforeRise")
    if crp is None:
        return None
    return (
        f"No CRP since the pain rose on day {facts['painRose']['day']} (the latest, "
        f"{shown(crp)} mg/L, is from day {crp['day']}): whether it still falls is not known. "
        "Repeat the CRP and examine neurology: until then worse pain may be treatment failure "
        "or an abscess as much as a mechanical cause, and MRI without and with gadolinium of "
        "the infected level answers both."
    )


def advise_against_state(
    d: Data, yoon: Data | None = None, resolved: bool = False, unread: bool = False
) -> str:
    """The state an advise-against card's detail opens with ("Improving, no red flag
    recorded."), from the same finding as the summary's words. Never "improving" where
    the evidence does not show it: a CRP that stays normal is said as it is; a CRP still
    high at the week-4 levels that predicted failure (``yoon``, that note's data: Yoon
    2010) does not reassure. (Pain only on T0's day is no advise-against: the engine's
    ``pain-none-on-treatment``.)"""
    facts = d[FACTS]
    lead = "Improving" if facts["fell"] else "CRP normal, pain not worse"
    if yoon is not None:
        lead = f"CRP falling but still high {at_weeks(yoon['afterDays'])}"
    # Never "no red flag recorded" while a finding known at diagnosis is on record.
    # ("resolved": one that arose on treatment is named in its own line)
    flags = (
        "no new red flag recorded"
        if facts["knownAtDiagnosis"]
        else "no active red flag recorded"
        if resolved
        else "no red flag recorded"
    )
    if unread:  # new diagnoses the service does not read are named in their own line
        flags += " among the diagnoses read"
    return f"{lead}, {flags}."


def _advise_against(d: Data) -> Phrase:
    facts = d[FACTS]
    fell = bool(facts["fell"])
    crp = f"CRP {shown(d['baseline'])}{ARROW}{shown(d['latest'])} mg/L"
    if fell:
        limits = d["latest"].get("comparator"), d["baseline"].get("comparator")
        crp += f", {change_pct(-d['fallPct'], *limits)}"
    else:  # advise-against through the normal limit: the CRP did not fall enough, say so
        crp += f", below the normal limit of {fmt(d['normalLimitMgL'])} mg/L"
    # Never "no red flag recorded" while a finding known at diagnosis is on record.
    flags = "no new red flag recorded" if facts["knownAtDiagnosis"] else "no red flag recorded"
    pain = pain_phrase(
        d["painFirst"]["value"], d["painLatest"]["value"], facts["painCount"], facts["painStable"]
    )
    # "Improving" only when the CRP fell; a CRP that stays normal is said as it is.
    state = "Improving" if fell else "CRP normal, pain not worse"
    return Phrase(
        f"{state}: {crp}; {pain}; {flags}.",
        f"{'improving' if fell else state} ({crp}; {pain})",
    )


def _insufficient(d: Data) -> Phrase:
    said = [_said(r) for r in (*d.get("missing", ()), *d.get("unmet", ()))]
    return Phrase(
        "Not enough to judge the response to treatment. " + " ".join(p.message for p in said),
        "; ".join(p.short for p in said),
    )


FINDINGS: dict[str, Callable[[Data], Phrase]] = {
    "neuro": _neuro,
    "complication": _complication,
    "mechanical": _mechanical,
    "uncertain-dx": _uncertain_dx,
    "markers-not-responding": _markers,
    "pain-worse": _pain,
    "advise-against": _advise_against,
    "insufficient-data": _insufficient,
}
