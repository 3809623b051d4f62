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
from datetime import date
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
from cds_service.engine.rules import ARROW, fmt, signed_pct, sort_key, upper_first
from cds_service.trend_link import add_trend_link
from fhir_mappers.model import DataIssue, ImagingOrder, Measurement, Modality

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
    add_trend_link(card, card["extension"][ASSESSMENT_KEY], ctx.patient_id, a.settings)
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


def _modality(orders: Sequence[ImagingOrder]) -> str:
    kinds = sorted({o.modality.value for o in orders}, key=lambda m: (m != "MRI", m))
    return "/".join(kinds) if kinds else "imaging"


def _has_ct(a: Assessment) -> bool:
    return any(o.modality is Modality.CT for o in a.orders)


def _fit(*candidates: str) -> str:
    """The first candidate short enough for a summary (the last one always is)."""
    for c in candidates:
        if len(c) <= SUMMARY_MAX:
            return c
    return candidates[-1][: SUMMARY_MAX - 1].rstrip() + "…"


def _crp_recent(a: Assessment) -> bool:
    """A CRP counted, and the latest taken within the recency limit before the order."""
    latest = a.figures.crp_latest
    if latest is None:
        return False
    return (a.evaluation_day - latest.when.day).days <= a.settings.crp_max_age_days


def _needs_markers(a: Assessment) -> bool:
    """Suggest ordering CRP/ESR only when the latest CRP is missing or too old."""
    return a.recommendation is Recommendation.INSUFFICIENT_DATA and not _crp_recent(a)


def summary(a: Assessment) -> str:
    mod = _modality(a.orders)
    rec = a.recommendation
    if rec is Recommendation.ADVISE_AGAINST:
        head = f"Routine repeat spine {mod} not recommended"
        short = next((f.short for f in a.rules_fired if f.rule_id == "advise-against"), "")
        return _fit(f"{head}: {short}", f"{head}: improving")
    flags = a.red_flags
    if rec is Recommendation.SUPPORT_URGENT:
        neuro = next(f for f in flags if f.rule_id == "neuro")
        action = "emergency MRI with contrast now; urgent spine surgery review"
        return _fit(
            f"{neuro.short}: {action}",
            f"New neurologic deficit: {action}",
            "New neurologic deficit: emergency MRI now",
        )
    if rec is Recommendation.SUPPORT:
        if len(flags) == 1 and flags[0].rule_id == "complication":
            tail = "MRI reasonable; examine neurology now; discuss with spine surgery"
            return _fit(
                f"{flags[0].short}: {tail}",
                f"{flags[0].short}: repeat spine {mod} reasonable",
                f"Complication recorded: {tail}",
            )
        tail = f"repeat spine {mod} reasonable"
        shorts = [f.short for f in flags]
        more = len(shorts) - 1
        return _fit(
            f"{'; '.join(shorts)}; {tail}",
            f"{shorts[0]}, and {more} more red flag{'s' if more > 1 else ''}; {tail}",
            f"{shorts[0]}; {tail}",
            f"Red flag recorded; {tail}",
        )
    gaps = [r.short for r in (*a.missing, *a.unmet)]
    head = f"Not enough data to judge repeat spine {mod}"
    tail = "; repeat CRP/ESR" if _needs_markers(a) else ""
    return _fit(
        f"{head}: {'; '.join(gaps)}{tail}",
        f"{head}: {gaps[0]}{tail}" if gaps else head,
        head,
    )


# --- detail (markdown) -----------------------------------------------------------------


def _value_text(m: Measurement) -> str:
    value = f"{m.comparator}{fmt(m.value)}" if m.comparator else fmt(m.value)
    if m.original_unit and m.original_unit != m.unit:
        value += f" (reported {fmt(m.original_value)} {m.original_unit})"
    return value


