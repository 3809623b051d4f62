"""``spine-cds report --png``: a one-page summary a governance committee can read.

matplotlib is imported only inside ``write_png``, so the service never loads it.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

from cds_service.tools.report import (
    CARD_DECISIONS,
    Report,
)
from cds_service.tools.report_text import _ms, _share, period_text

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


# Every text drawn as it is: a "$" in a client's override display is a dollar sign, not
# mathtext to parse (an unknown command in it crashed the chart), and never LaTeX.
PLAIN_TEXT: dict[Any, Any] = {"text.parse_math": False, "text.usetex": False}


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
    with matplotlib.rc_context(PLAIN_TEXT):
        _draw(report, path)


def _draw(report: Report, path: str | Path) -> None:
    import matplotlib
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
            " the last feedback received (closing a card without a reason after taking its"
            " suggestion leaves it accepted).",
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
    # a refusal (400, 412) is a call but not an answer: counted apart, in shadow mode too
    refused = report.decisions.get("error", 0)
    answered = report.total - refused - (shadow_total - report.shadow.get("error", 0))
    lines = [
        f"Calls: {report.total} ({answered} answered normally, {refused} refused with an"
        f" error, {shadow_total - report.shadow.get('error', 0)} answered in shadow mode)",
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
