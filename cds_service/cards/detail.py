"""The card's detail (markdown): for a ten-second read, the evidence last."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cds_service.cards import text
from cds_service.cards.episode_line import episode_line
from cds_service.cards.imaging_phrases import (
    abscess_extent_line,
    deficit_seen_first_line,
    other_answering_line,
    seen_first_line,
    study_gap_line,
)
from cds_service.cards.left_out import left_out
from cds_service.cards.phrasebook import (
    abscess_next_steps,
    advise_against_state,
    crp_before_pain_rose,
    phrase,
)
from cds_service.cards.summary import neuro_seen_on_study, seen_on_study
from cds_service.cards.trend_lines import (
    crp_section,
    trend_lines,
    up_since_lowest,
)
from cds_service.cards.words import compression_words
from cds_service.engine import study
from cds_service.engine.assessment import FACTS, Assessment, Recommendation
from cds_service.engine.next_steps import stated_orders
from fhir_mappers.model import Modality


def _bullets(items: Sequence[str]) -> list[str]:
    return [f"- {i}" for i in items]


def _evidence(keys: Sequence[str], said: str = "") -> list[str]:
    """The statements for ``keys`` and the sources they cite, with every source the card
    names elsewhere (``said``) as "Author year" (e.g. "Yoon 2010" in a remark)."""
    lines = [text.EVIDENCE, ""]
    cited: list[str] = []
    for key in keys:
        statement, refs = text.STATEMENTS[key]
        if f"- {statement}" in lines:
            continue  # two flags citing one sentence (a deficit and instability): said once
        lines.append(f"- {statement}")
        cited += [r for r in refs if r not in cited]
    said = "\n".join([said, *lines])
    cited += [r for r, short in _CITED_AS.items() if r not in cited and short in said]
    lines += ["", text.sources([text.CITATIONS[r] for r in cited])]
    return lines


def _cited_as(citation: str) -> str:
    """How card text names a source: its first author's surname and its year."""
    year = re.search(r"\b(?:19|20)\d\d\b", citation)
    return f"{citation.split()[0]} {year.group(0) if year else ''}".strip()


_CITED_AS = {ref: _cited_as(citation) for ref, citation in text.CITATIONS.items()}


def _read_anyway(a: Assessment) -> str:
    """How to read a follow-up study done anyway: an MRI, or a CT (clinical-rules.md,
    "Imaging", 2026-12-06)."""
    advised = [o for o in a.orders if o.reference in a.covering] or list(a.orders)
    if advised and all(o.modality is Modality.CT for o in advised):
        return text.READ_ANYWAY_CT
    return text.READ_ANYWAY_MRI


def advise_against_line(a: Assessment) -> str:
    """The state an advise-against card opens with ("Improving, no red flag recorded."),
    with what the card's notes and trend say against "improving": the detail's line and
    the trend app's rule line (``trend_link``) alike."""
    finding = next(f for f in a.rules_fired if f.rule_id == "advise-against")
    yoon = next((n.data for n in a.notes if n.code == "yoon-high-markers"), None)
    resolved = any(n.code == "resolved-finding" for n in a.notes)
    unread = any(n.code == "new-diagnoses-not-read" for n in a.notes)
    return advise_against_state(finding.data, yoon, resolved, unread)