def _ago(days: int) -> str:
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def _crp_section(a: Assessment) -> list[str]:
    f = a.figures
    t0 = f.t0_day
    if not a.crp:
        return []
    rose = any("rise" in r.data for r in a.rules_fired)
    in_window = t0 is not None and _baseline_in_window(a)
    roles: dict[str, list[str]] = {}
    if len(a.crp) == 1:
        roles = {}
    for role, m in (
        ("baseline" if in_window else "first after start", f.crp_baseline),
        ("lowest before latest", f.crp_lowest_earlier if rose else None),
        ("latest", f.crp_latest),
    ):
        if m is not None and len(a.crp) > 1:
            roles.setdefault(m.reference, []).append(role)
    lines = ["| Date | Day | CRP mg/L | |", "|---|---|---|---|"]
    for m in a.crp:
        day = str((m.when.day - t0).days) if t0 is not None else ""
        role = ", ".join(roles.get(m.reference, [])) or " "
        lines.append(f"| {m.when.day.isoformat()} | {day} | {_value_text(m)} | {role} |")
    return lines


def _baseline_in_window(a: Assessment) -> bool:
    base, t0 = a.figures.crp_baseline, a.figures.t0_day
    if base is None or t0 is None:
        return False
    return abs((base.when.day - t0).days) <= a.settings.baseline_window_days


def _series_text(label: str, series: Sequence[Measurement], unit: str, t0: date | None) -> str:
    """ "ESR (mm/h): 95 (day 0) → 60 (day 28)." or "ESR 95 mm/h on day 0 (one value)."."""

    def day(m: Measurement) -> str:
        return f"day {(m.when.day - t0).days}" if t0 is not None else m.when.day.isoformat()

    if len(series) == 1:
        sep = "" if unit.startswith("/") else " "
        return f"{label} {fmt(series[0].value)}{sep}{unit} on {day(series[0])} (one value)."
    points = f" {ARROW} ".join(f"{fmt(m.value)} ({day(m)})" for m in series)
    scale = "0-10" if unit == "/10" else unit
    return f"{label} ({scale}): {points}."


def _trend_lines(a: Assessment) -> list[str]:
    """CRP, pain and ESR in one line each: the numbers that matter, with the CRP's age."""
    f = a.figures
    lines = []
    if f.crp_latest is not None:
        age = _ago((a.evaluation_day - f.crp_latest.when.day).days)
        if f.crp_baseline is not None and f.crp_percent_change is not None:
            label = "baseline" if _baseline_in_window(a) else "first value after the start"
            lines.append(
                f"CRP {fmt(f.crp_baseline.value)}{ARROW}{fmt(f.crp_latest.value)} mg/L "
                f"({signed_pct(f.crp_percent_change)} from the {label}); latest CRP {age}."
            )
        else:
            lines.append(f"CRP {fmt(f.crp_latest.value)} mg/L (one value), {age}.")
    else:
        lines.append("No CRP counted.")
    if a.pain:
        series = sorted(a.pain, key=sort_key)
        if len(series) > 5:  # first, lowest and latest carry the rules
            low = min(series, key=lambda m: (m.value, sort_key(m)))
            series = sorted({id(m): m for m in (series[0], low, series[-1])}.values(), key=sort_key)
        lines.append(_series_text("Pain", series, "/10", f.t0_day))
    else:
        lines.append("No pain score since treatment start.")
    if a.esr:
        lines.append(_series_text("ESR", a.esr, "mm/h", f.t0_day))
    return lines


def _bullets(items: Sequence[str]) -> list[str]:
    return [f"- {i}" for i in items]


def _evidence(keys: Sequence[str]) -> list[str]:
    lines = ["**Evidence**", ""]
    cited: list[str] = []
    for key in keys:
        statement, refs = text.STATEMENTS[key]
        lines.append(f"- {statement}")
        cited += [r for r in refs if r not in cited]
    lines += ["", "Sources: " + "; ".join(text.CITATIONS[r] for r in cited) + "."]
    return lines


def _episode_line(a: Assessment) -> str:
    ep = a.episode
    name = upper_first(text.DISEASE)
    if ep is None or ep.t0 is None:
        return f"{name}; treatment start not recorded."
    day = a.figures.days_since_t0
    return (
        f"{name}, treatment started {ep.t0.day.isoformat()}; "
        f"order on day {day} ({a.evaluation_day.isoformat()})."
    )


