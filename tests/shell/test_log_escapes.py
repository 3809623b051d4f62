"""Log lines show what a client sent without letting it change how the line reads.

An attack suite put a right-to-left override and a zero-width space into a path, a
``hookInstance`` and a JWT's ``aud``: they reached the log raw, and a reader's terminal
showed the line reordered. Every invisible format character is escaped, as controls are.
"""

from __future__ import annotations

import logging
import sys
import unicodedata

from cds_service.logs import PlainFormatter, escape_controls


def test_every_format_and_control_character_is_escaped() -> None:
    left = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp", "Cs"}
        and escape_controls(chr(code)) == chr(code)
    ]
    assert left == []


def test_escapes_name_the_character_and_keep_the_rest() -> None:
    assert escape_controls("a\u202etxt.exe") == "a\\u202etxt.exe"
    assert escape_controls("zw\u200bj") == "zw\\u200bj"
    assert escape_controls("\x1b[31m\n") == "\\x1b[31m\\n"
    assert escape_controls("Müller 10 mg/L → ok") == "Müller 10 mg/L → ok"


def test_a_formatted_line_carries_no_bidi_override() -> None:
    record = logging.LogRecord(
        "cds_service", logging.WARNING, __file__, 1, "path=%s", ("/x\u202eexe",), None
    )
    line = PlainFormatter().format(record)
    assert "\u202e" not in line and "\\u202e" in line
