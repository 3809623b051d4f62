"""``spine-cds report`` as text: the figures of a Report, section by section."""

from __future__ import annotations

from datetime import date

from cds_service.tools.report import (
    EMPTY_MESSAGE,
    Percentiles,
    Report,
    _pct,
)
from cds_service.tools.report_safe import printable

# --- text ---------------------------------------------------------------------------------


def period_text(since: date | None, until: date | None) -> str:
    if since and until:
        return f"{since} to {until} (UTC days, inclusive)"
    if since:
        return f"from {since} (UTC)"
    if until:
        return f"up to {until} (UTC, inclusive)"
    return "all records"


def _share(count: int, whole: int) -> str:
    pct = _pct(count, whole)
    return f"{count} ({pct:.1f}%)" if pct is not None else str(count)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_report(report: Report) -> str:
    """The report as plain terminal text."""
    lines = [f"spine-cds report: {period_text(report.since, report.until)}"]
    if report.source:
        lines.append(f"Data: decision audit and feedback in {report.source}")
    if report.total == 0:
        lines.append(f"{EMPTY_MESSAGE} in this period.")
        if report.refused:  # a secure service that let no one in still says whom it refused
            lines += ["", *_refusals_lines(report)]
        return "\n".join(lines)
    first = report.first.isoformat(timespec="seconds") if report.first else "?"
    last = report.last.isoformat(timespec="seconds") if report.last else "?"
    shadow_total = sum(report.shadow.values())
    lines.append(
        f"Invocations: {report.total} (first {first}, last {last}); "
        f"{shadow_total} in shadow mode (no card shown)"
    )

    if report.by_client:
        clients = (f"{_quoted(iss)} {n}" for iss, n in report.by_client.items())
        lines.append("By client: " + ", ".join(clients))

    lines += ["", "Decisions by service (reasons indented, counted in the total column)"]
    services = list(report.by_service)
    detail = {
        "insufficient-data": report.insufficient_reasons,
        "error": report.error_reasons,
        "not-applicable": report.not_applicable_reasons,
    }
    reasons = [r for counts in detail.values() for r in counts]
    width = max([18, *(len(r) + 2 for r in reasons)])
    widths = [max(len(s), 6) for s in services]
    header = f"  {'decision':<{width}}" + "".join(
        f"  {s:>{w}}" for s, w in zip(services, widths, strict=True)
    )
    lines.append(header + f"  {'total':>6}  {'shadow':>6}")
    for decision, total in report.decisions.items():
        cells = "".join(
            f"  {report.by_service[s].get(decision, 0):>{w}}"
            for s, w in zip(services, widths, strict=True)
        )
        lines.append(
            f"  {decision:<{width}}{cells}  {total:>6}  {report.shadow.get(decision, 0):>6}"
        )
        for reason, count in detail.get(decision, {}).items():
            blank = " " * sum(w + 2 for w in widths)
            lines.append(f"    {reason:<{width - 2}}{blank}  {count:>6}")

    if report.insufficient_reasons:
        lines.append("  (insufficient-data: what the calls lacked; a call may lack several)")

    lines += ["", *_refusals_lines(report)]

    lines += ["", "Cards shown and clinicians' feedback (each distinct card once; not shadow)"]
    if not report.acceptance:
        lines.append("  no cards shown")
    else:
        lines.append(
            f"  {'decision':<18}  {'cards':>5}  {'accepted':>12}  {'overridden':>12}"
            f"  {'no feedback':>12}"
        )
    for decision, acc in report.acceptance.items():
        lines.append(
            f"  {decision:<18}  {acc.cards:>5}  {_share(acc.accepted, acc.cards):>12}"
            f"  {_share(acc.overridden, acc.cards):>12}  {_share(acc.no_feedback, acc.cards):>12}"
        )
    unoffered = sum(a.overridden_not_offered for a in report.acceptance.values())
    if unoffered:
        lines.append(
            f"  (overridden includes {unoffered} with a reason the card did not offer:"
            " listed apart below)"
        )
    if report.conflicting_feedback:
        lines.append(
            f"  ({report.conflicting_feedback} card(s) got both accepted and overridden"
            " feedback: counted by the last, except that closing a card without a reason"
            " after taking its suggestion leaves it accepted)"
        )
    if report.unlinked_feedback:
        lines.append(
            f"  ({report.unlinked_feedback} feedback entry(ies) for cards not in this period's"
            " audit, not counted)"
        )

    lines += ["", "Override reasons"]
    if not report.override_reasons:
        lines.append("  none")
    for override in report.override_reasons:
        display = f" - {override.display}" if override.display else ""
        decisions = ", ".join(f"{d} {n}" for d, n in override.decisions.items())
        lines.append(f"  {override.count:>4}  {override.code}{display} ({decisions})")
    if report.override_reasons_not_offered:
        lines += [
            "",
            "Override reasons the card did not offer (kept as the client sent them, counted"
            " apart: the client's list differs from the card's)",
        ]
        for override in report.override_reasons_not_offered:
            display = f" - {override.display}" if override.display else ""
            decisions = ", ".join(f"{d} {n}" for d, n in override.decisions.items())
            lines.append(
                f"  {override.count:>4}  {override.system}|{override.code}{display} ({decisions})"
            )

    lines += ["", "Latency (ms)", _percentile_line("service", report.latency)]
    lines.append(_percentile_line("FHIR fetch", report.fhir))
    lines.append(
        f"  needed a FHIR fetch: {_share(report.needed_fetch, report.read_data)} of "
        f"{report.read_data} calls that read patient data "
        f"({report.fetched} fetched, {report.fetch_failed} could not get the data: 412)"
    )
    if report.fetched_keys:
        keys = ", ".join(f"{k} {n}" for k, n in report.fetched_keys.items())
        lines.append(f"  fetched by prefetch key: {keys}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A client's text in double quotes, made printable (escaped, cut), a quote in it
    escaped: where one issuer ends and its count begins is never in doubt."""
    return '"' + printable(text.replace('"', '\\"')) + '"'


def _refusals_lines(report: Report) -> list[str]:
    """Calls refused for authentication: counted apart, never invocations."""
    lines = [
        f"Refused calls (401) by reason: {report.refused} (no valid client JWT; not"
        " invocations, kept as counts per minute)"
    ]
    if not report.refused:
        lines.append("  none")
    for reason, count in report.refused_by_reason.items():
        lines.append(f"  {count:>6}  {reason}")
    return lines


def _percentile_line(label: str, p: Percentiles) -> str:
    if not p.count:
        return f"  {label:<11} no calls"
    values = "  ".join(f"p{k} {_ms(v)}" for k, v in p.values.items())
    return f"  {label:<11} {values}  max {_ms(p.max)}  (n={p.count})"
