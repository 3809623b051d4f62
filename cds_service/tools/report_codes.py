"""The report's list of codes the service was sent and did not recognise, with counts.

Read from the audit (``detail.unrecognised``, written per invocation by
``cds_service.unrecognised``): order codings of ServiceRequests that were not spine
imaging codes the service knows, the reason codings of spine orders that were not codes of
the infection it knows, and Condition/Observation codings of resources none of
whose codings the rules read. A site runs in shadow mode, reads this list, and adds the
codes that mean what the rules look for to its ``valueset_dir`` (docs/integration.md).
An order sent with only ``code.text`` and no coding is listed apart, by its text: no
value set can name it, the EHR has to send a code for it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cds_service.stores.audit import AuditRecord
from cds_service.tools.report_safe import printable

KINDS = ("orders", "orderTexts", "reasons", "Condition", "Observation")
HEADINGS = {
    "orders": "Order codes not recognised (ServiceRequests in question)",
    "orderTexts": "Orders with only a text, no code (ServiceRequests in question)",
    "reasons": "Order reason codes not recognised (spine orders for such a reason get no card)",
    "Condition": "Condition codes not recognised",
    "Observation": "Observation codes not recognised",
}
MAX_ROWS = 50  # per kind, most frequent first


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def unrecognised_codes(records: Iterable[AuditRecord]) -> dict[str, list[dict[str, Any]]]:
    """Per kind, each (system, code) with how many invocations sent it (an order: how
    many orders), the display most often seen with an order code, most frequent first;
    under ``orderTexts`` each ``code.text`` of an order without any coding, with how many
    orders had it."""
    counts: dict[str, Counter[tuple[str, str]]] = {kind: Counter() for kind in KINDS}
    texts: Counter[str] = Counter()
    displays: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for record in records:
        found = record.detail.get("unrecognised") if isinstance(record.detail, Mapping) else None
        if not isinstance(found, Mapping):
            continue
        for order in found.get("orders") or []:
            codings = order.get("codings") if isinstance(order, Mapping) else None
            if not codings and isinstance(order, Mapping) and (text := _str(order.get("text"))):
                texts[text] += 1
            for coding in codings if isinstance(codings, list) else []:
                if not isinstance(coding, Mapping):
                    continue
                key = (_str(coding.get("system")), _str(coding.get("code")))
                counts["orders"][key] += 1
                if display := _str(coding.get("display")):
                    displays[key][display] += 1
        for kind in ("reasons", "Condition", "Observation"):
            pairs = found.get(kind)
            for pair in pairs if isinstance(pairs, list) else []:
                if isinstance(pair, list) and len(pair) == 2:
                    counts[kind][(_str(pair[0]), _str(pair[1]))] += 1
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        if kind == "orderTexts":
            ranked = sorted(texts.items(), key=lambda item: (-item[1], item[0]))[:MAX_ROWS]
            out[kind] = [{"text": text, "count": count} for text, count in ranked]
            continue
        rows = sorted(counts[kind].items(), key=lambda item: (-item[1], item[0]))[:MAX_ROWS]
        out[kind] = []
        for (system, code), count in rows:
            row: dict[str, Any] = {"system": system, "code": code, "count": count}
            if kind == "orders" and displays[(system, code)]:
                row["display"] = displays[(system, code)].most_common(1)[0][0]
            out[kind].append(row)
    return out


def format_unrecognised(codes: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The list as text: one section per kind, ``count  system|code  display``. The codes
    are what clients sent: shown as ``report_safe.printable`` shows such text, so no
    control, bidi or line-separator character reaches the terminal as it is."""
    lines: list[str] = []
    for kind in KINDS:
        rows = codes.get(kind, [])
        lines.append(f"{HEADINGS[kind]}: {len(rows) or 'none'}")
        for row in rows:
            if kind == "orderTexts":
                lines.append(f"  {row['count']:>5}  {printable(row['text'])}")
                continue
            display = f"  {printable(row['display'])}" if row.get("display") else ""
            system = printable(row["system"]) if row["system"] else "(no system)"
            lines.append(f"  {row['count']:>5}  {system}|{printable(row['code'])}{display}")
    lines.append(
        "Add the codes that mean spine imaging, osteomyelitis, CRP or ESR to the value sets "
        "(valueset_dir; docs/integration.md)."
    )
    if codes.get("orderTexts"):
        lines.append(
            "An order with only a text is matched by no value set: ask the EHR team to send "
            "a code with the spine MRI/CT orderables among them."
        )
    return "\n".join(lines)


def gaps_of(detail: Any) -> set[str]:
    """What an insufficient-data call lacked: the missing and unmet codes of its audit
    detail, once each (a call may lack several). The report counts calls by them, so a
    FHIR search failing in part, or a site's CRP code never read, shows as a count."""
    if not isinstance(detail, Mapping):
        return set()
    remarks = [*(detail.get("missing") or ()), *(detail.get("unmet") or ())]
    return {
        printable(r["code"])
        for r in remarks
        if isinstance(r, Mapping) and isinstance(r.get("code"), str)
    }
