"""The phrasebook's remarks about imaging: the order's urgency and reason, the host, the
spine surgery, and the studies already done (clinical-rules.md, "Imaging", 2026-12-06).

Like ``remark_phrases`` (which lists these among all remarks): one function per remark
code, from the remark's data to its (message, short).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cds_service.cards.phrase import Data, Phrase
from cds_service.cards.text import URGENT_STUDY_SHORT
from cds_service.cards.words import (
    count_of,
    joined,
    lower_first,
    name_of,
    order_words,
    upper_first,
)
from cds_service.engine.study import GAP_CONTRAST, GAP_MODALITY
from fhir_mappers.model import ImagingOrder, Modality

PRIORITY_WORDS = {"stat": "STAT", "asap": "ASAP", "urgent": "urgent"}


def _not_routine(d: Data) -> Phrase:
    """The order's urgency or stated reason: not routine follow-up of the infection."""
    parts = ["ordered"]
    if "priority" in d:
        parts.append(PRIORITY_WORDS.get(d["priority"], str(d["priority"])))
    unread = set(d.get("unreadReasons", ()))
    reasons = [f"\u201c{r}\u201d" if r in unread else lower_first(r) for r in d.get("reasons", ())]
    if d.get("unnamedReasons"):
        reasons.append("another condition")
    if reasons:
        parts.append(f"for {joined(reasons)}")
    said = " ".join(parts)
    # a reason in words or a local code may mean the infection: said as not read, not as fact
    why = (
        " (a stated reason the service cannot read as the infection or spinal pain)"
        if unread
        else ""
    )
    # "the red flag above" only on a card that shows one; without a red flag there is no
    # card, and the audit keeps these words
    flag = "; the red flag above stands on its own" if d.get("redFlag") else ""
    return Phrase(
        f"{upper_first(said)}: not taken as routine follow-up of the infection{why}{flag}.",
        said,
    )


def _immunocompromised(d: Data) -> Phrase:
    names = [lower_first(name_of(c)) for c in d["conditions"]]
    return Phrase(
        f"Immunosuppression recorded ({joined(names)}): a blunted CRP and less pain make an "
        "improving course less reassuring, so this card does not advise against imaging; "
        "think of an atypical organism.",
        "immunosuppressed host",
    )


def _after_spine_surgery(d: Data) -> Phrase:
    when = f", day {d['day']}" if "day" in d else ""
    head = f"{upper_first(str(d['name']))} recorded{when}"
    short = f"after {d['name']}" + (f" (day {d['day']})" if "day" in d else "")
    # hardware and fusion named only after an operation that may leave them (a fusion);
    # a drainage, laminectomy or corpectomy alone is named by what it was, no more
    hardware = d.get("hardware", True)
    if d["ct"] and d.get("redFlag"):
        # beside a red flag the CT is not in question: say what else it shows
        also = "the operated level" if not hardware else "the hardware and the fusion"
        return Phrase(f"{head}: a CT after spine surgery also shows {also}.", short)
    if d["ct"]:
        if not hardware:
            return Phrase(
                f"{head}: a CT after spine surgery may assess the operated level, not only "
                "the infection; this card does not advise against it.",
                short,
            )
        return Phrase(
            f"{head}: a CT after spine surgery assesses the hardware and the fusion, not "
            "only the infection; this card does not advise against it.",
            short,
        )
    if not hardware:
        return Phrase(
            f"{head}: if the question is the operated level rather than the infection, "
            "this card does not answer it.",
            short,
        )
    return Phrase(
        f"{head}: if the question is the hardware or the fusion, a CT may answer it.", short
    )


def _study_words(d: Data) -> str:
    region = "whole-spine" if d["region"] == "spine" else str(d["region"])
    when = f"day {d['day']}" if "day" in d else str(d["date"])
    ago = "today" if d["daysAgo"] == 0 else count_of(int(d["daysAgo"]), "day") + " ago"
    return f"the {region} {d['modality']} of {when} ({ago})"


def _last_spine_study(d: Data) -> Phrase:
    said = _study_words(d)
    return Phrase(f"Last spine study: {said}.", f"last spine {d['modality']} {said}")


def _flag_seen_on_study(d: Data) -> Phrase:
    names = [lower_first(name_of(c)) for c in d["conditions"]]
    # a new MRI only if the exam changed: only when every red flag was seen (another one,
    # e.g. rising markers, may still need the MRI); else what the seen one needs alone
    tail = (
        "; a new MRI only if the exam changed"
        if d["allRedFlags"]
        else "; it needs no new MRI of its own unless the exam changed"
    )
    return Phrase(
        f"{upper_first(joined(names))} predates {_study_words(d)}: seen there{tail}.",
        f"seen on {_study_words(d)}",
    )


