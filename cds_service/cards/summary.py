"""The card's one-line summary: what fired, with its numbers, under 140 characters."""

from __future__ import annotations

from cds_service.cards import summary_phrases as says
from cds_service.cards import text
from cds_service.cards.level_phrases import missed_level_words, urgent_level_words
from cds_service.cards.phrasebook import phrase
from cds_service.cards.words import fmt, modality_words, pain_phrase
from cds_service.engine import routine, study
from cds_service.engine.assessment import (
    FACTS,
    Assessment,
    Recommendation,
    Remark,
)
from fhir_mappers.model import Modality

SUMMARY_MAX = 139


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
    """The summary: which kind of card it is, from the engine's answer, in the words of
    ``summary_phrases``, the first candidate that fits."""
    mod = modality_words(a.orders)
    rec = a.recommendation
    if rec is Recommendation.ADVISE_AGAINST:
        return _fit(*_with_unread(a, _advise_against(a, mod)))
    flags = a.red_flags
    if rec is Recommendation.SUPPORT_URGENT:
        neuro = phrase(next(f for f in flags if f.rule_id == "neuro")).short
        # the infected level missed first, when no order images it: the summary names it
        # (a deficit's level note beside it must not take its place: an outside re-run
        # lost "the infection is cervical" and "spine surgery now" that way)
        missed_infection = _missed_level(a)
        missed_deficit = next((n for n in a.notes if n.code == "order-misses-deficit-level"), None)
        seen = neuro_seen_on_study(a)
        if seen is not None:
            return _fit(*says.urgent_seen(neuro, phrase(seen).short, seen.data["allRedFlags"]))
        if missed_infection is not None:
            level = urgent_level_words(missed_infection.data, missed_deficit is not None)
            return _fit(*says.urgent_level_missed(neuro, level))
        deficit = phrase(missed_deficit).short if missed_deficit is not None else None
        return _fit(*says.urgent(neuro, deficit))
    if rec is Recommendation.SUPPORT:
        shorts = _in_a_row([phrase(f).short for f in flags])
        first = text.FLAG_NAMES[flags[0].rule_id]
        complication_only = len(flags) == 1 and flags[0].rule_id == "complication"
        seen = seen_on_study(a)
        if seen is not None:  # a new abscess seen on a study of the last days
            return _fit(*says.support_seen(shorts, phrase(seen).short))
        if mechanical_only(a):
            return _fit(*says.mechanical(shorts))
        missed = _missed_level(a)
        if missed is not None:
            # every order misses the infected level: the summary says so and names the
            # study that answers, as the detail does, never "repeat spine MRI reasonable"
            words, fewer = missed_level_words(missed.data)
            return _fit(*says.level_missed(shorts, words, fewer, complication_only, first))
        preferred = a.next_steps.mri_preferred_to_ct  # summary and detail agree on a CT
        if complication_only:
            return _fit(*says.complication(shorts[0], mod, preferred))
        if pain_while_crp_falls(a):  # summary and detail agree: think mechanical
            return _fit(*says.pain_while_crp_falls(shorts[0], mod, _has_ct(a)))
        return _fit(*says.support(shorts, mod, preferred, first))
    gaps = [phrase(r).short for r in (*a.missing, *a.unmet)]
    # what the engine asks of the markers (engine/next_steps.py), if anything
    return _fit(*says.insufficient(mod, gaps, a.next_steps.markers_asked))


def _with_unread(a: Assessment, candidates: says.Candidates) -> says.Candidates:
    """An advice against imaging beside new diagnoses the service cannot read says so in
    its summary too: an outside clinician's review saw a new foot drop and urinary
    retention named only in the detail, under a summary a busy clinician acts on."""
    unread = next((n for n in a.notes if n.code == "new-diagnoses-not-read"), None)
    if unread is None:
        return candidates
    return tuple(f"{c}; {phrase(unread).short}" for c in candidates)


def _advise_against(a: Assessment, mod: str) -> says.Candidates:
    """The advise-against summary: never "improving" beside the Yoon levels, a CRP that
    never rose or a rise too early to count."""
    finding = next((f for f in a.rules_fired if f.rule_id == "advise-against"), None)
    short = phrase(finding).short if finding is not None else ""
    yoon = next((n for n in a.notes if n.code == "yoon-high-markers"), None)
    if yoon is not None:
        return says.yoon_high(mod, phrase(yoon).short, short)
    never = next((n for n in a.notes if n.code == "crp-never-raised"), None)
    if never is not None and finding is not None:
        d = finding.data
        pain = pain_phrase(
            d["painFirst"]["value"],
            d["painLatest"]["value"],
            d[FACTS]["painCount"],
            d[FACTS]["painStable"],
        )
        return says.never_raised(mod, pain, fmt(never.data["highest"]))
    return says.advise_against(mod, short)
