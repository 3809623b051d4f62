"""Golden test: every example patient's card, rendered by the service, equals the section
of docs/cards.md that shows it, so a wording change shows in review.

After an intended change: ``python -m cds_service.tools.cards_doc`` rewrites the section.
"""

from __future__ import annotations

from pathlib import Path

from cds_service.tools.cards_doc import (
    BEGIN,
    END,
    JSON_BEGIN,
    JSON_END,
    e01_card_json_section,
    example_cards_section,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "cards.md"


def test_docs_cards_md_shows_every_example_card_as_the_service_renders_it() -> None:
    text = DOC.read_text("utf-8")
    assert BEGIN in text and END in text, "docs/cards.md has no generated example section"
    shown = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert shown == example_cards_section(), (
        "docs/cards.md differs from the cards the service renders: if the change is "
        "intended, run python -m cds_service.tools.cards_doc and review the diff"
    )


def test_the_e01_card_as_json_is_the_one_the_service_sends() -> None:
    """The whole-card JSON near the top of docs/cards.md (a hand-kept copy offered an
    override reason the card no longer offers, and older words: an outside reader)."""
    text = DOC.read_text("utf-8")
    assert JSON_BEGIN in text and JSON_END in text
    shown = text[text.index(JSON_BEGIN) : text.index(JSON_END) + len(JSON_END)] + "\n"
    assert shown == e01_card_json_section(), "run python -m cds_service.tools.cards_doc"


def test_every_source_an_example_card_names_is_in_its_sources() -> None:
    """A card that says "(Yoon 2010)" or "Park 2016" lists that paper under "Sources:"
    (an outside review found both named in card text and missing from the sources)."""
    from cds_service.cards.text import CITATIONS

    cards = example_cards_section().split("\n### ")[1:]
    assert cards
    for card in cards:
        lines = card.splitlines()
        sources = next((line for line in lines if line.startswith("Sources: ")), "")
        body = card.replace(sources, "") if sources else card
        for citation in CITATIONS.values():
            surname, year = citation.split()[0], citation.split(" 20")[1][:2]
            if f"{surname} 20{year}" in body:
                assert citation in sources, (card.splitlines()[0], surname)
