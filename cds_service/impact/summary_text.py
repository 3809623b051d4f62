"""The replay's summary as terminal text, laid out like ``spine-cds report``."""

from __future__ import annotations

from cds_service.impact.summary import ADVISE_AGAINST, Summary
from cds_service.tools.report import CARD_DECISIONS
from cds_service.tools.report_text import _share

__all__ = ["format_summary"]

TOP = 10  # codes and gap kinds listed; the JSON summary has them all


def format_summary(summary: Summary, source: str = "") -> str:
    """What a governance committee reads first: the decisions the service would have
    given, per month and per week, and what the advice would have touched."""
    first = summary.first_day.isoformat() if summary.first_day else "?"
    last = summary.last_day.isoformat() if summary.last_day else "?"
    lines = [f"spine-cds replay: orders from {first} to {last}"]
    if source:
        lines.append(f"Data: {source}")
    lines.append(
        f"Patients: {summary.patients} read, {summary.patients_with_episode} with an NVO "
        f"episode; spine MRI/CT orders replayed: {summary.orders}"
    )
    if summary.orders == 0:
        lines.append("No spine MRI/CT order of a patient with an NVO episode was found.")
    else:
        lines += ["", "Decisions the service would have given (order's time, data on record then)"]
        for decision in summary.decision_order():
            lines.append(f"  {decision:<18}  {_share(summary.decisions[decision], summary.orders)}")
        lines += ["", "Decisions per month"]
        shown = [d for d in summary.decision_order()]
        lines.append("  month    " + "".join(f"  {d:>17}" for d in shown))
        for month in sorted(summary.by_month):
            counts = summary.by_month[month]
            lines.append(f"  {month}  " + "".join(f"  {counts[d]:>17}" for d in shown))
        per_week = summary.cards_per_week()
        cards = summary.cards
        if per_week:
            mean = sum(per_week) / len(per_week)
            lines += [
                "",
                f"Cards per week ({', '.join(CARD_DECISIONS)}): {cards} cards over "
                f"{len(per_week)} weeks, mean {mean:.2f}, busiest week {max(per_week)}",
            ]
        advised = summary.decisions[ADVISE_AGAINST]
        lines += [
            "",
            f"Advise-against orders: {advised}; followed by a performed study: "
            f"{_share(summary.advise_against_followed, advised)} (the repeat studies the "
            "advice touches)",
        ]
    lines += ["", "Data gaps by kind (orders affected)"]
    lines += [f"  {kind:<50}  {n:>6}" for kind, n in summary.gaps.most_common(TOP)] or ["  none"]
    lines += ["", "Order codes not recognised as spine MRI/CT (patients with an NVO episode)"]
    lines += [f"  {code:<70}  {n:>6}" for code, n in summary.unrecognised.most_common(TOP)] or [
        "  none"
    ]
    read = ", ".join(f"{t} {n}" for t, n in sorted(summary.lines.items()))
    lines += [
        "",
        f"Lines read: {read or 'none'}; lines skipped: {summary.skipped_lines}; files "
        f"skipped: {summary.skipped_files}",
    ]
    if summary.other_types:
        other = ", ".join(f"{t} {n}" for t, n in sorted(summary.other_types.items()))
        lines.append(f"Resource types not used by the replay: {other}")
    for problem in summary.problems[:TOP]:
        lines.append(f"  {problem}")
    hidden = summary.skipped_lines + summary.skipped_files - min(TOP, len(summary.problems))
    if hidden > 0:
        lines.append(f"  ... and {hidden} more (counted above)")
    return "\n".join(lines)
