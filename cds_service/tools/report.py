"""``spine-cds report``: what the service decided, what clinicians did with it, how fast.

Reads the decision audit and the feedback store (the same database ``serve`` uses) and
summarises a period: invocations by service and decision (refusals by reason, shadow
calls counted), what happened to the cards shown (accepted, overridden and why, no
feedback), latency percentiles and how often the service had to fetch from the FHIR
server. ``build_report`` is pure (records in, figures out); ``format_report`` and
``write_png`` present it. matplotlib is imported only by ``write_png``, so the service
never loads it.

Feedback is linked to decisions through card uuids. A card uuid is stable (the same
patient, order and data give the same card), so a card shown twice is counted once, and
its outcome is the last feedback received for it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cds_service.cards import load_override_reasons
from cds_service.settings import Settings
from cds_service.stores.audit import AuditRecord, SqlAuditStore
from cds_service.stores.feedback import SqlFeedbackStore
from cds_service.stores.sql import StoreError, open_database

__all__ = [
    "DECISION_ORDER",
    "Acceptance",
    "OverrideCount",
    "Percentiles",
    "Report",
    "ReportStores",
    "build_report",
    "format_report",
    "open_stores",
    "percentile",
    "period_bounds",
    "write_png",
]

DECISION_ORDER = (
    "advise-against",
    "support",
    "support-urgent",
    "insufficient-data",
    "not-applicable",
    "error",
)
CARD_DECISIONS = DECISION_ORDER[:4]
PERCENTS = (50, 90, 95, 99)
NO_REASON = "(no reason given)"
EMPTY_MESSAGE = "No invocations recorded"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The ``pct`` percentile by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Percentiles:
    count: int
    values: dict[int, float | None]  # percent -> milliseconds
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        return cls(
            len(values), {p: percentile(values, p) for p in PERCENTS}, max(values, default=None)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count}
        out.update({f"p{p}": _round(v) for p, v in self.values.items()})
        out["max"] = _round(self.max)
        return out


@dataclass(frozen=True)
class Acceptance:
    """Cards shown for one decision and what became of them (by distinct card uuid)."""

    cards: int
    accepted: int
    overridden: int

    @property
    def no_feedback(self) -> int:
        return self.cards - self.accepted - self.overridden

    def rate(self, count: int) -> float | None:
        return round(100 * count / self.cards, 1) if self.cards else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cards": self.cards,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "noFeedback": self.no_feedback,
            "acceptedPct": self.rate(self.accepted),
            "overriddenPct": self.rate(self.overridden),
            "noFeedbackPct": self.rate(self.no_feedback),
        }


@dataclass(frozen=True)
class OverrideCount:
    code: str
    display: str
    count: int
    decisions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "display": self.display,
            "count": self.count,
            "byDecision": self.decisions,
        }


@dataclass(frozen=True)
class Report:
    since: date | None
    until: date | None
    total: int
    first: datetime | None
    last: datetime | None
    by_service: dict[str, dict[str, int]]  # service id -> decision -> invocations
    shadow: dict[str, int]  # decision -> invocations in shadow mode
    error_reasons: dict[str, int]
    not_applicable_reasons: dict[str, int]
    acceptance: dict[str, Acceptance]  # decision -> cards shown (not shadow)
    override_reasons: list[OverrideCount]
    unlinked_feedback: int  # feedback for cards not in the period's audit
    latency: Percentiles
    fhir: Percentiles
    read_data: int  # calls that read patient data (gathered, or failed to: 412)
    fetched: int  # ... of which the service fetched from the FHIR server
    fetch_failed: int  # ... of which data could not be had (412)
    fetched_keys: dict[str, int]
    latencies_ms: list[float] = field(default_factory=list)
    fhir_ms: list[float] = field(default_factory=list)

    @property
    def decisions(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for counts in self.by_service.values():
            totals.update(counts)
        return {d: totals[d] for d in DECISION_ORDER if totals[d]}

    @property
    def needed_fetch(self) -> int:
        return self.fetched + self.fetch_failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
            },
            "invocations": self.total,
            "decisions": self.decisions,
            "byService": self.by_service,
            "shadow": self.shadow,
            "errorReasons": self.error_reasons,
            "notApplicableReasons": self.not_applicable_reasons,
            "acceptance": {d: a.to_dict() for d, a in self.acceptance.items()},
            "overrideReasons": [o.to_dict() for o in self.override_reasons],
            "unlinkedFeedback": self.unlinked_feedback,
            "latencyMs": self.latency.to_dict(),
            "fhirFetchMs": self.fhir.to_dict(),
            "fhirFetch": {
                "callsReadingData": self.read_data,
                "neededFetch": self.needed_fetch,
                "fetched": self.fetched,
                "fetchFailed": self.fetch_failed,
                "neededFetchPct": _pct(self.needed_fetch, self.read_data),
                "fetchedByKey": self.fetched_keys,
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _ordered(counts: Mapping[str, int]) -> dict[str, int]:
    """Decisions in their usual order, anything else after them."""
    known = [d for d in DECISION_ORDER if counts.get(d)]
    other = sorted(k for k in counts if k not in DECISION_ORDER and counts[k])
    return {k: counts[k] for k in known + other}


def build_report(
    records: Sequence[AuditRecord],
    feedback: Iterable[Mapping[str, Any]],
    since: date | None = None,
    until: date | None = None,
) -> Report:
    """The report over ``records`` (already limited to the period) and every feedback entry
    (``FeedbackStore.all()``: ``{"service_id", "entry", "received_at"}``)."""
    by_service: dict[str, Counter[str]] = defaultdict(Counter)
    shadow: Counter[str] = Counter()
    error_reasons: Counter[str] = Counter()
    not_applicable: Counter[str] = Counter()
    card_decision: dict[str, str] = {}
    read_data = fetched = fetch_failed = 0
    fetched_keys: Counter[str] = Counter()
    for rec in records:
        by_service[rec.service_id][rec.decision] += 1
        if rec.shadow:
            shadow[rec.decision] += 1
        if rec.decision == "error":
            error_reasons[rec.reason or "unknown"] += 1
            if rec.status == 412:
                read_data += 1
                fetch_failed += 1
        elif rec.decision == "not-applicable":
            not_applicable[rec.reason or "unknown"] += 1
        if rec.data_sources:
            read_data += 1
            keys = [k for k, source in rec.data_sources.items() if source == "fetched"]
            if keys:
                fetched += 1
                fetched_keys.update(keys)
        if not rec.shadow and rec.status == 200:
            for card in rec.card_uuids:
                card_decision[card] = rec.decision

    last_outcome: dict[str, Mapping[str, Any]] = {}  # card uuid -> last feedback entry
    unlinked = 0
    for item in feedback:
        entry = item.get("entry")
        if not isinstance(entry, Mapping):
            continue
        card = str(entry.get("card", ""))
        if card in card_decision:
            last_outcome[card] = entry
        else:
            unlinked += 1

    shown: Counter[str] = Counter(card_decision.values())
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)  # code -> decision -> count
    displays: dict[str, str] = {r.code: r.display for r in load_override_reasons()}
    for card, entry in last_outcome.items():
        decision = card_decision[card]
        outcome = str(entry.get("outcome"))
        outcomes[decision][outcome] += 1
        if outcome == "overridden":
            override = entry.get("overrideReason")
            reason = override.get("reason") if isinstance(override, Mapping) else None
            code = str(reason.get("code")) if isinstance(reason, Mapping) else NO_REASON
            if isinstance(reason, Mapping) and reason.get("display"):
                displays.setdefault(code, str(reason["display"]))
            reasons[code][decision] += 1

    acceptance = {
        d: Acceptance(shown[d], outcomes[d]["accepted"], outcomes[d]["overridden"])
        for d in DECISION_ORDER
        if shown[d]
    }
    override_reasons = sorted(
        (
            OverrideCount(code, displays.get(code, ""), sum(c.values()), _ordered(c))
            for code, c in reasons.items()
        ),
        key=lambda o: (-o.count, o.code),
    )
    latencies = [rec.latency_ms for rec in records]
    fhir_ms = [rec.fhir_ms for rec in records if rec.fhir_ms is not None]
    return Report(
        since=since,
        until=until,
        total=len(records),
        first=min((r.received_at for r in records), default=None),
        last=max((r.received_at for r in records), default=None),
        by_service={s: _ordered(c) for s, c in sorted(by_service.items())},
        shadow=_ordered(shadow),
        error_reasons=dict(error_reasons.most_common()),
        not_applicable_reasons=dict(not_applicable.most_common()),
        acceptance=acceptance,
        override_reasons=override_reasons,
        unlinked_feedback=unlinked,
        latency=Percentiles.of(latencies),
        fhir=Percentiles.of(fhir_ms),
        read_data=read_data,
        fetched=fetched,
        fetch_failed=fetch_failed,
        fetched_keys=dict(fetched_keys.most_common()),
        latencies_ms=latencies,
        fhir_ms=fhir_ms,
    )


# --- reading the stores ----------------------------------------------------------------


@dataclass(frozen=True)
class ReportStores:
    audit: SqlAuditStore
    feedback: SqlFeedbackStore


@contextmanager
def open_stores(settings: Settings) -> Iterator[ReportStores]:
    """The audit and feedback stores of the database ``serve`` uses with these settings.

    Not ``build_stores``: that one purges on opening (``audit-purge`` could not count what
    it deleted), connects to Redis and may create the patient-hash key, none of which a
    report or a purge needs. A missing SQLite file is an error, not a new empty database
    (a mistyped path must not look like "nothing recorded"). Raises StoreError.
    """
    if not settings.database_url and settings.database_path != ":memory:":
        if not Path(settings.database_path).is_file():
            raise StoreError(
                f"no database at {settings.database_path} (database_path): nothing has been "
                "recorded there; give the settings file the service runs with (--config)"
            )
    db = open_database(settings.database_url, settings.database_path)
    try:
        yield ReportStores(SqlAuditStore(db, settings.audit_retention_days), SqlFeedbackStore(db))
    finally:
        db.close()


def period_bounds(
    since: date | None, until: date | None
) -> tuple[datetime | None, datetime | None]:
    """``--since``/``--until`` as UTC instants: from the start of ``since`` to the end of
    ``until`` (both days included)."""
    start = datetime.combine(since, time(0), UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time(0), UTC) if until else None
    return start, end


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
    if report.total == 0:
        lines.append(f"{EMPTY_MESSAGE} in this period.")
        return "\n".join(lines)
    first = report.first.isoformat(timespec="seconds") if report.first else "?"
    last = report.last.isoformat(timespec="seconds") if report.last else "?"
    shadow_total = sum(report.shadow.values())
    lines.append(
        f"Invocations: {report.total} (first {first}, last {last}); "
        f"{shadow_total} in shadow mode (no card shown)"
    )

    lines += ["", "Decisions by service (reasons indented, counted in the total column)"]
    services = list(report.by_service)
    detail = {"error": report.error_reasons, "not-applicable": report.not_applicable_reasons}
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


def _percentile_line(label: str, p: Percentiles) -> str:
    if not p.count:
        return f"  {label:<11} no calls"
    values = "  ".join(f"p{k} {_ms(v)}" for k, v in p.values.items())
    return f"  {label:<11} {values}  max {_ms(p.max)}  (n={p.count})"


# --- chart ----------------------------------------------------------------------------------

DECISION_COLOURS = {
    "advise-against": "#d9a400",
    "support": "#3b7dd8",
    "support-urgent": "#c62828",
    "insufficient-data": "#8e8e8e",
    "not-applicable": "#b0bec5",
    "error": "#6d4c41",
}
OUTCOME_COLOURS = {"accepted": "#2e7d32", "overridden": "#ef6c00", "no feedback": "#cfd8dc"}


def write_png(report: Report, path: str | Path) -> None:
    """Decisions, card outcomes and latency as one PNG (three panels).

    Raises ImportError when matplotlib is not installed (an optional dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_dec, ax_acc, ax_lat) = plt.subplots(3, 1, figsize=(10, 12))
    try:
        title = f"spine-cds report: {period_text(report.since, report.until)}"
        fig.suptitle(f"{title}\n{report.total} invocations", fontsize=13, fontweight="bold")
        _decisions_panel(ax_dec, report)
        _acceptance_panel(ax_acc, report)
        _latency_panel(ax_lat, report)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def _decisions_panel(ax: Any, report: Report) -> None:
    decisions = list(report.decisions.items())[::-1]  # first decision on top
    names = [d for d, _ in decisions]
    counts = [n for _, n in decisions]
    bars = ax.barh(names, counts, color=[DECISION_COLOURS.get(d, "#999999") for d in names])
    ax.bar_label(bars, padding=3)
    ax.set_title("Decisions (all services)")
    ax.set_xlabel("invocations")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.margins(x=0.12)


