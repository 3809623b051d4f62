"""What ``spine-cds report`` may print or draw of a text that a client sent.

Feedback comes from EHR clients: an override reason's code, system and display are
theirs. Printed as sent, an ESC sequence would drive the reviewer's terminal, a line
break would forge a report line, a bidi override would reorder what is read, and an
endless display would swamp the page. ``printable`` makes such a text safe for a
terminal, a JSON dump read in one, and a chart, whatever the output: control, format
(bidi, zero-width) and separator characters are shown as ``\\u....`` escapes and the
text is cut at ``MAX_SHOWN`` characters. The chart turns matplotlib's mathtext off as
well (``report_chart``), so a ``$`` is a dollar sign, never a formula to parse.
"""

from __future__ import annotations

import unicodedata

MAX_SHOWN = 120
# Unicode categories never shown as they are: controls (ESC, CR, LF, DEL, C1), format
# characters (bidi overrides and isolates, zero-width), line and paragraph separators,
# surrogates, private use and unassigned code points.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _shown(char: str) -> str:
    if unicodedata.category(char) in UNSAFE_CATEGORIES:
        return f"\\u{ord(char):04x}"
    return char


def printable(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` with every unsafe character escaped, at most ``limit`` characters long
    (an ellipsis marks a cut)."""
    shown = "".join(_shown(c) for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"
