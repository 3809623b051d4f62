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
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}
        and escape_controls(chr(code)) == chr(code)
    ]
    assert left == []


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), which unicodedata
# does not expose: fillers, variation selectors, tags and reserved ones, drawn as nothing
# (an attack suite got U+034F, U+3164 and variation selectors into log lines unescaped).
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]  # fmt: skip


def test_every_default_ignorable_code_point_is_escaped() -> None:
    left = [
        f"U+{code:04X}"
        for first, last in DEFAULT_IGNORABLE
        for code in range(first, last + 1)
        if escape_controls(chr(code)) == chr(code)
    ]
    assert left == []


def test_astral_escapes_cannot_be_read_as_a_shorter_one() -> None:
    assert escape_controls("\U000e0041b") == "\\U000e0041b"
    assert escape_controls("\U0010fffd") == "\\U0010fffd"


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
