"""The summary's words: for each kind of card, its candidates, longest first, of which
``summary.py`` keeps the first that fits in a summary. ``summary.py`` decides which kind
of card it is, from the engine's answer; these say it, with the short phrases of the
findings and notes (the phrasebook's) it hands in."""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.cards import text
from cds_service.cards.words import upper_first
from cds_service.engine.next_steps import AWAIT_CRP, ORDER_CRP, ORDER_CRP_ESR, REPEAT_CRP_ESR

Candidates = tuple[str, ...]

NEURO = text.FLAG_NAMES["neuro"]
EMERGENCY_NOW = f"{NEURO}: emergency MRI now"
SURGERY_NOW = "; spine surgery now"
URGENT_REVIEW = "; urgent spine surgery review"
EXAM_CHANGED = "only if the exam changed"
# What an insufficient-data summary asks of the markers (engine/next_steps.py).
MARKERS_ASKED = {
    ORDER_CRP: "order a CRP",
    ORDER_CRP_ESR: "order CRP/ESR",
    REPEAT_CRP_ESR: "repeat CRP/ESR",
    AWAIT_CRP: "CRP result awaited",
}


def _against(mod: str) -> str:
    return upper_first(text.not_recommended(f"spine {mod}"))


def _all(shorts: Sequence[str]) -> str:
    return "; ".join(shorts)


# --- Advise-against ----------------------------------------------------------------------


def advise_against(mod: str, short: str) -> Candidates:
    head = _against(mod)
    return f"{head}: {short}", f"{head}: improving"


def yoon_high(mod: str, high: str, short: str) -> Candidates:
    """CRP and ESR at the week-4 levels that predicted failure (Yoon 2010, ``high``): the
    card does not reassure, so no "improving" (clinical-rules.md, "Slow fall")."""
    head, figures = _against(mod), short.removeprefix("improving ")
    return (
        f"{head}: {high} {figures}; repeat both {text.REPEAT_INTERVAL}",
        f"{head}: {high}; repeat both {text.REPEAT_INTERVAL}",
    )


def never_raised(mod: str, pain: str, highest: str) -> Candidates:
    """A CRP that never rose cannot show a response: the advice rests on the pain and the
    clinical course, and the summary says so, not a fall in % or "normal"."""
    head = _against(mod)
    return (
        f"{head}: {pain}; CRP never raised (at most {highest} mg/L), so it cannot show "
        "the response",
        f"{head}: {pain}; CRP never raised (at most {highest} mg/L)",
    )


def urgent_seen(neuro: str, said: str, every_flag: bool) -> Candidates:
    """Seen on a study of the last days (``said``): a new MRI (for it, when another red
    flag was not seen) only if the exam changed; the exam and the surgeon stay urgent."""
    mri = "a new MRI" if every_flag else "a new MRI for it"
    return (
        f"{neuro}, {said}: {mri} {EXAM_CHANGED}{URGENT_REVIEW}",
        f"{neuro}, seen on a recent MRI: {mri} {EXAM_CHANGED}{URGENT_REVIEW}",
        f"{neuro}, {said}: {mri} {EXAM_CHANGED}",
        f"{NEURO}, {said}: {mri} {EXAM_CHANGED}",
    )


def urgent_level_missed(neuro: str, level: str) -> Candidates:
    """No order images the infected level: ``level`` says which and the study now."""
    return f"{neuro}: {level}{SURGERY_NOW}", f"{neuro}: {level}", f"{NEURO}: {level}", EMERGENCY_NOW


def urgent(neuro: str, deficit_level: str | None) -> Candidates:
    """The emergency MRI now, with the note on an order that misses the deficit's level
    (its short phrase) when there is one."""
    action = "emergency MRI of the whole spine with gadolinium now"
    tail = f"; {deficit_level}" if deficit_level is not None else ""
    return (
        f"{neuro}: {action}{tail}{URGENT_REVIEW}",
        f"{neuro}: {action}{tail}{SURGERY_NOW}",
        f"{neuro}: emergency whole-spine MRI now{tail}{SURGERY_NOW}",
        f"{neuro}: {action}{tail}",
        f"{NEURO}: {action}{tail}",
        f"{neuro}: {action}{URGENT_REVIEW}",
        EMERGENCY_NOW,
    )


