"""The machine-readable result on every card, and the pruning CDS Hooks asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cds_service.cards.phrasebook import card_data
from cds_service.cards.words import condition_name
from cds_service.engine.assessment import NO_ORDER, Assessment
from cds_service.engine.records import antibiotic_to_dict, condition_to_dict, figure
from cds_service.engine.thresholds import PCT_DIGITS


def machine_result(a: Assessment) -> dict[str, Any]:
    """The documented object under ``extension["spine-cds-assessment"]`` on every card.

    recommendation; rulesFired [{id, recommendation, data}]; orders; evaluationDay;
    episode {condition, t0, t0Source, antibiotic {reference, name, start},
    antibioticsOutsideWindow [{reference, name, start}], antibioticsNotCounted ("undated"
    or "not-counted": orders on record, none counted as treatment)}; daysSinceT0;
    crp {baseline or earliestRead, latest, lowestEarlier, percentChange, unit}; pain {first, lowest,
    latest}; esr {first, latest}; missing / unmet / notes [codes]; knownAtDiagnosis
    [{reference, name, category, start}]; unavailable [kinds of data not read]. Values
    absent from the data are omitted.
    """
    f = a.figures
    t0 = f.t0_day
    out: dict[str, Any] = {
        "recommendation": a.recommendation.value,
        "rulesFired": [
            {"id": r.rule_id, "recommendation": r.recommendation.value, "data": card_data(r)}
            for r in a.rules_fired
        ],
        "orders": [o.reference for o in a.orders],
        "evaluationDay": a.evaluation_day.isoformat(),
    }
    if a.episode is not None:
        out["episode"] = {"condition": condition_to_dict(a.episode.condition)}
        if t0 is not None:
            out["episode"]["t0"] = t0.isoformat()
            out["episode"]["t0Source"] = a.episode.t0_source  # first antibiotic order or not
        if (ab := a.episode.antibiotic) is not None:
            out["episode"]["antibiotic"] = antibiotic_to_dict(ab)
        if a.episode.outside_window:  # orders on record, none in T0's window
            out["episode"]["antibioticsOutsideWindow"] = [
                antibiotic_to_dict(x) for x in a.episode.outside_window
            ]
        elif a.episode.antibiotic is None and t0 is not None:
            # orders on record that do not count (undated, a draft, ...): the trend app
            # must not say "no antibiotic order found" while the card names them
            on_record = a.next_steps.antibiotics_not_counted
            if on_record != NO_ORDER:
                out["episode"]["antibioticsNotCounted"] = on_record
    if f.days_since_t0 is not None:
        out["daysSinceT0"] = f.days_since_t0
    crp: dict[str, Any] = {}
    # A CRP search cut off short of the baseline window: its first value read may not be
    # the baseline, so it is not called one here either, as on the card ("earliest read"),
    # and no change from it is given (the trend app drew "Baseline CRP" and a fall line
    # from it)
    first = "earliestRead" if f.crp_read_short else "baseline"
    for key, m in (
        (first, f.crp_baseline),
        ("latest", f.crp_latest),
        ("lowestEarlier", f.crp_lowest_earlier),
    ):
        if m is not None:
            crp[key] = figure(m, t0)
    if f.crp_percent_change is not None and not f.crp_read_short:
        # as the findings' figures: a fall of 24.99% is never 25.0 here beside them
        crp["percentChange"] = round(f.crp_percent_change, PCT_DIGITS)
    if crp:
        crp["unit"] = "mg/L"
        out["crp"] = crp
    pain = {
        k: figure(m, t0)
        for k, m in (("first", f.pain_first), ("lowest", f.pain_lowest), ("latest", f.pain_latest))
        if m is not None
    }
    if pain:
        out["pain"] = pain
    esr = {
        k: figure(m, t0)
        for k, m in (("first", f.esr_first), ("latest", f.esr_latest))
        if m is not None
    }
    if esr:
        out["esr"] = esr
    for key, remarks in (("missing", a.missing), ("unmet", a.unmet), ("notes", a.notes)):
        if remarks:
            out[key] = [r.code for r in remarks]
    # Findings known at diagnosis (never new red flags) and data that could not be read.
    out["knownAtDiagnosis"] = [
        {
            "reference": c.reference,
            "name": condition_name(c),
            "category": c.category.value,
            "start": c.start.shown if c.start is not None else None,
        }
        for c in a.known
    ]
    out["unavailable"] = sorted(a.unavailable)
    pruned = prune(out)
    assert isinstance(pruned, dict)
    return pruned


def prune(value: Any) -> Any:
    """Drop null, "", [] and {} recursively: CDS Hooks forbids them and FHIR JSON too.

    The result is made of new dicts and lists all through (a copy of what it was given).
    Strings and numbers, most of the leaves, are judged in one loop rather than by a
    call each: one card holds a few hundred of them."""
    if isinstance(value, Mapping):
        return dict(_kept(value.items()))
    if isinstance(value, list | tuple):
        return [item for _, item in _kept(enumerate(value))]
    return value


def _kept(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """The (key, value) pairs whose pruned value is not empty, pruned."""
    kept = []
    for key, item in pairs:
        kind = type(item)
        if kind is str:
            if item:
                kept.append((key, item))
        elif kind in _NUMBERS:
            kept.append((key, item))
        elif item is not None:
            item = prune(item)
            if not _empty(item):
                kept.append((key, item))
    return kept


_NUMBERS = frozenset({int, float, bool})


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}