def left_out(issues: Sequence[DataIssue]) -> list[str]:
    """Data left out, counted and named in clinical words (ids stay in the audit)."""
    groups: dict[str, int] = {}
    for issue in issues:
        if issue.kind is not None and issue.plain:
            noun = KIND_NOUNS.get(issue.kind, issue.kind)
            key = f"{noun} {issue.plain}"
        elif "another patient" in issue.reason:
            key = "result recorded for another patient"
        elif "read as" in issue.reason:
            continue  # read, with one element taken as absent: not left out
        elif issue.plain:
            key = f"result {issue.plain}"
        else:
            key = "record that could not be read"
        groups[key] = groups.get(key, 0) + 1
    lines = []
    for key, n in sorted(groups.items()):
        verb = "was" if n == 1 else "were"
        lines.append(f"{n} {key} {verb} not used.")
    return lines


KIND_NOUNS = {"crp": "CRP", "esr": "ESR", "pain": "pain score"}


def detail(a: Assessment) -> str:
    rec = a.recommendation
    blocks: list[list[str]] = []
    flags = a.red_flags
    if rec is Recommendation.ADVISE_AGAINST:
        blocks.append([text.SAFETY_NET])
        blocks.append([_episode_line(a), "Improving, no red flag recorded.", *_trend_lines(a)])
    elif rec in (Recommendation.SUPPORT_URGENT, Recommendation.SUPPORT):
        if _has_ct(a):
            blocks.append([f"**{text.MRI_PREFERRED}**"])
        items = [f.message for f in flags]
        if any(f.rule_id == "complication" for f in flags) and rec is Recommendation.SUPPORT:
            items.append(text.COMPLICATION_ACTION)
        markers = next((f for f in flags if f.rule_id == "markers-not-responding"), None)
        if markers is not None:
            items.append(text.MARKERS_CAVEAT)
            if "rise" in markers.data:
                items.append(text.REBOUND_SOURCES)
        blocks.append([_episode_line(a)])
        blocks.append(_bullets(items))
        trend = _trend_lines(a)
        if markers is not None and a.figures.crp_latest is not None:
            # its bullet already gives the CRP figures: keep only the latest CRP's age
            age = _ago((a.evaluation_day - a.figures.crp_latest.when.day).days)
            trend = [f"Latest CRP {age}." if t.startswith("CRP ") else t for t in trend]
        blocks.append(trend)
    else:
        blocks.append(
            [
                "**Not enough data to judge repeat imaging: this card neither supports nor "
                "advises against it.**"
            ]
        )
        blocks.append([_episode_line(a)])
        asks = [r.message for r in (*a.missing, *a.unmet)]
        blocks.append(["To decide:", "", *_bullets([*asks, text.NEURO_EXAM])])
        blocks.append(_trend_lines(a))
    notes = [r.message for r in a.notes] + left_out(a.issues)
    if notes:
        blocks.append(_bullets(notes))
    blocks.append(_crp_section(a))
    keys = [f.rule_id for f in flags] or [rec.value]
    if any(r.code == "esr-rising" for r in a.notes):
        keys.append("esr-rising")
    blocks.append(_evidence(list(dict.fromkeys(keys))))
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
    """Remove the order when advising against it; order markers only when the CRP is stale.

    An advise-against card always rests on a recent CRP, so it offers removal alone;
    an insufficient-data card asks for CRP/ESR only when the latest CRP is missing or
    older than the recency limit (never for a CRP drawn today).
    """
    rec = a.recommendation
    mod = _modality(a.orders)
    if rec is Recommendation.ADVISE_AGAINST:
        return [
            {
                "label": f"Remove the spine {mod} order",
                "uuid": _sub_uuid(card_id, "remove-imaging"),
                "isRecommended": True,
                "actions": _delete_orders(a),
            }
        ]
    if _needs_markers(a):
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
            "description": f"Appropriateness rating: {r} ({ctx.service_label})",
            "resource": rated_resource(o, r, ctx.qcdsm_name, card_id),
        }
        for o in a.orders
        for r in (_order_rating(a, o, rating),)
    ]


def _order_rating(a: Assessment, order: ImagingOrder, rating: str) -> str:
    """A CT for a new neurologic deficit is rated not-appropriate: MRI is the study of
    choice (IDSA 2015), CT only when MRI cannot be done, which the clinician records
    with the override reason the card offers."""
    if a.recommendation is Recommendation.SUPPORT_URGENT and order.modality is Modality.CT:
        return "not-appropriate"
    return rating


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
