"""``spine-cds report``: what the service decided, what clinicians did with it, how fast.

Reads the decision audit and the feedback store (the same database ``serve`` uses) and
summarises a period: invocations by service and decision (refusals by reason, shadow
calls counted), what happened to the cards shown (accepted, overridden and why, no
feedback), latency percentiles and how often the service had to fetch from the FHIR
server, and the calls refused for authentication (401), which the audit keeps only as
counts per minute and reason (``audit_refusals``). ``build_report`` is pure (records in,
figures out); ``report_stores`` opens what it reads, ``report_text.format_report`` and
``report_chart.write_png`` present it.
matplotlib is imported only by ``write_png``, so the service never loads it.

Feedback is linked to decisions through card uuids; which outcome a card counts with is
``report_feedback.card_outcomes``'s rule. An override whose reason the card did not offer
(a code of the EHR's own list, or one the service offers on other cards) is kept as sent
and counted apart: it says something about the client, not about the card.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cds_service.cards import load_override_reasons
from cds_service.engine import Recommendation
from cds_service.stores.audit import AuditRecord, RefusalCount
from cds_service.tools.report_codes import gaps_of
from cds_service.tools.report_feedback import card_outcomes
from cds_service.tools.report_safe import printable

__all__ = [
    "DECISION_ORDER",
    "Acceptance",
    "OverrideCount",
    "Percentiles",
    "Report",
    "build_report",
    "offered_reasons",
    "percentile",
]

# Every decision the audit records, in the report's order: the engine's
# recommendations, then "error" (a refused call, as AuditCall records it).
DECISION_ORDER = (*(r.value for r in Recommendation), "error")
CARD_DECISIONS = tuple(r.value for r in Recommendation if r is not Recommendation.NOT_APPLICABLE)
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
    # calls refused for authentication (401), not invocations: reason -> count
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    # cards that got both accepted and overridden feedback (counted by the rule above)
    conflicting_feedback: int = 0
    # invocations by the trusted client that made them (secure mode; none in development)
    by_client: dict[str, int] = field(default_factory=dict)
    # insufficient-data calls by what they lacked (report_codes.gaps_of)
    insufficient_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())

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
            "insufficientDataReasons": self.insufficient_reasons,
            "acceptance": {d: a.to_dict() for d, a in self.acceptance.items()},
            "overrideReasons": [o.to_dict() for o in self.override_reasons],
            "overrideReasonsNotOffered": [o.to_dict() for o in self.override_reasons_not_offered],
            "source": self.source,
            "refusedCalls": {"total": self.refused, "byReason": self.refused_by_reason},
            "unlinkedFeedback": self.unlinked_feedback,
            "conflictingFeedback": self.conflicting_feedback,
            "byClient": _escaped_keys(self.by_client),
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


def _escaped_keys(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` with each key made printable but not cut (a JSON dump is read in a
    terminal too)."""
    out: Counter[str] = Counter()
    for key, n in counts.items():
        out[printable(key, limit=len(key) * 6 + 1)] += n
    return dict(out)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _ordered(counts: Mapping[str, int]) -> dict[str, int]:
    """Decisions in their usual order, anything else after them."""
    known = [d for d in DECISION_ORDER if counts.get(d)]
    other = sorted(k for k in counts if k not in DECISION_ORDER and counts[k])
    return {k: counts[k] for k in known + other}


def invocations(records: Sequence[AuditRecord]) -> list[AuditRecord]:
    """The records that are invocations: not calls refused before authentication (401).
    Those are counted apart, per minute and reason (``audit_refusals``); a database
    written by an earlier version still holds a row for each, which must count neither
    as an invocation nor in the latency (they were recorded as 0 ms)."""
    return [rec for rec in records if rec.status != 401]


def _override_coding(reason: Mapping[str, Any]) -> tuple[str, str, str]:
    """(system, code, display) of an override reason a client sent, safe to show."""
    return (
        printable(str(reason.get("system") or "")),
        printable(str(reason.get("code"))),
        printable(str(reason.get("display") or "")),
    )


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
    refusals: Iterable[RefusalCount] = (),
) -> Report:
    """The report over ``records`` (already limited to the period) and every feedback entry
    (``FeedbackStore.all()``: ``{"service_id", "entry", "received_at"}``); ``source`` names
    where they were read from; ``refusals`` are the period's counts of calls refused for
    authentication (``AuditStore.refusals``)."""
    records = invocations(records)
    refused: Counter[str] = Counter()
    for count in refusals:
        refused[printable(count.reason)] += count.count
    by_service: dict[str, Counter[str]] = defaultdict(Counter)
    shadow: Counter[str] = Counter()
    error_reasons: Counter[str] = Counter()
    not_applicable: Counter[str] = Counter()
    lacked: Counter[str] = Counter()
    card_decision: dict[str, str] = {}
    read_data = fetched = fetch_failed = 0
    fetched_keys: Counter[str] = Counter()
    by_client: Counter[str] = Counter()  # secure mode: the trusted client that called
    for rec in records:
        by_service[rec.service_id][rec.decision] += 1
        if rec.client:
            by_client[rec.client] += 1  # the full iss: cut, two long ones would merge
        if rec.shadow:
            shadow[rec.decision] += 1
        if rec.decision == "error":
            error_reasons[rec.reason or "unknown"] += 1
            if rec.status == 412:
                read_data += 1
                fetch_failed += 1
        elif rec.decision == "not-applicable":
            not_applicable[rec.reason or "unknown"] += 1
        elif rec.decision == "insufficient-data":
            lacked.update(gaps_of(rec.detail))
        if rec.data_sources:
            read_data += 1
            keys = [k for k, source in rec.data_sources.items() if source == "fetched"]
            if keys:
                fetched += 1
                fetched_keys.update(keys)
        if not rec.shadow and rec.status == 200:
            for card in rec.card_uuids:
                card_decision[card] = rec.decision

    last_outcome, unlinked, conflicting = card_outcomes(feedback, card_decision)

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
                system, code, display = _override_coding(reason)
                offered = (system, code) in offered_reasons(decision)
                if display:
                    displays.setdefault((system, code), display)
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
        insufficient_reasons=dict(lacked.most_common()),
        acceptance=acceptance,
        override_reasons=override_reasons,
        unlinked_feedback=unlinked,
        by_client=dict(by_client.most_common()),
        conflicting_feedback=conflicting,
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
        refused_by_reason=dict(sorted(refused.items(), key=lambda item: (-item[1], item[0]))),
    )
