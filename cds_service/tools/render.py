"""CDS Hooks responses as terminal text: what a clinician would see, and why.

Works from the response body alone (any version of the service, local or remote): the
card's summary, indicator, suggestions and source, the decision and key figures from the
card's machine-readable ``spine-cds-assessment`` extension, the reasons listed in its
detail, and the PAMA rating carried by ``systemActions``. Colour comes from
``click.style``; ``click.echo`` drops it when the output is not a terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import click

from cds_service.cards.ratings import PAMA_RATING
from cds_service.cards.render import ASSESSMENT_KEY
from cds_service.cards.text import HEADLINES
from cds_service.cards.words import MINUS, signed_pct

__all__ = [
    "assessment_of",
    "crp_text",
    "decision_of",
    "figures_text",
    "pain_text",
    "reasons_of",
    "render_cards",
]

WIDTH = 92
LABEL_WIDTH = 13
INDICATOR_COLOURS = {"critical": "red", "warning": "yellow", "info": "cyan"}
# The card detail's bullets before its evidence say why: red flags, what is missing,
# notes (the card detail gives the evidence last, under "**Evidence**").
EVIDENCE_HEADING = "**Evidence**"


def assessment_of(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card's machine-readable result, or {} when the card has none."""
    extension = card.get("extension")
    found = extension.get(ASSESSMENT_KEY) if isinstance(extension, Mapping) else None
    return dict(found) if isinstance(found, Mapping) else {}


def decision_of(response: Mapping[str, Any]) -> str:
    """The response's decision: the first card's recommendation, or ``no-card``."""
    cards = response.get("cards") or []
    if not cards:
        return "no-card"
    return str(assessment_of(cards[0]).get("recommendation", "unknown"))


def _num(value: Any) -> str:
    return f"{round(float(value), 1):g}" if isinstance(value, int | float) else "?"


def _value(point: Any) -> str:
    if not isinstance(point, Mapping):
        return "?"
    return f"{point.get('comparator', '')}{_num(point.get('value'))}"


def crp_text(assessment: Mapping[str, Any]) -> str:
    """``CRP 142 -> 18 mg/L (-87.3%)``, or what is known of it."""
    crp = assessment.get("crp")
    if not isinstance(crp, Mapping) or "latest" not in crp:
        return "CRP: none counted"
    text = f"CRP {_value(crp.get('baseline'))} -> {_value(crp['latest'])} mg/L"
    if crp.get("baseline") == crp.get("latest"):
        text = f"CRP {_value(crp['latest'])} mg/L (one value)"
    change = crp.get("percentChange")
    if isinstance(change, int | float):
        text += f" ({signed_pct(change).replace(MINUS, '-')})"
    lowest, latest = crp.get("lowestEarlier"), crp["latest"]
    if isinstance(lowest, Mapping) and isinstance(latest, Mapping):
        # Worth saying only when the latest value is back above the lowest (a rise).
        if float(latest.get("value", 0)) > float(lowest.get("value", 0)):
            text += f", up from its lowest {_value(lowest)} on day {lowest.get('day', '?')}"
    return text


def pain_text(assessment: Mapping[str, Any]) -> str:
    """``pain 8 -> 3 (lowest 3)``, or ``pain: no score``."""
    pain = assessment.get("pain")
    if not isinstance(pain, Mapping) or "latest" not in pain:
        return "pain: no score"
    return (
        f"pain {_value(pain.get('first'))} -> {_value(pain['latest'])}"
        f" (lowest {_value(pain.get('lowest'))})"
    )


def figures_text(assessment: Mapping[str, Any]) -> str:
    """Days since T0, CRP, pain and ESR on one line."""
    parts = []
    episode = assessment.get("episode")
    t0 = episode.get("t0") if isinstance(episode, Mapping) else None
    days = assessment.get("daysSinceT0")
    if t0 or days is not None:
        parts.append(f"T0 {t0 or '?'}, day {days if days is not None else '?'}")
    parts += [crp_text(assessment), pain_text(assessment)]
    esr = assessment.get("esr")
    if isinstance(esr, Mapping) and "latest" in esr:
        if esr.get("first") == esr["latest"]:
            parts.append(f"ESR {_value(esr['latest'])} mm/h (one value)")
        else:
            parts.append(f"ESR {_value(esr.get('first'))} -> {_value(esr['latest'])} mm/h")
    return " | ".join(parts)


