"""``spine-cds review-examples``: the synthetic patients through the whole service, for
clinical reviewers who want to check the logic without reading code.

Each example is sent as an EHR would send it (order-select, prefetch computed from the
example's own Bundle with the service's templates) to the service in process, and its
decision compared with what the example is meant to show.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import click

from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import Example, load_examples
from cds_service.hook_declarations import DEFAULT_HOOK
from cds_service.tools.render import assessment_of, decision_of
from cds_service.tools.services import InProcessService, error_text, find_service

HOOK = DEFAULT_HOOK


@dataclass(frozen=True)
class ReviewRow:
    """One example: what it should show, what the service answered."""

    example: Example
    status: int
    response: object  # the JSON body, or the text of one that was not JSON

    @property
    def actual(self) -> str:
        if self.status != 200 or not isinstance(self.response, Mapping):
            return f"error {self.status}"
        return decision_of(self.response)

    @property
    def match(self) -> bool:
        return self.actual == self.example.expected

    @property
    def card(self) -> Mapping[str, Any]:
        if isinstance(self.response, Mapping):
            cards = self.response.get("cards") or []
            if cards and isinstance(cards[0], Mapping):
                return dict(cards[0])
        return {}

    def to_dict(self) -> dict[str, Any]:
        ex = self.example
        assessment = assessment_of(self.card)
        out: dict[str, Any] = {
            "key": ex.key,
            "patientId": ex.patient_id,
            "title": ex.title,
            "expected": ex.expected,
            "actual": self.actual,
            "match": self.match,
            "why": ex.why,
            "orderDay": ex.order_day,
            "orderDate": ex.draft_order["authoredOn"],
            "rulesFired": [r.get("id") for r in assessment.get("rulesFired") or []],
        }
        for key in ("daysSinceT0", "crp", "pain", "esr", "missing", "unmet", "notes"):
            if key in assessment:
                out[key] = assessment[key]
        if self.card:
            out["summary"] = self.card.get("summary")
            out["indicator"] = self.card.get("indicator")
            # the whole card as the clinician sees it: detail, suggestions, override reasons
            out["card"] = dict(self.card)
        if self.status != 200:
            out["error"] = self.response
        return out


def review_examples(order_date: date, config_file: str | None = None) -> list[ReviewRow]:
    """Run every example, ordered on ``order_date``, through the in-process service."""
    rows = []
    with InProcessService(config_file) as service:
        entry = find_service(service.discovery(), HOOK, service.label)
        for example in load_examples(order_date):
            request = build_request(
                HOOK, str(uuid.uuid4()), example.patient_id, example.draft_order
            )
            request["prefetch"] = local_prefetch(
                entry.prefetch, request["context"], bundle_resources(example.bundle)
            )
            answer = service.call(entry.id, request)
            rows.append(ReviewRow(example, answer.status, answer.body))
    return rows


def markdown_as_text(markdown: str, width: int = 96, indent: str = "    ") -> list[str]:
    """A card's detail as a clinician reads it on screen: bold and links unwrapped,
    tables aligned in columns, bullets and paragraphs wrapped."""
    lines: list[str] = []
    table: list[list[str]] = []

    def flush_table() -> None:
        if not table:
            return
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
            lines.append((indent + "  ".join(cells)).rstrip())
        table.clear()

    for raw in markdown.splitlines():
        line = _LINK.sub(r"\1 (\2)", raw).replace("**", "")
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                table.append(cells)
            continue
        flush_table()
        if not line.strip():
            lines.append("")
        elif line.startswith("- "):
            lines += textwrap.wrap(
                line[2:], width, initial_indent=indent + "- ", subsequent_indent=indent + "  "
            )
        else:
            lines += textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent)
    flush_table()
    return lines


_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def card_as_text(card: Mapping[str, Any]) -> list[str]:
    """The whole card as the EHR shows it: summary, indicator, detail, suggestions,
    override reasons."""
    lines = [
        f"  summary    {card.get('summary', '')}",
        f"  indicator  {card.get('indicator', '?')}",
        "  detail",
        *markdown_as_text(str(card.get("detail", ""))),
    ]
    suggestions = card.get("suggestions") or []
    if suggestions:
        lines.append("  suggestions")
        for suggestion in suggestions:
            mark = " (recommended)" if suggestion.get("isRecommended") else ""
            lines.append(f"    * {suggestion.get('label', '')}{mark}")
            for action in suggestion.get("actions") or []:
                lines.append(f"        {action.get('type')}: {action.get('description', '')}")
    reasons = card.get("overrideReasons") or []
    if reasons:
        lines.append("  override reasons")
        lines += [f"    - {r.get('display', r.get('code'))}" for r in reasons]
    return lines


def format_review(rows: list[ReviewRow], order_date: date) -> str:
    """The review as terminal text (click styles), one block per example, each card whole."""
    lines = [
        f"Synthetic patients through the service (order-select, orders placed on "
        f"{order_date.isoformat()}):",
        "",
    ]
    for row in rows:
        ex = row.example
        verdict = (
            click.style("ok", fg="green", bold=True)
            if row.match
            else click.style("MISMATCH", fg="red", bold=True, reverse=True)
        )
        lines.append(click.style(f"{ex.key}  {ex.title}", bold=True) + f"  [{verdict}]")
        lines.append(f"  patient    {ex.patient_id}, order on day {ex.order_day}")
        lines.append(f"  expected   {ex.expected}")
        lines.append(f"  actual     {row.actual}")
        lines.append(f"  meant to   {ex.why}")
        card = row.card
        if card:
            assessment = assessment_of(card)
            rules = [str(r.get("id")) for r in assessment.get("rulesFired") or []]
            lines.append(f"  rules      {', '.join(rules) or '-'}")
            lines += card_as_text(card)
        elif row.status != 200:
            lines.append(f"  error      {error_text(row.response)}")
        else:
            lines.append("  card       (none: the service does not apply)")
        lines.append("")
    mismatches = [r.example.key for r in rows if not r.match]
    if mismatches:
        lines.append(
            click.style(
                f"MISMATCH in {len(mismatches)} of {len(rows)} examples: {', '.join(mismatches)}",
                fg="red",
                bold=True,
            )
        )
    else:
        lines.append(
            click.style(f"All {len(rows)} examples give the expected decision.", fg="green")
        )
    return "\n".join(lines)
