"""The card's one-line summary: what fired, with its numbers, under 140 characters."""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.cards import text
from cds_service.cards.level_phrases import missed_level_words, urgent_level_words
from cds_service.cards.phrasebook import phrase
from cds_service.cards.trend_lines import early_rise
from cds_service.cards.words import fmt, pain_phrase, signed_pct
from cds_service.engine import routine, study
from cds_service.engine.assessment import (
    FACTS,
    Assessment,
    Recommendation,
    Remark,
)
from fhir_mappers.model import ImagingOrder, Modality

SUMMARY_MAX = 139


def _modality(orders: Sequence[ImagingOrder]) -> str:
    kinds = sorted({o.modality.value for o in orders}, key=lambda m: (m != "MRI", m))
    return "/".join(kinds) if kinds else "imaging"


def _has_ct(a: Assessment) -> bool:
    return any(o.modality is Modality.CT for o in a.orders)


def mechanical_only(a: Assessment) -> bool:
    """Every red flag is mechanical (collapse, fracture, instability): a question for
    standing radiographs and CT, not for MRI (clinical-rules.md, "Imaging", 2026-12-06)."""
    return study.mechanical_only(a.red_flags)


def pain_while_crp_falls(a: Assessment) -> bool:
    """The only red flag is worse pain while the CRP keeps falling: "think mechanical:
    upright radiographs or CT"; a CT answers it as well as an MRI (``engine/study.py``)."""
    return study.pain_while_crp_falls(a.red_flags)


def seen_on_study(a: Assessment) -> Remark | None:
    """The note saying where the red flags were seen, when every one of them was seen on
    a study of the last days: then a new MRI only if the exam changed."""
    return routine.seen_on_every_flag(a.notes)


def neuro_seen_on_study(a: Assessment) -> Remark | None:
    """The note saying a new neurologic deficit was seen on a study of the last days
    (with every other red flag, or beside one that was not): no emergency MRI for it."""
    return routine.neuro_seen_on_study(a.notes)


def _missed_level(a: Assessment) -> Remark | None:
    """The note naming the orders that miss the infected level, on a card with a red flag
    where no order in question images that level (one that does answers the card)."""
    if a.covering:
        return None
    return next(
        (n for n in a.notes if n.code == "order-misses-level" and n.data.get("redFlag")), None
    )


def _fit(*candidates: str) -> str:
    """The first candidate short enough for a summary (the last one always is)."""
    for c in candidates:
        if len(c) <= SUMMARY_MAX:
            return c
    return candidates[-1][: SUMMARY_MAX - 1].rstrip() + "…"


def _in_a_row(shorts: list[str]) -> list[str]:
    """The red flags' short phrases as they follow each other after "; ": the first keeps
    its capital, the others start lower case unless they start with an abbreviation
    ("CRP", "MRI")."""
    return [
        s if i == 0 or not s[:1].isupper() or s[1:2].isupper() else s[0].lower() + s[1:]
        for i, s in enumerate(shorts)
    ]