def reasons_of(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """("Why", text) pairs: the bullets of the card detail before its evidence (red
    flags found, what is missing or unmet, notes)."""
    detail = str(card.get("detail", ""))
    found: list[tuple[str, str]] = []
    for raw in detail.splitlines():
        line = raw.strip()
        if line == EVIDENCE_HEADING:
            break
        if line.startswith("- "):
            found.append(("Why", line[2:]))
    return found


def _field(label: str, text: str, width: int = WIDTH) -> list[str]:
    head = f"{label + ':':<{LABEL_WIDTH}}"
    wrapped = textwrap.wrap(
        text, width=width, initial_indent=head, subsequent_indent=" " * LABEL_WIDTH
    )
    return wrapped or [head.rstrip()]


def _bullet(text: str, indent: int, mark: str = "-") -> list[str]:
    prefix = " " * indent + mark + " "
    return textwrap.wrap(
        text, width=WIDTH, initial_indent=prefix, subsequent_indent=" " * len(prefix)
    )


def _card(card: Mapping[str, Any], number: int, total: int, detail: bool) -> list[str]:
    indicator = str(card.get("indicator", "info"))
    colour = INDICATOR_COLOURS.get(indicator, "white")
    title = f"── Card {number} of {total} ── {indicator.upper()} "
    lines = [click.style(title + "─" * max(0, WIDTH - len(title)), fg=colour, bold=True)]
    lines += _field("Summary", str(card.get("summary", "")))
    assessment = assessment_of(card)
    recommendation = str(assessment.get("recommendation", ""))
    if recommendation:
        headline = HEADLINES.get(recommendation, "")
        decision = _field(
            "Decision", f"{recommendation} - {headline}" if headline else recommendation
        )
        # Styled after wrapping: escape codes would count as width.
        styled = click.style(recommendation, fg=colour, bold=True)
        lines += [decision[0].replace(recommendation, styled, 1), *decision[1:]]
        rules = [str(r.get("id")) for r in assessment.get("rulesFired") or [] if "id" in r]
        if rules:
            lines += _field("Rules fired", ", ".join(rules))
        lines += _field("Key figures", figures_text(assessment))
    reasons = reasons_of(card)
    if reasons:
        lines.append("Why:")
        for _, text in reasons:
            lines += _bullet(text, 2)
    suggestions = card.get("suggestions") or []
    if suggestions:
        lines.append("Suggestions:")
        for suggestion in suggestions:
            label = str(suggestion.get("label", ""))
            if suggestion.get("isRecommended"):
                label += click.style("  (recommended)", bold=True)
            lines += _bullet(label, 2, "*")
            for action in suggestion.get("actions") or []:
                what = action.get("description") or action.get("resourceId") or ""
                lines += _bullet(f"{action.get('type', '?')}: {what}", 6)
    overrides = [str(r.get("display") or r.get("code")) for r in card.get("overrideReasons") or []]
    if overrides:
        lines += _field("Overrides", "; ".join(overrides))
    source = card.get("source")
    if isinstance(source, Mapping):
        url = f" <{source['url']}>" if source.get("url") else ""
        lines += _field("Source", f"{source.get('label', '')}{url}")
    if detail and card.get("detail"):
        lines += ["Detail:", textwrap.indent(str(card["detail"]), "  ")]
    return lines


def _ratings(response: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(order reference, PAMA rating code) from systemActions."""
    found = []
    for action in response.get("systemActions") or []:
        resource = action.get("resource") if isinstance(action, Mapping) else None
        if not isinstance(resource, Mapping):
            continue
        for ext in resource.get("extension") or []:
            if isinstance(ext, Mapping) and ext.get("url") == PAMA_RATING:
                codings = (ext.get("valueCodeableConcept") or {}).get("coding") or [{}]
                reference = f"{resource.get('resourceType', '?')}/{resource.get('id', '?')}"
                found.append((reference, str(codings[0].get("code", "?"))))
    return found


SHADOW_NO_CARD = (
    "No card shown: the service runs in SHADOW MODE (shadow_mode, SPINE_CDS_SHADOW_MODE):"
    " it evaluates and records every call but returns no cards, whatever it decided."
    " `spine-cds report` shows its decisions; turn shadow mode off to see the cards."
)


def render_cards(
    response: Mapping[str, Any],
    story: str | None = None,
    *,
    detail: bool = False,
    shadow_mode: bool = False,
) -> str:
    """A CDS Hooks response as readable terminal text (with click styles).

    ``story`` (e.g. an example patient's story) is shown first; ``detail`` adds each
    card's full markdown detail; ``shadow_mode`` (the service said so in /health)
    explains an empty answer by shadow mode rather than by the service not applying.
    """
    lines: list[str] = []
    if story:
        lines += textwrap.wrap(story, width=WIDTH, initial_indent="Story: ", subsequent_indent="  ")
        lines.append("")
    cards: Sequence[Mapping[str, Any]] = response.get("cards") or []
    if not cards and shadow_mode:
        lines += [click.style(line, bold=True) for line in textwrap.wrap(SHADOW_NO_CARD, WIDTH)]
    elif not cards:
        lines.append(
            click.style("No card.", bold=True)
            + " The service does not apply here (not a spine MRI/CT order, or no active"
            " pyogenic spondylodiscitis episode)."
        )
    for number, card in enumerate(cards, 1):
        if number > 1:
            lines.append("")
        lines += _card(card, number, len(cards), detail)
    ratings = _ratings(response)
    if ratings:
        lines.append("")
        for reference, rating in ratings:
            lines += _field("PAMA rating", f"{reference}: {rating}")
    return "\n".join(lines)
