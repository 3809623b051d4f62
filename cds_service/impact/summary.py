"""The replay's figures: one row per replayed order, and the summary a committee reads.

The summary has the shape of ``spine-cds report`` (decisions in the report's order, a
period, counts per decision), with what only a replay can say: decisions per month,
cards per week, advise-against orders that were followed by a performed study, data
gaps by kind, order codes the value sets do not know, and the lines skipped. Partial
summaries (one per partition) add up with ``merge``, so the order the partitions finish
in changes nothing. Pure: rows in, figures out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cds_service.tools.report import CARD_DECISIONS, DECISION_ORDER

__all__ = ["ROW_COLUMNS", "ReplayRow", "Summary"]

ADVISE_AGAINST = "advise-against"


@dataclass
class ReplayRow:
    """One replayed order. ``patient`` is the plain id until the writer keys it."""

    patient: str
    order_id: str
    order_code: str
    authored_on: str
    order_day: date
    decision: str = ""
    not_applicable_reason: str | None = None
    rules_fired: tuple[str, ...] = ()
    days_since_t0: int | None = None
    crp_baseline: float | None = None
    crp_latest: float | None = None
    crp_change_pct: float | None = None
    pain_first: float | None = None
    pain_latest: float | None = None
    esr_latest: float | None = None
    gaps: dict[str, int] = field(default_factory=dict)
    performed_after: bool = False
    error: str | None = None

    def record(self, patient_key: str | None) -> dict[str, Any]:
        """The row as written: the patient as the audit names it, no order id."""
        return {
            "patient": patient_key,
            "order_code": self.order_code,
            "authored_on": self.authored_on,
            "order_date": self.order_day.isoformat(),
            "decision": self.decision,
            "not_applicable_reason": self.not_applicable_reason,
            "rules_fired": ";".join(self.rules_fired),
            "days_since_t0": self.days_since_t0,
            "crp_baseline_mg_l": self.crp_baseline,
            "crp_latest_mg_l": self.crp_latest,
            "crp_change_pct": self.crp_change_pct,
            "pain_first": self.pain_first,
            "pain_latest": self.pain_latest,
            "esr_latest_mm_h": self.esr_latest,
            "data_gaps": ";".join(sorted(self.gaps)),
            "study_performed_after": self.performed_after,
            "error": self.error,
        }


ROW_COLUMNS = tuple(ReplayRow("", "", "", "", date(2000, 1, 1)).record(None))


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Summary:
    """Counts that add up across partitions."""

    orders: int = 0
    patients: int = 0
    patients_with_episode: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    by_month: dict[str, Counter[str]] = field(default_factory=dict)
    cards_by_week: dict[str, Counter[str]] = field(default_factory=dict)
    advise_against_followed: int = 0
    performed_after: Counter[str] = field(default_factory=Counter)
    gaps: Counter[str] = field(default_factory=Counter)
    unrecognised: Counter[str] = field(default_factory=Counter)
    # from the first pass: lines read per type, lines skipped (problems), other types
    lines: Counter[str] = field(default_factory=Counter)
    skipped_lines: int = 0
    skipped_files: int = 0
    other_types: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    first_day: date | None = None
    last_day: date | None = None

    def add(self, row: ReplayRow) -> None:
        self.orders += 1
        self.decisions[row.decision] += 1
        self.by_month.setdefault(row.order_day.strftime("%Y-%m"), Counter())[row.decision] += 1
        if row.decision in CARD_DECISIONS:
            self.cards_by_week.setdefault(_week(row.order_day), Counter())[row.decision] += 1
        if row.performed_after:
            self.performed_after[row.decision] += 1
            if row.decision == ADVISE_AGAINST:
                self.advise_against_followed += 1
        for kind in row.gaps:
            self.gaps[kind] += 1
        if self.first_day is None or row.order_day < self.first_day:
            self.first_day = row.order_day
        if self.last_day is None or row.order_day > self.last_day:
            self.last_day = row.order_day

    def count_gap(self, kind: str) -> None:
        self.gaps[kind] += 1

    def count_unrecognised(self, code: str) -> None:
        self.unrecognised[code] += 1

    def merge(self, other: Summary) -> None:
        self.orders += other.orders
        self.patients += other.patients
        self.patients_with_episode += other.patients_with_episode
        self.decisions.update(other.decisions)
        for month, counts in other.by_month.items():
            self.by_month.setdefault(month, Counter()).update(counts)
        for week, counts in other.cards_by_week.items():
            self.cards_by_week.setdefault(week, Counter()).update(counts)
        self.advise_against_followed += other.advise_against_followed
        self.performed_after.update(other.performed_after)
        self.gaps.update(other.gaps)
        self.unrecognised.update(other.unrecognised)
        self.lines.update(other.lines)
        self.skipped_lines += other.skipped_lines
        self.skipped_files += other.skipped_files
        self.other_types.update(other.other_types)
        self.problems += other.problems
        days = [d for d in (self.first_day, other.first_day) if d]
        self.first_day = min(days) if days else None
        days = [d for d in (self.last_day, other.last_day) if d]
        self.last_day = max(days) if days else None

    def cards_per_week(self) -> list[int]:
        """Cards in each ISO week from the first order's to the last's, weeks without a
        card counted as 0 (a mean over the weeks with cards alone would overstate it)."""
        if self.first_day is None or self.last_day is None:
            return []
        out = []
        monday = self.first_day - timedelta(days=self.first_day.weekday())
        while monday <= self.last_day:
            out.append(sum(self.cards_by_week.get(_week(monday), Counter()).values()))
            monday += timedelta(days=7)
        return out

    @property
    def cards(self) -> int:
        return sum(self.decisions[d] for d in CARD_DECISIONS)

    def decision_order(self) -> list[str]:
        """The report's decisions, then any other (none expected), each once."""
        known = [d for d in DECISION_ORDER if self.decisions[d]]
        return known + sorted(d for d in self.decisions if d not in DECISION_ORDER)

    def to_dict(self) -> dict[str, Any]:
        weeks = sorted(self.cards_by_week)
        per_week = self.cards_per_week()
        return {
            "period": {
                "firstOrder": self.first_day.isoformat() if self.first_day else None,
                "lastOrder": self.last_day.isoformat() if self.last_day else None,
            },
            "patients": self.patients,
            "patientsWithEpisode": self.patients_with_episode,
            "orders": self.orders,
            "decisions": {d: self.decisions[d] for d in self.decision_order()},
            "decisionsByMonth": {
                m: {d: self.by_month[m][d] for d in DECISION_ORDER if self.by_month[m][d]}
                for m in sorted(self.by_month)
            },
            "cardsByWeek": {
                w: {d: self.cards_by_week[w][d] for d in CARD_DECISIONS if self.cards_by_week[w][d]}
                for w in weeks
            },
            "cardsPerWeek": {
                "weeks": len(per_week),
                "mean": round(sum(per_week) / len(per_week), 2) if per_week else None,
                "max": max(per_week, default=None),
            },
            "adviseAgainst": {
                "orders": self.decisions[ADVISE_AGAINST],
                "followedByPerformedStudy": self.advise_against_followed,
            },
            "studyPerformedAfter": dict(sorted(self.performed_after.items())),
            "dataGaps": dict(self.gaps.most_common()),
            "unrecognisedOrderCodes": dict(self.unrecognised.most_common()),
            "linesRead": dict(sorted(self.lines.items())),
            "skippedLines": self.skipped_lines,
            "skippedFiles": self.skipped_files,
            "otherResourceTypes": dict(sorted(self.other_types.items())),
            "problems": list(self.problems),
        }
