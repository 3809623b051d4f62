"""The data left out, in clinical words (ids stay in the audit): a value the chart shows
is named with its value and day; the rest are counted by reason (clinical-rules.md,
"Pending results", 2026-12-06: "Every left-out value that is shown in the patient's chart
is named on the card with its value and day, not only counted")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cds_service.cards.safe_text import quote
from cds_service.cards.words import as_sent, upper_first
from cds_service.engine.response import PENDING_STATUSES
from fhir_mappers.model import ORDER_CODES, ORDER_DATED_FROM_AUTHORED_ON, DataIssue
from fhir_mappers.observations_careful import USED_STATUSES


def left_out(issues: Sequence[DataIssue], t0: date | None = None) -> list[str]:
    """Data left out in clinical words (ids stay in the audit): a value the chart shows
    is named with its value and day ("Not used: CRP 95 mg/L on day 30, not final (status
    preliminary)."; a text result quoted); an antibiotic order that does not count is
    said as one ("Cefazolin order marked draft: not counted as treatment."); the rest
    counted by reason ("2 CRP results without a usable value were not used.")."""
    orders: dict[str, int] = {}
    groups: dict[tuple[str, str], int] = {}
    named: list[str] = []
    as_reported: dict[tuple[str, str], list[DataIssue]] = {}
    for issue in issues:
        shown = _named_value(issue, t0)
        if shown is not None:
            named.append(shown)
            continue
        key = _reported_key(issue)
        if key is not None:
            as_reported.setdefault(key, []).append(issue)
            continue
        if issue.plain and is_order(issue):
            line = _order_line(issue)
            orders[line] = orders.get(line, 0) + 1
            continue
        if issue.kept:
            continue  # read in part and used (an element taken as absent): not left out
        if issue.plain:
            noun = COUNTED_NOUNS.get(issue.kind or "") or _noun_of(issue.reference)
            why = quote(REWORDED.get(issue.plain, issue.plain))
        else:
            noun, why = "record", "that could not be read"
        groups[(noun, why)] = groups.get((noun, why), 0) + 1
    lines = named + [_reported_line(k, v, t0) for k, v in sorted(as_reported.items())]
    for line, n in sorted(orders.items()):
        lines.append(f"{line} ({n} orders)." if n > 1 else f"{line}.")
    for (noun, why), n in sorted(groups.items()):
        verb = "was" if n == 1 else "were"
        lines.append(
            f"{n} {noun if n == 1 else PLURALS.get(noun, noun + 's')} {why} {verb} not used."
        )
    return lines


def _reported_key(issue: DataIssue) -> tuple[str, str] | None:
    """(noun, why) of a dated number left out for its unit, or None: "CRP", "reported
    without a unit"; for a CRP under one code in the other code's unit, or whose unit text
    and code name different units, that they disagree (clinical-rules.md: a unit that
    cannot be converted is skipped and reported)."""
    r, noun = issue.reported, KIND_NOUNS.get(issue.kind or "")
    if r is None or noun is None or issue.when is None:
        return None
    if r.code is not None:
        return noun, f"unit text and code disagree ({quote(r.unit or '')} vs {quote(r.code)})"
    if r.unit_of is not None:
        code = "the molar CRP code" if r.unit_of == "crp" else "a mass CRP code"
        return noun, f"code and unit disagree ({code}, reported in {quote(r.unit or '')})"
    if r.unit is None and issue.status in USED_STATUSES:
        return noun, "reported without a unit"
    return noun, quote(issue.plain or issue.reason)


# Numbers left out for their unit named on the card: the latest few, the rest counted.
REPORTED_SHOWN = 3


def _reported_line(key: tuple[str, str], issues: list[DataIssue], t0: date | None) -> str:
    """ "Not used, reported without a unit: CRP 15 on day 28."; "Not used, code and unit
    disagree (the molar CRP code, reported in mg/L): CRP 120 mg/L on day 0, 15 mg/L on
    day 28." (each as reported, never converted)."""
    noun, why = key
    ordered = sorted(
        ((i.when, i.reference, i.reported) for i in issues if i.when and i.reported),
        key=lambda item: (item[0].instant, item[1]),
    )
    values = []
    for when, _, r in ordered[-REPORTED_SHOWN:]:
        value = f"{r.comparator or ''}{as_sent(r.value)}"
        unit = f" {quote(r.unit)}" if r.unit else ""
        day = f"day {(when.day - t0).days}" if t0 is not None else when.day.isoformat()
        values.append(f"{value}{unit} on {day}")
    earlier = len(ordered) - len(values)
    more = f" and {earlier} earlier" if earlier else ""
    return f"Not used, {why}: {noun} {', '.join(values)}{more}."


def is_order(issue: DataIssue) -> bool:
    """An antibiotic order (or a medication order whose drug could not be read), by the
    code the mapper gave it; its words name the order ("cefazolin order marked draft")."""
    return issue.code in ORDER_CODES


def _order_line(issue: DataIssue) -> str:
    """ "Cefazolin order marked draft: not counted as treatment"; an order whose start
    came from its order date was counted and says so alone."""
    said = upper_first(quote(issue.plain or ""))
    if issue.code == ORDER_DATED_FROM_AUTHORED_ON:
        return said
    return f"{said}: not counted as treatment"


def _named_value(issue: DataIssue, t0: date | None) -> str | None:
    """ "Not used: CRP 95 mg/L on day 30, not final (status preliminary)."; None when the
    issue carries no value or text the chart would show."""
    noun = KIND_NOUNS.get(issue.kind or "")
    if noun is None or issue.when is None:
        return None
    day = issue.when.day
    when = f"day {(day - t0).days}" if t0 is not None else day.isoformat()
    if issue.value is None and issue.text is None:
        if issue.status in PENDING_STATUSES and issue.reported is None:
            # drawn, its result not in yet: the chart shows it by its day
            return f"Not used: {noun} drawn on {when}, result not in yet (status {issue.status})."
        return None
    if issue.value is not None:
        value = f"{issue.comparator or ''}{as_sent(issue.value)}"
        # a pain score's UCUM annotation ("{score}") is no unit a clinician reads
        unit = issue.unit if issue.unit and not issue.unit.startswith("{") else None
        what = f"{noun} {value} {quote(unit)}" if unit else f"{noun} {value}"
    else:
        what = f'{noun} "{quote(issue.text)}"'
    why = quote(issue.plain or issue.reason)  # the mapper's words, with record values in them
    return f"Not used: {what} on {when}, {why}."


# What a left-out value is called when named ("CRP 95 mg/L") and when counted ("2 CRP
# results"); a resource of another kind by its type.
KIND_NOUNS = {"crp": "CRP", "esr": "ESR", "pain": "pain score"}
COUNTED_NOUNS = {"crp": "CRP result", "esr": "ESR result", "pain": "pain score"}
PLURALS = {"diagnosis": "diagnoses"}
# The mapper's words that do not follow a noun ("1 result not a test the rules read").
REWORDED = {"not a test the rules read": "of a test the rules do not read"}


def _noun_of(reference: str) -> str:
    """What a left-out resource is called on the card, from its type."""
    kind = reference.split("/", 1)[0]
    nouns = {"Condition": "diagnosis", "Observation": "result", "MedicationRequest": "order"}
    return nouns.get(kind, "record")