def summary(a: Assessment) -> str:
    mod = _modality(a.orders)
    rec = a.recommendation
    if rec is Recommendation.ADVISE_AGAINST:
        head = f"Routine repeat spine {mod} not recommended"
        short = next((phrase(f).short for f in a.rules_fired if f.rule_id == "advise-against"), "")
        yoon = next((n for n in a.notes if n.code == "yoon-high-markers"), None)
        if yoon is not None:
            # CRP and ESR at the week-4 levels that predicted failure (Yoon 2010): the card
            # does not reassure, so no "improving" (clinical-rules.md, "Slow fall")
            high, figures = phrase(yoon).short, short.removeprefix("improving ")
            return _fit(
                f"{head}: {high} {figures}; repeat both in 1-2 weeks",
                f"{head}: {high}; repeat both in 1-2 weeks",
            )
        never = next((n for n in a.notes if n.code == "crp-never-raised"), None)
        finding = next((f for f in a.rules_fired if f.rule_id == "advise-against"), None)
        if never is not None and finding is not None:
            # a CRP that never rose cannot show a response: the advice rests on the pain
            # and the clinical course, and the summary says so, not a fall in % or "normal"
            d = finding.data
            pain = pain_phrase(
                d["painFirst"]["value"],
                d["painLatest"]["value"],
                d[FACTS]["painCount"],
                d[FACTS]["painStable"],
            )
            highest = fmt(never.data["highest"])
            return _fit(
                f"{head}: {pain}; CRP never raised (at most {highest} mg/L), so it cannot show "
                "the response",
                f"{head}: {pain}; CRP never raised (at most {highest} mg/L)",
            )
        rise = early_rise(a)
        if rise is not None:
            # a rise too early to count: the rules keep the advice, the summary does not
            # say "improving" (nor "CRP falling") beside it
            low, pct = rise
            day = (low.when.day - a.figures.t0_day).days if a.figures.t0_day else 0
            up = f"CRP up {signed_pct(pct).removeprefix('+')} since day {day}"
            candidates = [f"{head}: {up}, too early to count: repeat CRP"]
            if short.startswith("improving ("):
                figures = short.removeprefix("improving (").removesuffix(")")
                candidates.insert(0, f"{head}: {figures}; but {up}: repeat CRP")
            return _fit(*candidates)
        return _fit(f"{head}: {short}", f"{head}: improving")
    flags = a.red_flags
    if rec is Recommendation.SUPPORT_URGENT:
        neuro = phrase(next(f for f in flags if f.rule_id == "neuro")).short
        action = "emergency MRI of the whole spine with gadolinium now"
        # the infected level missed first, when no order images it: the summary names it
        # (a deficit's level note beside it must not take its place: an outside re-run
        # lost "the infection is cervical" and "spine surgery now" that way)
        missed_infection = _missed_level(a)
        missed_deficit = next((n for n in a.notes if n.code == "order-misses-deficit-level"), None)
        seen = neuro_seen_on_study(a)
        if seen is not None:
            # seen on a study of the last days: a new MRI (for it) only if the exam
            # changed; the exam and the surgeon stay urgent
            said = phrase(seen).short
            mri = "a new MRI" if seen.data["allRedFlags"] else "a new MRI for it"
            return _fit(
                f"{neuro}, {said}: {mri} only if the exam changed; urgent spine surgery review",
                f"{neuro}, seen on a recent MRI: {mri} only if the exam changed; urgent spine "
                "surgery review",
                f"{neuro}, {said}: {mri} only if the exam changed",
                f"New neurologic deficit, {said}: {mri} only if the exam changed",
            )
        if missed_infection is not None:
            level = urgent_level_words(missed_infection.data, missed_deficit is not None)
            return _fit(
                f"{neuro}: {level}; spine surgery now",
                f"{neuro}: {level}",
                f"New neurologic deficit: {level}",
                "New neurologic deficit: emergency MRI now",
            )
        review = "; urgent spine surgery review"
        tail = f"; {phrase(missed_deficit).short}" if missed_deficit is not None else ""
        return _fit(
            f"{neuro}: {action}{tail}{review}",
            f"{neuro}: {action}{tail}; spine surgery now",
            f"{neuro}: emergency whole-spine MRI now{tail}; spine surgery now",
            f"{neuro}: {action}{tail}",
            f"New neurologic deficit: {action}{tail}",
            f"{neuro}: {action}{review}",
            "New neurologic deficit: emergency MRI now",
        )
    if rec is Recommendation.SUPPORT:
        shorts = _in_a_row([phrase(f).short for f in flags])
        seen = seen_on_study(a)
        if seen is not None:  # a new abscess seen on a study of the last days
            said = phrase(seen).short
            return _fit(
                f"{'; '.join(shorts)}, {said}: a new MRI only if the exam changed",
                f"{shorts[0]}, {said}: a new MRI only if the exam changed",
                f"Red flag {said}: a new MRI only if the exam changed",
            )
        if mechanical_only(a):
            # the study is standing radiographs (and CT), not MRI (clinical-rules.md, Imaging)
            tail = "standing radiographs (CT if needed) and spine surgery review"
            return _fit(
                f"{'; '.join(shorts)}: {tail}; MRI only if exam or markers worsen",
                f"{shorts[0]}: {tail}; MRI only if exam or markers worsen",
                f"{shorts[0]}: {tail}",
                f"Mechanical complication: {tail}",
            )
        missed = _missed_level(a)
        if missed is not None:
            # every order misses the infected level: the summary says so and names the
            # study that answers, as the detail does, never "repeat spine MRI reasonable"
            words, fewer = missed_level_words(missed.data)
            # a complication's card also asks for the exam now (as below): kept first
            now = (
                "; examine neurology now"
                if len(flags) == 1 and flags[0].rule_id == "complication"
                else ""
            )
            return _fit(
                f"{'; '.join(shorts)}; {words}{now}",
                f"{shorts[0]}; {words}{now}",
                f"{shorts[0]}; {fewer}{now}",
                f"{text.FLAG_NAMES[flags[0].rule_id]}; {fewer}{now}",
            )
        if len(flags) == 1 and flags[0].rule_id == "complication":
            tail = "MRI reasonable; examine neurology now; discuss with spine surgery"
            if a.next_steps.mri_preferred_to_ct:  # summary and detail agree on a CT order
                return _fit(
                    f"{shorts[0]}: MRI reasonable ({text.CT_ORDERED}); examine neurology now",
                    f"{shorts[0]}: MRI reasonable ({text.CT_ORDERED})",
                    f"Complication recorded: MRI reasonable ({text.CT_ORDERED})",
                )
            return _fit(
                f"{shorts[0]}: {tail}",
                f"{shorts[0]}: repeat spine {mod} reasonable",
                f"Complication recorded: {tail}",
            )
        if pain_while_crp_falls(a):  # summary and detail agree: think mechanical
            tail = "think mechanical: upright radiographs or CT; spine surgery review"
            if not _has_ct(a):  # the MRI ordered answers too (engine/study.py)
                tail = f"think mechanical: upright radiographs or CT; {mod} also answers"
            return _fit(
                f"{shorts[0]} while CRP falls: {tail}",
                f"{shorts[0]}: {tail}",
                f"Pain worse while CRP falls: {tail}",
            )
        # on a CT order summary and detail agree: MRI is the study that answers
        tail = (
            f"repeat spine MRI reasonable ({text.CT_ORDERED})"
            if a.next_steps.mri_preferred_to_ct
            else f"repeat spine {mod} reasonable"
        )
        more = len(shorts) - 1
        return _fit(
            f"{'; '.join(shorts)}; {tail}",
            f"{shorts[0]}, and {more} more red flag{'s' if more > 1 else ''}; {tail}",
            f"{shorts[0]}; {tail}",
            f"{shorts[0]}; repeat spine MRI reasonable",
            f"{text.FLAG_NAMES[flags[0].rule_id]}; {tail}",
        )
    gaps = [phrase(r).short for r in (*a.missing, *a.unmet)]
    head = f"Not enough data to judge repeat spine {mod}"
    # what the engine asks of the markers (engine/next_steps.py), if anything
    asked = a.next_steps.markers_asked
    tail = f"; {text.MARKERS_ASKED[asked]}" if asked is not None else ""
    return _fit(
        f"{head}: {'; '.join(gaps)}{tail}",
        f"{head}: {gaps[0]}{tail}" if gaps else head,
        head,
    )
