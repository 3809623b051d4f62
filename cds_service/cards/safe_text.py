"""What makes text from the record safe on a card: quoted as literal markdown, and no
control or bidirectional character anywhere on the card.

The detail is markdown that the EHR renders; a Condition's display, an order's intent or
an observation's status come from the EHR's data, which anyone who can write to the
record controls. So:

- ``quote`` is the one function through which a value read from FHIR enters a card's
  sentence: one line, at most ``QUOTE_MAX`` characters, every character that could start
  a link, an image, raw HTML, emphasis, code, a table cell, an entity or a line-start
  construct (heading, list, quote) escaped with a backslash, and the markers of bare
  autolinks (``://``, ``www.``, ``@``) broken the same way. The clinical names of the value
  sets pass through unchanged (they hold no such character).
- ``clean_card`` is applied once, where a card is rendered: it strips control, format
  (bidirectional overrides and isolates, zero-width characters) and separator characters
  from every string of the card, and makes the summary plain text (CDS Hooks: the summary
  is not markdown), taking out the escapes ``quote`` put in. The card's own wording never
  holds a backslash, so that is the exact inverse.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

QUOTE_MAX = 200  # a clinical name is far shorter; a longer record value is cut with "…"

# Escaped wherever they stand: markdown's inline constructs and raw HTML or entities.
_ALWAYS = frozenset("\\`*_[]<>|~&@")
# Escaped at the start of the quoted value, where they could open a block construct.
_LEADING = frozenset("#-+=>!")
_ORDERED_LIST = re.compile(r"^(\d{1,9})([.)])")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
_WHITESPACE = re.compile(r"\s+")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation


# Control (Cc), format (Cf: bidi overrides and isolates, zero-width), surrogate (Cs), line
# and paragraph separator (Zl, Zp) characters; Cf lives in planes 0, 1 and 14 only.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PLANES = (range(0x20000), range(0xE0000, 0xE1000))


@cache
def _table(keep_newlines: bool) -> dict[int, str | None]:
    """``str.translate``'s table: every dropped character to nothing, tab, CR and (unless
    kept) newline to a space. Built once, from the Unicode database Python carries (the
    warm-up renders a card, so a worker pays it at start)."""
    table: dict[int, str | None] = {
        c: None
        for plane in _PLANES
        for c in plane
        if unicodedata.category(chr(c)) in _DROPPED_CATEGORIES
    }
    table |= {ord("\t"): " ", ord("\r"): " ", ord("\n"): " "}
    if keep_newlines:
        del table[ord("\n")]
    return table


@cache
def _changed(keep_newlines: bool) -> frozenset[str]:
    """The characters ``strip_controls`` removes or replaces: a text without any is kept
    as it is (the common case, checked in C by ``isdisjoint``)."""
    return frozenset(chr(c) for c in _table(keep_newlines))


def strip_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` without control, format, surrogate and separator characters (tabs and,
    unless ``keep_newlines``, newlines become a space)."""
    if (text.isascii() and text.isprintable()) or _changed(keep_newlines).isdisjoint(text):
        return text
    return text.translate(_table(keep_newlines))


def quote(value: object) -> str:
    """A value read from FHIR (a display, a code, a status) as literal text inside the
    card's markdown: one line, controls out, markdown escaped, at most QUOTE_MAX
    characters."""
    text = _WHITESPACE.sub(" ", strip_controls(str(value))).strip()
    if len(text) > QUOTE_MAX:
        text = text[: QUOTE_MAX - 1].rstrip() + "…"
    out = "".join(f"\\{c}" if c in _ALWAYS else c for c in text)
    out = _AUTOLINK.sub(lambda m: "".join(f"\\{c}" if not c.isalnum() else c for c in m[0]), out)
    if out[:1] in _LEADING:
        out = "\\" + out
    elif match := _ORDERED_LIST.match(out):
        out = f"{match[1]}\\{match[2]}{out[match.end() :]}"
    return out


def unquote(markdown: str) -> str:
    """Plain text from text built with ``quote``: its backslash escapes taken out."""
    return _ESCAPE.sub(r"\1", markdown)


# The card's free text that is markdown (newlines kept); every other string is one line.
_MARKDOWN_KEYS = frozenset({"detail"})


def clean_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card with no control or bidirectional character in any string (summary,
    detail, suggestion and link labels, override reasons, the extension), and a plain
    text summary."""
    cleaned: dict[str, Any] = _clean(card, "")
    if isinstance(cleaned.get("summary"), str):
        cleaned["summary"] = unquote(cleaned["summary"])
    return cleaned


def _clean(value: Any, key: str) -> Any:
    if type(value) is str:
        return strip_controls(value, keep_newlines=key in _MARKDOWN_KEYS)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            # most strings are printable ASCII: kept as they are without a call
            if type(v) is str and v.isascii() and v.isprintable():
                out[k] = v
                continue
            cleaned = _clean(v, k)
            if cleaned != "":  # a value that was only control characters is no value
                out[k] = cleaned
        return out
    if isinstance(value, list):
        return [_clean(v, key) for v in value]
    return value