def seen_first_line(said: str, urgent: bool) -> str:
    """The bold first line of a card whose every red flag was seen on a study of the last
    days (``said``: that note's short phrase); on an urgent card, the protocol if the exam
    changed."""
    tail = f" If it did: {URGENT_STUDY_SHORT}" if urgent else ""
    return f"**{upper_first(said)}: a new MRI only if the exam changed.**{tail}"


def deficit_seen_first_line(said: str) -> str:
    """The bold first line of an urgent card whose new deficit was seen on a study of the
    last days beside a red flag that was not: the exam and the surgeon stay urgent."""
    return (
        f"**The new deficit was {said}: a new MRI for it only if the exam changed.**"
        f" If it did: {URGENT_STUDY_SHORT}"
    )


IMAGING_REMARKS: dict[str, Callable[[Data], Phrase]] = {
    "immunocompromised": _immunocompromised,
    "after-spine-surgery": _after_spine_surgery,
    "last-spine-study": _last_spine_study,
    "flag-seen-on-study": _flag_seen_on_study,
    "not-routine": _not_routine,
}


def study_gap_line(
    order: ImagingOrder, gap: str, urgent: bool, compression: str, stated: bool = False
) -> str | None:
    """Why the study ordered cannot answer the card's question, when it is not its level
    (the level has its own remark): said beside the rating, so a clinician who sees it
    rated not appropriate, or not rated, reads why (an outside review: a cervical MRI
    without gadolinium rated not appropriate under "do not delay it for contrast").
    ``compression``: what the MRI looks for (``words.compression_words``: a cauda equina
    card's is not "cord compression", a clinician reviewer). ``stated``: the draft was
    ordered for another reason, which the card leaves to the clinician (a re-run read "CT
    only if MRI is impossible" of a CT ordered for a fall)."""
    where = "spine" if order.region == "spine" else f"{order.region} spine"
    study = f"the {order.modality.value} of the {where}"
    if gap == GAP_MODALITY and stated:
        return (
            f"{upper_first(study)} ordered for its own reason cannot exclude {compression} "
            "or an epidural abscess: keep it for that reason, and MRI beside it."
        )
    if gap == GAP_MODALITY:
        if order.contrast in ("with", "without-and-with"):
            # the fallback the card itself names when MRI is impossible: not "cannot
            # exclude" beside it (an outside clinician's review, 2026-12-07)
            return (
                f"{upper_first(study)} ordered, with contrast, is the fallback only when MRI "
                f"is impossible (say why): it shows {compression} and an epidural abscess less "
                "well than MRI."
            )
        return (
            f"{upper_first(study)} ordered cannot exclude {compression} or an epidural "
            "abscess: MRI is the study; CT only if MRI is impossible (say why)."
        )
    if gap != GAP_CONTRAST:
        return None
    if order.modality is Modality.MRI and urgent:
        return (
            f"{upper_first(study)} ordered is without gadolinium: add it if that does not "
            f"delay the scan; an MRI now without it still shows {compression}."
        )
    if order.modality is Modality.MRI:
        return (
            f"{upper_first(study)} ordered is without gadolinium: it may miss an abscess or "
            "judge the soft tissues poorly; MRI without and with gadolinium."
        )
    said = "is without contrast" if order.contrast == "without" else "may be without contrast"
    return (
        f"{upper_first(study)} ordered {said}: it cannot exclude an abscess or an epidural "
        "collection."
    )


def abscess_extent_line(orders: Sequence[ImagingOrder], gaps: Mapping[str, str]) -> str | None:
    """An abscess card whose MRI ordered answers at the infected level but not over the
    whole spine, which is the abscess study (clinical-rules.md, "What a card should say"):
    the card asks to extend it rather than rate it down (an outside neuroradiology
    reading: the card asked for the whole spine and rated a lumbar MRI appropriate)."""
    partial = [
        o
        for o in orders
        if o.modality is Modality.MRI and o.region != "spine" and o.reference not in gaps
    ]
    if not partial:
        return None
    where = joined([f"{o.region} spine" for o in partial])
    return f"The MRI of the {where} ordered shows the infected level: extend it to the whole spine."


def other_answering_line(
    others: Sequence[ImagingOrder], made_stat: bool, extended: bool = False
) -> str | None:
    """The drafts of the order set not selected here that answer the card's question
    (``NextSteps.other_answering``), named so that the clinician signs the right one: an
    outside clinician's review saw a new cauda equina syndrome's card, with only a
    cervical MRI selected, say nothing of the lumbar MRI beside it."""
    if not others:
        return None
    named = joined(list(dict.fromkeys(order_words(o.modality.value, o.region) for o in others)))
    one = len(others) == 1
    stat = f"make {'it' if one else 'them'} STAT"
    if made_stat and extended:
        stat += " and extend it to the whole spine"
    tail = f": {stat} (below)." if made_stat else "."
    verb = "answers" if one else "answer"
    return f"The {named} also in this order set, not selected here, {verb} this question{tail}"
