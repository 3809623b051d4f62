"""``spine-cds replay --png/--html``: the summary as one page a committee can read.

matplotlib (the ``report`` extra) is imported only inside ``write_png``. Text taken
from the records (order codes, gap kinds) is drawn with mathtext off, so a "$" in a
local code prints as itself. The HTML page is self-contained: the summary's text and
tables, and the chart inline when matplotlib is there.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from cds_service.impact.summary import Summary
from cds_service.impact.summary_text import format_summary
from cds_service.tools.report import CARD_DECISIONS
from cds_service.tools.report_chart import DECISION_COLOURS

__all__ = ["png_bytes", "write_html", "write_png"]


def png_bytes(summary: Summary) -> bytes:
    """The chart as PNG bytes; ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.parse_math": False}):
        fig = plt.figure(figsize=(11.69, 8.27))  # A4 landscape
        try:
            grid = fig.add_gridspec(2, 2, hspace=0.45, wspace=0.45, left=0.07, right=0.97)
            first = summary.first_day.isoformat() if summary.first_day else "?"
            last = summary.last_day.isoformat() if summary.last_day else "?"
            fig.suptitle(
                f"spine-cds replay: {summary.orders} spine MRI/CT orders of "
                f"{summary.patients_with_episode} patients with NVO, {first} to {last}",
                fontsize=12,
                fontweight="bold",
            )
            _by_month(fig.add_subplot(grid[0, :]), summary)
            _per_week(fig.add_subplot(grid[1, 0]), summary)
            _gaps(fig.add_subplot(grid[1, 1]), summary)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=100)
        finally:
            plt.close(fig)
    return buffer.getvalue()


def _by_month(ax: Any, summary: Summary) -> None:
    months = sorted(summary.by_month)
    bottom = [0] * len(months)
    for decision in summary.decision_order():
        values = [summary.by_month[m][decision] for m in months]
        ax.bar(
            months,
            values,
            bottom=bottom,
            label=decision,
            color=DECISION_COLOURS.get(decision, "#777777"),
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Decisions per month (order's month)", fontsize=10)
    ax.set_ylabel("orders")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.legend(fontsize=7, ncols=3)


def _per_week(ax: Any, summary: Summary) -> None:
    per_week = summary.cards_per_week()
    ax.plot(range(1, len(per_week) + 1), per_week, color=DECISION_COLOURS["support"])
    advised = summary.decisions["advise-against"]
    ax.set_title(
        f"Cards per week ({len(CARD_DECISIONS)} card decisions)\n"
        f"advise-against: {advised}, followed by a performed study: "
        f"{summary.advise_against_followed}",
        fontsize=9,
    )
    ax.set_xlabel("week of the period")
    ax.set_ylabel("cards")


def _gaps(ax: Any, summary: Summary) -> None:
    gaps = summary.gaps.most_common(8)
    labels = [g for g, _ in gaps][::-1]
    ax.barh(labels, [n for _, n in gaps][::-1], color="#999999")
    ax.set_title("Data gaps by kind (orders affected)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)


def write_png(summary: Summary, path: str | Path) -> None:
    Path(path).write_bytes(png_bytes(summary))


def write_html(summary: Summary, path: str | Path, source: str = "") -> None:
    """The summary as one self-contained page; the chart inline when it can be drawn."""
    try:
        image = base64.b64encode(png_bytes(summary)).decode("ascii")
        figure = f'<img alt="replay chart" src="data:image/png;base64,{image}">'
    except ImportError:
        figure = "<p>(chart not drawn: matplotlib, the report extra, is not installed)</p>"
    text = html.escape(format_summary(summary, source))
    Path(path).write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>spine-cds replay</title>"
        "<style>body{font-family:sans-serif;margin:2em}img{max-width:100%}"
        "pre{font-size:0.85em}</style></head><body>"
        f"<h1>spine-cds replay</h1>{figure}<pre>{text}</pre></body></html>\n",
        encoding="utf-8",
    )