def _acceptance_panel(ax: Any, report: Report) -> None:
    ax.set_title("What clinicians did with the cards shown (share of distinct cards)")
    rows = list(report.acceptance.items())[::-1]
    if not rows:
        ax.text(0.5, 0.5, "no cards shown", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = [f"{d} (n={a.cards})" for d, a in rows]
    left = [0.0] * len(rows)
    for label in OUTCOME_COLOURS:
        counts = [
            {"accepted": a.accepted, "overridden": a.overridden, "no feedback": a.no_feedback}[
                label
            ]
            for _, a in rows
        ]
        shares = [100 * c / a.cards for c, (_, a) in zip(counts, rows, strict=True)]
        bars = ax.barh(names, shares, left=left, color=OUTCOME_COLOURS[label], label=label)
        ax.bar_label(
            bars, labels=[f"{c}" if c else "" for c in counts], label_type="center", fontsize=9
        )
        left = [x + s for x, s in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of cards")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.42), ncol=3, frameon=False)


def _latency_panel(ax: Any, report: Report) -> None:
    ax.set_title("Latency")
    everything = report.latencies_ms + report.fhir_ms
    top = max(everything, default=1.0) * 1.02 or 1.0
    bins = [top * i / 30 for i in range(31)]  # shared, so both histograms compare
    ax.hist(report.latencies_ms, bins=bins, color="#5c6bc0", alpha=0.8, label="service (ms)")
    if report.fhir_ms:
        ax.hist(report.fhir_ms, bins=bins, color="#26a69a", alpha=0.7, label="FHIR fetch (ms)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    for pct, style in ((50, "-"), (95, "--"), (99, ":")):
        value = report.latency.values.get(pct)
        if value is not None:
            ax.axvline(
                value, color="black", linestyle=style, linewidth=1, label=f"p{pct} {value:.3g} ms"
            )
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("calls")
    ax.legend(loc="best", framealpha=0.95)
