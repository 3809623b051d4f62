"""Record text quoted into a card's markdown reads back as the same text, and nothing else,
wherever it stands; control and bidi characters never leave on a card.

Rendered with a real CommonMark parser (markdown-it, raw HTML on, tables on), as an EHR
renders the detail.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from cds_service.cards.safe_text import QUOTE_MAX, clean_card, quote, strip_controls, unquote

MD = MarkdownIt("commonmark", {"html": True}).enable("table")
# Printable ASCII (every markdown character) and some of what a display may hold.
TEXT = st.text(
    alphabet=st.sampled_from(
        [chr(c) for c in range(0x20, 0x7F)] + ["é", "→", "µ", "\u202e", "\x1b", "\n", "\t"]
    ),
    max_size=60,
)


def _expected(value: str) -> str:
    """What the reader should see: the value on one line, controls out."""
    return " ".join(strip_controls(value).split())


def _inline_text(tokens: list[Token]) -> tuple[set[str], str]:
    """The kinds of block token and the inline children's text."""
    kinds = {t.type for t in tokens}
    children = [c for t in tokens if t.type == "inline" for c in (t.children or [])]
    assert all(c.type in {"text", "softbreak"} for c in children), [c.type for c in children]
    return kinds, "".join(c.content for c in children)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_a_quoted_value_inside_a_sentence_reads_as_itself_and_nothing_else(value: str) -> None:
    shown = _expected(value)
    kinds, text = _inline_text(MD.parse(f"Recorded: {quote(value)} (day 3)."))
    assert kinds <= {"paragraph_open", "inline", "paragraph_close"}
    assert text == f"Recorded: {shown} (day 3)."


@settings(max_examples=400, deadline=None)
@given(TEXT.filter(lambda v: _expected(v) != ""))
def test_a_quoted_value_at_the_start_of_a_bullet_opens_no_block(value: str) -> None:
    kinds, text = _inline_text(MD.parse(f"- {quote(value)} recorded."))
    assert kinds <= {
        "bullet_list_open",
        "list_item_open",
        "paragraph_open",
        "inline",
        "paragraph_close",
        "list_item_close",
        "bullet_list_close",
    }
    assert text == f"{_expected(value)} recorded."


def test_the_attacks_of_the_report_render_as_text() -> None:
    for value in (
        "[open](https://evil.example)",
        "![x](https://evil.example/i.png)",
        '<img src=x onerror="alert(1)">',
        "# Heading",
        "1. item",
        "2) item",
        "> quote",
        "**bold** _it_ `code` ~~s~~",
        "&#x202e; &amp;",
        "a | b",
    ):
        html = MD.render(f"- {quote(value)}")
        assert "<a " not in html and "<img" not in html and "<h1>" not in html, html
        assert "<strong>" not in html and "<code>" not in html and "<ol>" not in html, html
        assert "<blockquote>" not in html and "\u202e" not in html, html


def test_bare_autolink_markers_are_broken() -> None:
    assert "://" not in quote("https://evil.example/x")
    assert not re.search(r"(?i)www\.", quote("www.evil.example"))
    assert "@" not in quote("mail@evil.example").replace("\\@", "")


def test_the_value_sets_names_pass_unchanged() -> None:
    for name in (
        "cauda equina syndrome",
        "amoxicillin-clavulanate",
        "osteomyelitis of the vertebra",
    ):
        assert quote(name) == name


def test_a_long_value_is_cut() -> None:
    assert len(unquote(quote("x" * 10_000))) == QUOTE_MAX


def test_clean_card_strips_controls_everywhere_and_keeps_the_detail_lines() -> None:
    card = {
        "summary": "New \\[x\\] \u202eparaplegia\x1b[31m\nday 3",
        "detail": "line one\u2066\nline two\u200b",
        "suggestions": [{"label": "Remove\u202e it"}],
        "links": [{"label": "Trend\x07"}],
        "overrideReasons": [{"display": "Other\u2028reason"}],
        "extension": {"x": {"name": "a\x00b"}},
    }
    cleaned = clean_card(card)
    assert cleaned["summary"] == "New [x] paraplegia[31m day 3"
    assert cleaned["detail"] == "line one\nline two"
    assert cleaned["suggestions"][0]["label"] == "Remove it"
    assert cleaned["links"][0]["label"] == "Trend"
    assert cleaned["overrideReasons"][0]["display"] == "Otherreason"
    assert cleaned["extension"]["x"]["name"] == "ab"


def test_the_cards_own_wording_holds_no_backslash() -> None:
    """``clean_card`` takes the escapes out of the summary: exact only while no sentence of
    the phrasebook has a backslash of its own (docs/cards.md is every example card, held
    to the service by tests/test_cards_golden.py)."""
    from pathlib import Path

    from cds_service.tools.cards_doc import BEGIN, END

    doc = (Path(__file__).parents[2] / "docs" / "cards.md").read_text("utf-8")
    assert "\\" not in doc[doc.index(BEGIN) : doc.index(END)]


def test_a_value_that_was_only_control_characters_is_left_out_not_left_empty() -> None:
    """A record's display of "\\x1f" once reached the card's extension as "", which CDS
    Hooks clients may refuse (no empty values)."""
    card = {"summary": "s", "extension": {"codes": [{"code": "G83.4", "display": "\x1f"}]}}
    assert clean_card(card)["extension"]["codes"] == [{"code": "G83.4"}]