# --- Support: the red flags' short phrases (``shorts``) and the first flag's name --------


def support_seen(shorts: Sequence[str], said: str) -> Candidates:
    """Every red flag (a new abscess) seen on a study of the last days (``said``)."""
    new_mri = f"a new MRI {EXAM_CHANGED}"
    return (
        f"{_all(shorts)}, {said}: {new_mri}",
        f"{shorts[0]}, {said}: {new_mri}",
        f"Red flag {said}: {new_mri}",
    )


def mechanical(shorts: Sequence[str]) -> Candidates:
    """The study is standing radiographs (and CT), not MRI (clinical-rules.md, Imaging)."""
    tail = "standing radiographs (CT if needed) and spine surgery review"
    only_if = "; MRI only if exam or markers worsen"
    return (
        f"{_all(shorts)}: {tail}{only_if}",
        f"{shorts[0]}: {tail}{only_if}",
        f"{shorts[0]}: {tail}",
        f"{text.FLAG_NAMES['mechanical']}: {tail}",
    )


def level_missed(
    shorts: Sequence[str], words: str, fewer: str, exam_now: bool, first: str
) -> Candidates:
    """Every order misses the infected level: the study that answers (``words``, or in
    ``fewer``), as the detail says it; a complication's card also asks for the exam now,
    kept first."""
    now = "; examine neurology now" if exam_now else ""
    return (
        f"{_all(shorts)}; {words}{now}",
        f"{shorts[0]}; {words}{now}",
        f"{shorts[0]}; {fewer}{now}",
        f"{first}; {fewer}{now}",
    )


def complication(short: str, mod: str, mri_preferred: bool) -> Candidates:
    """A complication alone; on a CT order (``mri_preferred``) as the detail says it."""
    recorded = "Complication recorded"
    if mri_preferred:
        mri = f"MRI reasonable ({text.CT_ORDERED})"
        return (
            f"{short}: {mri}; examine neurology now",
            f"{short}: {mri}",
            f"{recorded}: {mri}",
        )
    tail = "MRI reasonable; examine neurology now; discuss with spine surgery"
    return (
        f"{short}: {tail}",
        f"{short}: {text.reasonable(f'spine {mod}')}",
        f"{recorded}: {tail}",
    )


def pain_while_crp_falls(short: str, mod: str, ct_ordered: bool) -> Candidates:
    """Worse pain alone while the CRP keeps falling: think mechanical, as the detail says;
    an MRI ordered answers too (engine/study.py)."""
    think = "think mechanical: upright radiographs or CT"
    tail = f"{think}; spine surgery review" if ct_ordered else f"{think}; {mod} also answers"
    return (
        f"{short} while CRP falls: {tail}",
        f"{short}: {tail}",
        f"{text.FLAG_NAMES['pain-worse']} while CRP falls: {tail}",
    )


def support(shorts: Sequence[str], mod: str, mri_preferred: bool, first: str) -> Candidates:
    """Repeat imaging reasonable; on a CT order (``mri_preferred``) summary and detail
    agree: MRI is the study that answers."""
    mri = text.reasonable("spine MRI")
    tail = f"{mri} ({text.CT_ORDERED})" if mri_preferred else text.reasonable(f"spine {mod}")
    more = len(shorts) - 1
    return (
        f"{_all(shorts)}; {tail}",
        f"{shorts[0]}, and {more} more red flag{'s' if more > 1 else ''}; {tail}",
        f"{shorts[0]}; {tail}",
        f"{shorts[0]}; {mri}",
        f"{first}; {tail}",
    )


# --- Insufficient data -------------------------------------------------------------------


def insufficient(mod: str, gaps: Sequence[str], asked: str | None) -> Candidates:
    """What is missing (``gaps``: the remarks' short phrases) and what the engine asks of
    the markers (``asked``, if anything)."""
    head = upper_first(text.not_enough_data(f"spine {mod}"))
    tail = f"; {MARKERS_ASKED[asked]}" if asked is not None else ""
    return (
        f"{head}: {_all(gaps)}{tail}",
        f"{head}: {gaps[0]}{tail}" if gaps else head,
        head,
    )
