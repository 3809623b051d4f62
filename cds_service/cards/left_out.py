"""The data left out, in clinical words (ids stay in the audit): a value the chart shows
is named with its value and day; the rest are counted by reason (clinical-rules.md,
"Pending results", 2026-12-06: "Every left-out value that is shown in the patient's chart
is named on the card with its value and day, not only counted")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.cards.safe_text import quote
from cds_service.cards.words import fmt
from fhir_mappers.model import DataIssue


def left_out(issues: Sequence[DataIssue], t0: date | None = None) -> list[str]:
    """Data left out in clinical words (ids stay in the audit): a value the chart shows
    is named with its value and day ("a preliminary CRP of 95 mg/L on day 30, not yet
    final"; a text result quoted); the rest counted by reason."""
    groups: dict[str, int] = {}
    named: list[str] = []
    for issue in issues:
        shown = _named_value(issue, t0)
        if shown is not None:
            named.append(shown)
            continue
        if issue.plain:
            noun = KIND_NOUNS.get(issue.kind or "") or _noun_of(issue.reference)
            key = f"{noun} {quote(issue.plain)}"
        elif "read as" in issue.reason:
            continue  # read, with one element taken as absent: not left out
        else:
            key = "record that could not be read"
        groups[key] = groups.get(key, 0) + 1
    lines = named
    for key, n in sorted(groups.items()):
        verb = "was" if n == 1 else "were"
        lines.append(f"{n} {key} {verb} not used.")
    return lines


def _named_value(issue: DataIssue, t0: date | None) -> str | None:
    """ "Not used: CRP 95 mg/L on day 30, not final (status preliminary)."; None when the
    issue carries no value or text the chart would show."""
    noun = KIND_NOUNS.get(issue.kind or "")
    if noun is None or issue.when is None or (issue.value is None and issue.text is None):
        return None
    if issue.value is not None:
        value = f"{issue.comparator or ''}{fmt(issue.value)}"
        what = f"{noun} {value} {quote(issue.unit)}" if issue.unit else f"{noun} {value}"
    else:
        what = f'{noun} "{quote(issue.text)}"'
    day = issue.when.day
    when = f"day {(day - t0).days}" if t0 is not None else day.isoformat()
    why = quote(issue.plain or issue.reason)  # the mapper's words, with record values in them
    return f"Not used: {what} on {when}, {why}."


KIND_NOUNS = {"crp": "CRP", "esr": "ESR", "pain": "pain score"}


def _noun_of(reference: str) -> str:
    """What a left-out resource is called on the card, from its type."""
    kind = reference.split("/", 1)[0]
    return {"Condition": "diagnosis", "Observation": "result"}.get(kind, "record")
