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
its outcome is the last feedback received for it. An override whose reason the card did
not offer (a code of the EHR's own list, or one the service offers on other cards) is
kept as sent and counted apart: it says something about the client, not about the card.
"""

from __future__ import annotations

import importlib.util
import math
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    "describe_source",
    "format_report",
    "offered_reasons",
    "open_stores",
    "percentile",
    "period_bounds",
    "png_unavailable",
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
    overridden_not_offered: int = 0  # ... of the overridden, with a reason the card did not offer

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
            "overriddenNotOffered": self.overridden_not_offered,
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
    system: str = ""
    offered: bool = True  # False: the card overridden did not offer this reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "system": self.system,
            "display": self.display,
            "count": self.count,
            "byDecision": self.decisions,
            "offeredByCard": self.offered,
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
    # overrides with a reason the card did not offer, kept apart from override_reasons
    override_reasons_not_offered: list[OverrideCount] = field(default_factory=list)
    source: str = ""  # where the figures come from (the database, never its password)

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
            "overrideReasonsNotOffered": [o.to_dict() for o in self.override_reasons_not_offered],
            "source": self.source,
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


def offered_reasons(decision: str) -> frozenset[tuple[str, str]]:
    """(system, code) of the override reasons the card of ``decision`` offers."""
    return frozenset(
        (r.system, r.code) for r in load_override_reasons() if decision in r.applies_to
    )


def build_report(
    records: Sequence[AuditRecord],
    feedback: Iterable[Mapping[str, Any]],
    since: date | None = None,
    until: date | None = None,
    source: str = "",
) -> Report:
    """The report over ``records`` (already limited to the period) and every feedback entry
    (``FeedbackStore.all()``: ``{"service_id", "entry", "received_at"}``); ``source`` names
    where they were read from."""
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
    # (system, code, offered) -> decision -> count
    reasons: dict[tuple[str, str, bool], Counter[str]] = defaultdict(Counter)
    known = load_override_reasons()
    displays: dict[tuple[str, str], str] = {(r.system, r.code): r.display for r in known}
    own_system = known[0].system if known else ""
    not_offered: Counter[str] = Counter()  # decision -> overrides with an unoffered reason
    for card, entry in last_outcome.items():
        decision = card_decision[card]
        outcome = str(entry.get("outcome"))
        outcomes[decision][outcome] += 1
        if outcome == "overridden":
            override = entry.get("overrideReason")
            reason = override.get("reason") if isinstance(override, Mapping) else None
            if isinstance(reason, Mapping):
                system, code = str(reason.get("system") or ""), str(reason.get("code"))
                offered = (system, code) in offered_reasons(decision)
                if reason.get("display"):
                    displays.setdefault((system, code), str(reason["display"]))
            else:
                system, code, offered = own_system, NO_REASON, True
            if not offered:
                not_offered[decision] += 1
            reasons[(system, code, offered)][decision] += 1

    acceptance = {
        d: Acceptance(shown[d], outcomes[d]["accepted"], outcomes[d]["overridden"], not_offered[d])
        for d in DECISION_ORDER
        if shown[d]
    }
    counted = sorted(
        (
            OverrideCount(
                code,
                displays.get((system, code), ""),
                sum(c.values()),
                _ordered(c),
                system,
                offered,
            )
            for (system, code, offered), c in reasons.items()
        ),
        key=lambda o: (-o.count, o.code, o.system),
    )
    override_reasons = [o for o in counted if o.offered]
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
        override_reasons_not_offered=[o for o in counted if not o.offered],
        source=source,
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


def describe_source(settings: Settings) -> str:
    """The database the report reads, for its title: never a password."""
    if settings.database_url:
        parts = urlsplit(settings.database_url)
        where = parts.hostname or "localhost"
        if parts.port:
            where += f":{parts.port}"
        return f"PostgreSQL {where}{parts.path}"
    if settings.database_path == ":memory:":
        return "an in-memory database"
    return f"SQLite {Path(settings.database_path).resolve()}"


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
    if report.source:
        lines.append(f"Data: decision audit and feedback in {report.source}")
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
    unoffered = sum(a.overridden_not_offered for a in report.acceptance.values())
    if unoffered:
        lines.append(
            f"  (overridden includes {unoffered} with a reason the card did not offer:"
            " listed apart below)"
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


def _percentile_line(label: str, p: Percentiles) -> str:
    if not p.count:
        return f"  {label:<11} no calls"
    values = "  ".join(f"p{k} {_ms(v)}" for k, v in p.values.items())
    return f"  {label:<11} {values}  max {_ms(p.max)}  (n={p.count})"


# --- chart ----------------------------------------------------------------------------------

# Okabe-Ito colours: told apart with the common colour-vision deficiencies; the outcome
# bars also differ by hatching, so they survive a grey-scale print.
DECISION_COLOURS = {
    "advise-against": "#E69F00",
    "support": "#0072B2",
    "support-urgent": "#D55E00",
    "insufficient-data": "#999999",
    "not-applicable": "#CCCCCC",
    "error": "#CC79A7",
}
OUTCOME_STYLE = {  # colour, hatch
    "accepted": ("#0072B2", ""),
    "overridden": ("#E69F00", "//"),
    "no feedback": ("#DDDDDD", ".."),
}
NOT_OFFERED_COLOUR = "#999999"
LATENCY_LABEL = (
    "the service's own processing time per call (from the request reaching the service to"
    " its answer; network and the EHR not included)"
)


def png_unavailable() -> str | None:
    """Why ``--png`` cannot work here (matplotlib missing, with the README's install
    hint), or None. Checked before anything is printed."""
    if importlib.util.find_spec("matplotlib") is not None:
        return None
    from cds_service.tools.commands import pip_command

    return (
        "--png needs matplotlib (the `report` extra), which is not installed. In the"
        " checkout: bash scripts/setup.sh --report (as the README says); elsewhere: "
        f"{pip_command()} install matplotlib"
    )


def chart_period(report: Report) -> str:
    """The date range the chart covers: the period asked for, and the first and last call."""
    asked = period_text(report.since, report.until)
    if report.first and report.last:
        seen = f"{report.first.date()} to {report.last.date()}"
        return f"{asked}; calls from {seen}" if asked != "all records" else f"calls {seen}"
    return asked


def write_png(report: Report, path: str | Path) -> None:
    """A one-page summary for a governance committee, readable without the text report:
    key figures; decisions shown and in shadow mode; why no card was given; what
    clinicians did with the cards; override reasons; the service's own latency.

    Raises ImportError when matplotlib is not installed (an optional dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.fonttype"] = "none"  # a .svg keeps its text as text
    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    try:
        grid = fig.add_gridspec(
            4,
            2,
            height_ratios=[0.42, 1.0, 1.0, 0.9],
            hspace=0.7,
            wspace=1.0,
            left=0.2,
            right=0.97,
            top=0.9,
            bottom=0.07,
        )
        fig.suptitle(
            f"spine-cds: decisions and clinicians' feedback\n{chart_period(report)}",
            fontsize=13,
            fontweight="bold",
        )
        source = report.source or "the service's audit and feedback stores"
        fig.text(
            0.5,
            0.915,
            f"Data: decision audit and card feedback in {source}",
            ha="center",
            fontsize=7.5,
            color="#333333",
        )
        _key_figures(fig.add_subplot(grid[0, :]), report)
        _decisions_panel(fig.add_subplot(grid[1, 0]), report)
        _no_card_panel(fig.add_subplot(grid[1, 1]), report)
        _acceptance_panel(fig.add_subplot(grid[2, 0]), report)
        _override_panel(fig.add_subplot(grid[2, 1]), report)
        _latency_panel(fig.add_subplot(grid[3, :]), report)
        fig.text(
            0.01,
            0.01,
            "Shown: calls answered with cards to the clinician. Shadow: evaluated and recorded,"
            " no card shown (silent pilot). Each distinct card is counted once; its outcome is"
            " the last feedback received.",
            fontsize=6.5,
            color="#333333",
            wrap=True,
        )
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def _key_figures(ax: Any, report: Report) -> None:
    ax.set_axis_off()
    shadow_total = sum(report.shadow.values())
    cards = sum(a.cards for a in report.acceptance.values())
    accepted = sum(a.accepted for a in report.acceptance.values())
    overridden = sum(a.overridden for a in report.acceptance.values())
    not_offered = sum(a.overridden_not_offered for a in report.acceptance.values())
    lines = [
        f"Calls: {report.total} ({report.total - shadow_total} answered normally,"
        f" {shadow_total} in shadow mode)",
        f"Cards shown: {cards}; accepted {_share(accepted, cards)},"
        f" overridden {_share(overridden, cards)},"
        f" no feedback {_share(cards - accepted - overridden, cards)}"
        + (
            f"\n    ({not_offered} overridden with a reason the card did not offer)"
            if not_offered
            else ""
        ),
        f"Service's own time per call: p50 {_ms(report.latency.values.get(50))} ms,"
        f" p95 {_ms(report.latency.values.get(95))} ms (n={report.latency.count})",
        f"Calls that needed the EHR's FHIR server: {_share(report.needed_fetch, report.read_data)}"
        f" of {report.read_data} reading patient data ({report.fetch_failed} could not get it)",
    ]
    ax.text(
        0.0,
        1.0,
        "\n".join(lines),
        va="top",
        ha="left",
        fontsize=9,
        linespacing=1.6,
        transform=ax.transAxes,
        bbox={"boxstyle": "round", "facecolor": "#F4F4F4", "edgecolor": "#BBBBBB"},
    )


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _decisions_panel(ax: Any, report: Report) -> None:
    ax.set_title("Decisions: shown vs shadow mode", fontsize=10)
    decisions = list(report.decisions.items())[::-1]  # first decision on top
    names = [d for d, _ in decisions]
    shadow = [report.shadow.get(d, 0) for d in names]
    shown = [n - s for (_, n), s in zip(decisions, shadow, strict=True)]
    colours = [DECISION_COLOURS.get(d, "#999999") for d in names]
    bars = ax.barh(names, shown, color=colours)
    ax.bar_label(bars, labels=[str(n) if n else "" for n in shown], label_type="center", fontsize=8)
    if any(shadow):
        ghost = ax.barh(names, shadow, left=shown, color="white", edgecolor=colours, hatch="xx")
        ax.bar_label(ghost, labels=[str(n) if n else "" for n in shadow], padding=3, fontsize=8)
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor="#777777", label="answered as usual"),
            Patch(facecolor="white", edgecolor="#777777", hatch="xx", label="shadow mode"),
        ]
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=2,
            fontsize=7,
            frameon=False,
        )
    ax.set_xlabel("calls", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.margins(x=0.15)


def _no_card_panel(ax: Any, report: Report) -> None:
    ax.set_title("Why no card: not applicable, refused", fontsize=10)
    rows = [
        (f"not applicable:\n{r}", n, DECISION_COLOURS["not-applicable"])
        for r, n in report.not_applicable_reasons.items()
    ]
    rows += [
        (f"refused:\n{r}", n, DECISION_COLOURS["error"]) for r, n in report.error_reasons.items()
    ]
    if not rows:
        _empty(ax, "every call was answered with a decision")
        return
    rows = rows[::-1]
    bars = ax.barh([r for r, _, _ in rows], [n for _, n, _ in rows], color=[c for _, _, c in rows])
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("calls (shown and shadow)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.margins(x=0.2)


def _acceptance_panel(ax: Any, report: Report) -> None:
    ax.set_title("Cards shown: what clinicians did", fontsize=10)
    rows = list(report.acceptance.items())[::-1]
    if not rows:
        held = sum(n for d, n in report.shadow.items() if d in CARD_DECISIONS)
        why = (
            f"all {held} calls that would have shown a card ran in shadow mode"
            if held
            else "no call in this period gave a card"
        )
        _empty(ax, f"No cards shown:\n{why}")
        return
    names = [f"{d} (n={a.cards})" for d, a in rows]
    left = [0.0] * len(rows)
    for label, (colour, hatch) in OUTCOME_STYLE.items():
        counts = [
            {"accepted": a.accepted, "overridden": a.overridden, "no feedback": a.no_feedback}[
                label
            ]
            for _, a in rows
        ]
        shares = [100 * c / a.cards for c, (_, a) in zip(counts, rows, strict=True)]
        bars = ax.barh(
            names, shares, left=left, color=colour, hatch=hatch, edgecolor="white", label=label
        )
        ax.bar_label(
            bars, labels=[f"{c}" if c else "" for c in counts], label_type="center", fontsize=8
        )
        left = [x + s for x, s in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of distinct cards", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.4, -0.18), ncol=3, fontsize=7, frameon=False)


def _override_panel(ax: Any, report: Report) -> None:
    ax.set_title("Override reasons", fontsize=10)
    rows = [
        (o.display or o.code, o.count, DECISION_COLOURS["advise-against"], "")
        for o in report.override_reasons
    ]
    rows += [
        (f"{o.display or o.code}\n(not offered by the card)", o.count, NOT_OFFERED_COLOUR, "xx")
        for o in report.override_reasons_not_offered
    ]
    if not rows:
        _empty(ax, "no card was overridden")
        return
    rows = rows[::-1]
    labels = ["\n".join(textwrap.fill(part, 28) for part in r.split("\n")) for r, _, _, _ in rows]
    bars = ax.barh(
        labels, [n for _, n, _, _ in rows], color=[c for _, _, c, _ in rows], edgecolor="white"
    )
    for bar, (_, _, _, hatch) in zip(bars, rows, strict=True):
        bar.set_hatch(hatch)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("overridden cards", fontsize=8)
    ax.tick_params(labelsize=6.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.margins(x=0.2)


def _latency_panel(ax: Any, report: Report) -> None:
    ax.set_title("Latency: " + LATENCY_LABEL, fontsize=8.5, wrap=True)
    everything = report.latencies_ms + report.fhir_ms
    top = max(everything, default=1.0) * 1.02 or 1.0
    bins = [top * i / 30 for i in range(31)]  # shared, so both histograms compare
    ax.hist(
        report.latencies_ms,
        bins=bins,
        color="#0072B2",
        alpha=0.85,
        label="service's own time per call (ms)",
    )
    if report.fhir_ms:
        ax.hist(
            report.fhir_ms,
            bins=bins,
            color="#E69F00",
            alpha=0.7,
            hatch="//",
            label="of which fetching from the EHR's FHIR server (ms)",
        )
    ax.yaxis.get_major_locator().set_params(integer=True)
    for pct, style in ((50, "-"), (95, "--"), (99, ":")):
        value = report.latency.values.get(pct)
        if value is not None:
            ax.axvline(
                value, color="black", linestyle=style, linewidth=1, label=f"p{pct} {value:.3g} ms"
            )
    ax.set_xlabel("milliseconds", fontsize=8)
    ax.set_ylabel("calls", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(loc="best", framealpha=0.95, fontsize=7)
