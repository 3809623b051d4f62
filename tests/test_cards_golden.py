"""Golden test: every example patient's card, rendered by the service, equals the section
of docs/cards.md that shows it, so a wording change shows in review.

After an intended change: ``python -m cds_service.tools.cards_doc`` rewrites the section.
"""

from __future__ import annotations

from pathlib import Path

from cds_service.tools.cards_doc import BEGIN, END, example_cards_section

DOC = Path(__file__).resolve().parent.parent / "docs" / "cards.md"


def test_docs_cards_md_shows_every_example_card_as_the_service_renders_it() -> None:
    text = DOC.read_text("utf-8")
    assert BEGIN in text and END in text, "docs/cards.md has no generated example section"
    shown = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert shown == example_cards_section(), (
        "docs/cards.md differs from the cards the service renders: if the change is "
        "intended, run python -m cds_service.tools.cards_doc and review the diff"
    )
