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


def _dropped(char: str, keep_newlines: bool) -> bool:
    """Control (Cc), format (Cf: bidi overrides, isolates, zero-width), surrogate (Cs)
    and line or paragraph separator (Zl, Zp) characters; newline kept when asked."""
    if char == "\n" and keep_newlines:
        return False
    return unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}


def strip_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` without control, format, surrogate and separator characters (tabs and,
    unless ``keep_newlines``, newlines become a space)."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        if char == "\t" or (char in "\r\n" and not keep_newlines):
            out.append(" ")
        elif not _dropped(char, keep_newlines):
            out.append(char)
    return "".join(out)


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
    if isinstance(value, str):
        return strip_controls(value, keep_newlines=key in _MARKDOWN_KEYS)
    if isinstance(value, Mapping):
        return {k: _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, key) for v in value]
    return value