def detail(a: Assessment) -> str:
    rec = a.recommendation
    emergency = a.next_steps.emergency_mri  # the bold first line asks for it now
    blocks: list[list[str]] = []
    flags = a.red_flags
    early = next((n.data for n in a.notes if n.code == "early-order"), {})
    unread = bool(early.get("studiesUnread"))
    first = bool(early.get("noStudyOnRecord")) or unread
    caveat = text.first_imaging(unread, rec is Recommendation.ADVISE_AGAINST)
    if rec is Recommendation.ADVISE_AGAINST:
        blocks.append([text.SAFETY_NET, *([caveat] if first else [])])
        if any(o.reference in a.covering and not o.identified for o in a.orders):
            blocks.append([text.NO_ORDER_ID])
        state = advise_against_line(a)
        blocks.append([episode_line(a), state, *trend_lines(a), *up_since_lowest(a)])
        blocks.append([_read_anyway(a)])
    elif rec in (Recommendation.SUPPORT_URGENT, Recommendation.SUPPORT):
        seen = seen_on_study(a)
        if seen is not None:
            # every red flag seen on a study of the last days: say so first; on an urgent
            # card the protocol if the exam changed
            urgent = rec is Recommendation.SUPPORT_URGENT
            blocks.append([seen_first_line(phrase(seen).short, urgent)])
        elif rec is Recommendation.SUPPORT_URGENT and (deficit := neuro_seen_on_study(a)):
            # the deficit seen on a recent study beside a red flag that was not: the exam
            # and the surgeon stay urgent, a new MRI for the deficit only if it changed
            blocks.append([deficit_seen_first_line(phrase(deficit).short)])
        elif emergency:
            blocks.append([f"**{text.URGENT_STUDY}**"])
        elif a.next_steps.mri_preferred_to_ct:
            contrast_ct = all(
                o.contrast in ("with", "without-and-with")
                for o in a.orders
                if o.modality is Modality.CT
            )
            said = text.MRI_PREFERRED_TO_CONTRAST_CT if contrast_ct else text.MRI_PREFERRED
            blocks.append([f"**{said}**"])
        items = [
            phrase(f).message
            + ("" if emergency or f.rule_id != "mechanical" else f" {text.MECHANICAL_MRI_ONLY_IF}")
            for f in flags
        ]
        if any(f.rule_id == "complication" for f in flags) and rec is Recommendation.SUPPORT:
            items.append(text.COMPLICATION_ACTION)
            complication = next(f for f in flags if f.rule_id == "complication")
            if complication.data[FACTS]["abscess"]:
                items.append(abscess_next_steps(complication.data[FACTS]))
                items.append(text.ABSCESS_STUDY)
                extend = abscess_extent_line(a.orders, a.study_gaps)
                if extend is not None:
                    items.append(extend)
        markers = next((f for f in flags if f.rule_id == "markers-not-responding"), None)
        if markers is not None:
            items.append(text.MARKERS_CAVEAT)
            if "rise" in markers.data:
                items.append(text.REBOUND_SOURCES)
            items.append(text.MARKERS_NEXT_STEPS)
            items.append(text.MARKERS_STUDY)
        if any(f.rule_id == "uncertain-dx" for f in flags):
            items.append(text.UNCERTAIN_STUDY)
        # beside an emergency MRI, worse pain points to the deficit's cause: no reading of
        # the pain of its own (an outside review read "radiographs or CT" there)
        stale = crp_before_pain_rose(flags)
        if not emergency and study.pain_with_falling_crp(flags):
            items.append(text.MECHANICAL_PAIN)
        elif not emergency and stale is not None:
            items.append(stale)
        elif (
            not emergency
            and any(f.rule_id == "pain-worse" for f in flags)
            and markers is None
            and a.figures.crp_percent_change is not None
        ):
            # a CRP that is not clearly falling: not the mechanical reading
            items.append(text.PAIN_CRP_NOT_FALLING)
        neuro = next((f for f in flags if f.rule_id == "neuro"), None)
        compression = compression_words(neuro.data[FACTS]["found"] if neuro else ())
        stated = stated_orders(a)
        for order in a.orders:
            gap = a.study_gaps.get(order.reference)
            line = (
                study_gap_line(order, gap, emergency, compression, order.reference in stated)
                if gap is not None
                else None
            )
            if line is not None:
                items.append(line)
        steps = a.next_steps
        made_stat = {o.reference for o in steps.other_answering} & set(steps.stat_orders)
        other = other_answering_line(steps.other_answering, bool(made_stat), steps.stat_extended)
        if other is not None:
            items.append(other)
        blocks.append([episode_line(a)])
        blocks.append(_bullets(items))
        blocks.append(trend_lines(a, crp_figures=markers is None))
    else:
        blocks.append([text.NOT_ENOUGH_DATA, *([caveat] if first else [])])
        blocks.append([episode_line(a)])
        asks = [phrase(r).message for r in (*a.missing, *a.unmet)]
        # a known deficit's line already says the decision rests on the neurologic exam
        exam = [] if any(r.code == "known-deficit" for r in a.missing) else [text.NEURO_EXAM]
        blocks.append([text.TO_DECIDE, "", *_bullets([*asks, *exam])])
        blocks.append(trend_lines(a))
    # a pending value is named in its own line: not again among the left-out ones
    pending = {
        str(r.data.get("reference"))
        for r in (*a.missing, *a.notes)
        if r.code in ("crp-pending-rise", "crp-awaited")
    }
    shown_issues = [i for i in a.issues if i.reference not in pending]
    # the bold first line already says the red flags were seen on the study
    said_first = rec is not Recommendation.INSUFFICIENT_DATA and (
        seen_on_study(a) is not None
        or (rec is Recommendation.SUPPORT_URGENT and neuro_seen_on_study(a) is not None)
    )
    # beside an emergency MRI a follow-up MRI "before stopping antibiotics" is noise
    skipped = {"flag-seen-on-study"} if said_first else set()
    if emergency:
        skipped.add("known-abscess")
    if rec is Recommendation.INSUFFICIENT_DATA:
        skipped.add("early-order")  # its caveat is the bold line above; no advice to temper
    drafted = [k.value for k in a.next_steps.markers_drafted]
    notes = (
        ([text.markers_drafted(drafted)] if drafted else [])
        + [phrase(r).message for r in a.notes if r.code not in skipped]
        + left_out(shown_issues, a.figures.t0_day)
    )
    if notes:
        blocks.append(_bullets(notes))
    blocks.append(crp_section(a))
    texts = ["\n".join(b) for b in blocks if b]  # each block joined once
    texts.append("\n".join(_evidence(a.next_steps.evidence, "\n".join(texts))))
    return "\n\n".join(texts)
