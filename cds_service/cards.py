"""Assessment -> CDS Hooks response: one card per decision, suggestions, ratings.

One card per decision, not per rule: order-sign with several spine orders gets one
coherent answer. The card uuid is a uuid5 over what the decision is about (patient,
orders, recommendation, rules, key figures), never the hook or hookInstance, so the
same advice seen at order-select and again at order-sign is recognisably the same.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from cds_service import cards_text as text
from cds_service.engine.assessment import (
    Assessment,
    Recommendation,
    condition_to_dict,
    figure,
    figures_to_dict,
)
from fhir_mappers.model import ImagingOrder, Measurement

ASSESSMENT_KEY = "spine-cds-assessment"
LOINC = "http://loinc.org"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_QCDSM = "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_URLS = frozenset({PAMA_RATING, PAMA_QCDSM, PAMA_CONSULT_ID})
# Fixed namespace so card uuids are stable across processes and releases.
CARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://spine-cds.invalid/card")
SUMMARY_MAX = 139

INDICATORS = {
    Recommendation.ADVISE_AGAINST: "warning",
    Recommendation.SUPPORT_URGENT: "critical",
    Recommendation.SUPPORT: "info",
    Recommendation.INSUFFICIENT_DATA: "info",
}
RATINGS = {
    Recommendation.ADVISE_AGAINST: "not-appropriate",
    Recommendation.SUPPORT: "appropriate",
    Recommendation.SUPPORT_URGENT: "appropriate",
}
# Lab orders suggested instead of imaging: (LOINC code, text), codes from clinical-rules.md.
MARKER_ORDERS = (
    ("1988-5", "C-reactive protein (CRP), serum or plasma"),
    ("4537-7", "Erythrocyte sedimentation rate (ESR), Westergren"),
)


@dataclass(frozen=True)
class OverrideReason:
    system: str
    code: str
    display: str
    applies_to: frozenset[str]


@lru_cache(maxsize=1)
def load_override_reasons() -> tuple[OverrideReason, ...]:
    """The override reasons in overrides.json (package data)."""
    raw = resources.files("cds_service").joinpath("overrides.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    return tuple(
        OverrideReason(data["system"], r["code"], r["display"], frozenset(r["appliesTo"]))
        for r in data["reasons"]
    )


@dataclass(frozen=True)
class CardContext:
    """What the renderer needs besides the Assessment (no web framework)."""

    patient_id: str
    service_label: str = "Spine imaging follow-up (NVO)"
    qcdsm_name: str = "Spine imaging follow-up (NVO) CDS service"
    encounter_id: str | None = None
    override_reasons: tuple[OverrideReason, ...] = field(default_factory=load_override_reasons)


def render_response(assessment: Assessment, ctx: CardContext) -> dict[str, Any]:
    """The CDS Hooks response body; ``{"cards": []}`` when the service does not apply."""
    if not assessment.applicable:
        return {"cards": []}
    card_id = card_uuid(assessment, ctx.patient_id)
    card = render_card(assessment, ctx, card_id)
    response: dict[str, Any] = {"cards": [card]}
    actions = rating_actions(assessment, ctx, card_id)
    if actions:
        response["systemActions"] = actions
        # The CDS Hooks sandbox's PAMA tab reads only this pre-2.0 place.
        response["extension"] = {"systemActions": copy.deepcopy(actions)}
    return response


def render_card(a: Assessment, ctx: CardContext, card_id: str) -> dict[str, Any]:
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": summary(a),
        "indicator": INDICATORS[a.recommendation],
        "detail": detail(a),
        "source": {"label": text.SOURCE_LABEL, "url": text.SOURCE_URL},
    }
    suggestions = build_suggestions(a, ctx, card_id)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    reasons = [
        {"system": r.system, "code": r.code, "display": r.display}
        for r in ctx.override_reasons
        if a.recommendation.value in r.applies_to
    ]
    if reasons:
        card["overrideReasons"] = reasons
    card["extension"] = {ASSESSMENT_KEY: machine_result(a)}
    return card


# --- identity --------------------------------------------------------------------------


def card_uuid(a: Assessment, patient_id: str) -> str:
    """uuid5 over patient, orders, recommendation, rule ids and key figures."""
    basis = {
        "patient": patient_id,
        "orders": sorted(
            [o.reference, sorted(f"{c.system}|{c.code}" for c in o.codes)] for o in a.orders
        ),
        "recommendation": a.recommendation.value,
        "rules": [f.rule_id for f in a.rules_fired],
        "figures": figures_to_dict(a.figures),
    }
    return str(uuid.uuid5(CARD_NAMESPACE, json.dumps(basis, sort_keys=True, separators=(",", ":"))))


def _sub_uuid(card_id: str, name: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{card_id}/{name}"))


# --- summary ---------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{round(value, 1):g}"


def _modality(orders: Sequence[ImagingOrder]) -> str:
    kinds = sorted({o.modality.value for o in orders}, key=lambda m: (m != "MRI", m))
    return "/".join(kinds) if kinds else "imaging"


def _fit(*candidates: str) -> str:
    """The first candidate short enough for a summary (the last one always is)."""
    for c in candidates:
        if len(c) <= SUMMARY_MAX:
            return c
    return candidates[-1][: SUMMARY_MAX - 1].rstrip() + "…"


def summary(a: Assessment) -> str:
    mod = _modality(a.orders)
    f = a.figures
    rec = a.recommendation
    if rec is Recommendation.ADVISE_AGAINST:
        detail_part = ""
        fell = (
            f.crp_percent_change is not None
            and -f.crp_percent_change >= a.settings.plateau_min_fall_pct
        )
        if f.crp_baseline and f.crp_latest and f.pain_first and f.pain_latest:
            pain = f"pain {_fmt(f.pain_first.value)}→{_fmt(f.pain_latest.value)}"
            if fell:
                change = f", {_fmt(f.crp_percent_change or 0)}%"
                detail_part = (
                    f" (CRP {_fmt(f.crp_baseline.value)}→{_fmt(f.crp_latest.value)} mg/L"
                    f"{change}; {pain})"
                )
            else:
                detail_part = f" (CRP {_fmt(f.crp_latest.value)} mg/L, below normal; {pain})"
        head = f"Repeat spine {mod} not indicated: " + (
            "NVO improving" if fell else "CRP normal, pain not worse"
        )
        return _fit(
            f"{head}{detail_part}. Consider CRP/ESR instead.",
            f"{head}. Consider CRP/ESR instead.",
        )
    if rec is Recommendation.SUPPORT_URGENT:
        return _fit(
            "Urgent spine MRI supported: new neurologic deficit since NVO treatment start; "
            "rule out abscess or cord compression.",
            "Urgent spine MRI supported: new neurologic deficit in NVO.",
        )
    if rec is Recommendation.SUPPORT:
        labels = [text.SUMMARY_LABELS[f.rule_id] for f in a.red_flags]
        return _fit(
            f"Repeat spine {mod} supported in NVO: {'; '.join(labels)}.",
            f"Repeat spine {mod} supported in NVO: {labels[0]}.",
            f"Repeat spine {mod} supported in NVO: red flag present.",
        )
    gaps = [r.short for r in (*a.missing, *a.unmet)]
    head = f"Can't judge repeat spine {mod} in NVO yet"
    tail = "Order CRP/ESR, record pain."
    return _fit(
        f"{head}: {'; '.join(gaps)}. {tail}",
        f"{head}: {gaps[0]}. {tail}",
        f"{head}: data missing. {tail}",
    )


# --- detail (markdown) -----------------------------------------------------------------


def _value_text(m: Measurement) -> str:
    value = f"{m.comparator}{_fmt(m.value)}" if m.comparator else _fmt(m.value)
    if m.comparator:
        value += " (reported as a limit; taken at the limit)"
    if m.original_unit and m.original_unit != m.unit:
        value += f" (reported {_fmt(m.original_value)} {m.original_unit})"
    return value


def _crp_section(a: Assessment) -> list[str]:
    f = a.figures
    if not a.crp:
        return [
            "**CRP:** no result counted (from 7 days before treatment start to the order date)."
        ]
    rose = any("rise" in r.data for r in a.rules_fired)
    roles: dict[str, list[str]] = {}
    for role, m in (
        ("baseline", f.crp_baseline),
        ("lowest earlier", f.crp_lowest_earlier if rose else None),
        ("latest", f.crp_latest),
    ):
        if m is not None:
            roles.setdefault(m.reference, []).append(role)
    lines = [
        "**CRP trend (mg/L)**",
        "",
        "| Date | Day | CRP mg/L | |",
        "|---|---|---|---|",
    ]
    t0 = f.t0_day
    for m in a.crp:
        day = str((m.when.day - t0).days) if t0 is not None else "?"
        role = ", ".join(roles.get(m.reference, [])) or " "
        lines.append(f"| {m.when.day.isoformat()} | {day} | {_value_text(m)} | {role} |")
    if f.crp_baseline and f.crp_latest and f.crp_percent_change is not None:
        lines += [
            "",
            f"Change from baseline: {_fmt(f.crp_percent_change)}% "
            f"({_fmt(f.crp_baseline.value)} → {_fmt(f.crp_latest.value)} mg/L).",
        ]
    return lines


def _series_line(label: str, series: Sequence[Measurement], unit: str) -> str:
    points = " → ".join(f"{_fmt(m.value)} ({m.when.day.isoformat()})" for m in series)
    return f"**{label}:** {points} {unit}".rstrip()


def _pain_section(a: Assessment) -> list[str]:
    f = a.figures
    if not a.pain or f.pain_first is None or f.pain_lowest is None or f.pain_latest is None:
        return ["**Pain (0-10):** no score since treatment start."]
    return [
        _series_line("Pain (0-10)", a.pain, "")
        + f"; first {_fmt(f.pain_first.value)}, lowest {_fmt(f.pain_lowest.value)}, "
        f"latest {_fmt(f.pain_latest.value)}."
    ]


def _bullets(title: str, items: Sequence[str]) -> list[str]:
    return [f"**{title}**", "", *(f"- {i}" for i in items)] if items else []


def _evidence(keys: Sequence[str]) -> list[str]:
    lines = ["**Evidence**", ""]
    cited: list[str] = []
    for key in keys:
        statement, refs = text.STATEMENTS[key]
        lines.append(f"- {statement}")
        cited += [r for r in refs if r not in cited]
    lines += ["", "Sources: " + "; ".join(text.CITATIONS[r] for r in cited) + "."]
    return lines


def detail(a: Assessment) -> str:
    rec = a.recommendation
    blocks: list[list[str]] = [[f"**{text.HEADLINES[rec.value]}**"]]
    ep = a.episode
    if ep is not None:
        name = ep.condition.reference
        codes = ", ".join(c.display or c.code for c in ep.condition.codes)
        if codes:
            name = f"{codes} ({ep.condition.reference})"
        t0 = ep.t0.day.isoformat() if ep.t0 is not None else "unknown"
        day = "" if a.figures.days_since_t0 is None else f" (day {a.figures.days_since_t0})"
        blocks.append(
            [
                f"Episode: {name}. Treatment start (T0): {t0}. "
                f"Evaluated for the order date {a.evaluation_day.isoformat()}{day}."
            ]
        )
    blocks.append(_bullets("Red flag found", [f.message for f in a.red_flags]))
    blocks.append(_bullets("Missing", [r.message for r in a.missing]))
    blocks.append(_bullets("Not met", [r.message for r in a.unmet]))
    blocks.append(_crp_section(a))
    blocks.append(_pain_section(a))
    if a.esr:
        blocks.append([_series_line("ESR", a.esr, "mm/h")])
    blocks.append(_bullets("Notes", [r.message for r in a.notes]))
    if a.issues:
        blocks.append(
            [f"{len(a.issues)} resource(s) could not be used (see the audit record for reasons)."]
        )
    keys = [f.rule_id for f in a.red_flags] or [rec.value]
    if any(r.code == "esr-rising" for r in a.notes):
        keys.append("esr-rising")
    blocks.append(_evidence(keys))
    return "\n\n".join("\n".join(b) for b in blocks if b)


# --- machine-readable result -----------------------------------------------------------


def machine_result(a: Assessment) -> dict[str, Any]:
    """The documented object under ``extension["spine-cds-assessment"]`` on every card.

    recommendation; rulesFired [{id, recommendation, data}]; orders; evaluationDay;
    episode {condition, t0}; daysSinceT0; crp {baseline, latest, lowestEarlier,
    percentChange, unit}; pain {first, lowest, latest}; esr {first, latest};
    missing / unmet / notes [codes]. Values absent from the data are omitted.
    """
    f = a.figures
    t0 = f.t0_day
    out: dict[str, Any] = {
        "recommendation": a.recommendation.value,
        "rulesFired": [
            {"id": r.rule_id, "recommendation": r.recommendation.value, "data": dict(r.data)}
            for r in a.rules_fired
        ],
        "orders": [o.reference for o in a.orders],
        "evaluationDay": a.evaluation_day.isoformat(),
    }
    if a.episode is not None:
        out["episode"] = {"condition": condition_to_dict(a.episode.condition)}
        if t0 is not None:
            out["episode"]["t0"] = t0.isoformat()
    if f.days_since_t0 is not None:
        out["daysSinceT0"] = f.days_since_t0
    crp: dict[str, Any] = {}
    for key, m in (
        ("baseline", f.crp_baseline),
        ("latest", f.crp_latest),
        ("lowestEarlier", f.crp_lowest_earlier),
    ):
        if m is not None:
            crp[key] = figure(m, t0)
    if f.crp_percent_change is not None:
        crp["percentChange"] = round(f.crp_percent_change, 1)
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
    pruned = prune(out)
    assert isinstance(pruned, dict)
    return pruned


# --- suggestions and actions -----------------------------------------------------------


def _marker_orders(a: Assessment, ctx: CardContext) -> list[dict[str, Any]]:
    actions = []
    for code, label in MARKER_ORDERS:
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": LOINC, "code": code}], "text": label},
            "subject": {"reference": f"Patient/{ctx.patient_id}"},
        }
        if ctx.encounter_id:
            resource["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
        if a.episode is not None and "#" not in a.episode.condition.reference:
            resource["reasonReference"] = [{"reference": a.episode.condition.reference}]
        actions.append({"type": "create", "description": f"Order {label}", "resource": resource})
    return actions


def _delete_orders(a: Assessment) -> list[dict[str, Any]]:
    return [
        {
            "type": "delete",
            "description": f"Remove the draft spine {o.modality.value} order",
            "resourceId": o.reference,
        }
        for o in a.orders
    ]


def build_suggestions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    rec = a.recommendation
    mod = _modality(a.orders)
    if rec is Recommendation.ADVISE_AGAINST:
        return [
            {
                "label": f"Remove the spine {mod} order; order CRP and ESR instead",
                "uuid": _sub_uuid(card_id, "replace-with-markers"),
                "isRecommended": True,
                "actions": _delete_orders(a) + _marker_orders(a, ctx),
            },
            {
                "label": f"Remove the spine {mod} order",
                "uuid": _sub_uuid(card_id, "remove-imaging"),
                "actions": _delete_orders(a),
            },
        ]
    if rec is Recommendation.INSUFFICIENT_DATA:
        return [
            {
                "label": "Order CRP and ESR",
                "uuid": _sub_uuid(card_id, "order-markers"),
                "isRecommended": True,
                "actions": _marker_orders(a, ctx),
            }
        ]
    return []


def rating_actions(a: Assessment, ctx: CardContext, card_id: str) -> list[dict[str, Any]]:
    """`update` actions carrying the Argonaut PAMA rating on each draft ServiceRequest."""
    rating = RATINGS.get(a.recommendation)
    if rating is None:
        return []
    return [
        {
            "type": "update",
            "description": f"Appropriateness rating: {rating} ({ctx.service_label})",
            "resource": rated_resource(o, rating, ctx.qcdsm_name, card_id),
        }
        for o in a.orders
    ]


def rated_resource(order: ImagingOrder, rating: str, qcdsm: str, card_id: str) -> dict[str, Any]:
    """The whole draft with the PAMA extensions replaced (other extensions kept)."""
    resource = prune(copy.deepcopy(dict(order.resource)))
    if not isinstance(resource, dict):
        resource = {}
    resource.setdefault("resourceType", "ServiceRequest")
    if "id" not in resource and "/" in order.reference:
        resource["id"] = order.reference.split("/", 1)[1]
    kept = [
        e
        for e in resource.get("extension", [])
        if not (isinstance(e, Mapping) and e.get("url") in PAMA_URLS)
    ]
    resource["extension"] = [
        *kept,
        {
            "url": PAMA_RATING,
            "valueCodeableConcept": {"coding": [{"system": PAMA_SYSTEM, "code": rating}]},
        },
        {"url": PAMA_QCDSM, "valueString": qcdsm},
        {"url": PAMA_CONSULT_ID, "valueUri": f"urn:uuid:{card_id}"},
    ]
    return resource


def prune(value: Any) -> Any:
    """Drop null, "", [] and {} recursively: CDS Hooks forbids them and FHIR JSON too."""
    if isinstance(value, Mapping):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        items = [prune(v) for v in value]
        return [v for v in items if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


__all__ = [
    "ASSESSMENT_KEY",
    "CardContext",
    "OverrideReason",
    "card_uuid",
    "load_override_reasons",
    "render_response",
]
