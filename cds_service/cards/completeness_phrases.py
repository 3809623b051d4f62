"""The phrasebook's remarks about data read only in part: a search cut off (its older
pages not read) or failed in part (an error beside its results), and what that leaves
unknown (clinical-rules.md, "Reading the data": "Incomplete data").

Like ``remark_phrases`` (which lists these among all remarks): one function per remark
code, from the remark's data to its (message, short).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.cards.phrase import Data, Phrase, fixed
from cds_service.cards.words import joined

# What a search left partly read is called on a card.
KIND_WORDS = {
    "conditions": "diagnoses",
    "crp": "CRP",
    "esr": "ESR",
    "pain": "pain",
    "antibiotics": "antibiotic order",
}


def _paging_cut_off(d: Data) -> Phrase:
    kinds = joined([KIND_WORDS.get(k, k) for k in d["kinds"]])
    return Phrase(
        f"Not every {kinds} result could be read from the record (paging cut off): older "
        "results may be missing.",
        "record only partly read",
    )


def _search_failed_in_part(d: Data) -> Phrase:
    kinds = joined([KIND_WORDS.get(k, k) for k in d["kinds"]])
    return Phrase(
        f"The record's {kinds} search failed in part (an error came back with the results): "
        "any result, the latest too, may be missing.",
        f"{kinds} search failed in part",
    )


def _failed_in_part(words: str) -> Callable[[Data], Phrase]:
    return fixed(
        f"The {words} search failed in part, so the latest {words} may be missing: check "
        "the results in the chart.",
        f"{words} results may be missing",
    )


def _older_not_read(words: str) -> Callable[[Data], Phrase]:
    return fixed(
        f"Older {words} results could not be read, so the values from the start of treatment "
        "may be missing.",
        f"older {words} results not read",
    )


COMPLETENESS_REMARKS: dict[str, Callable[[Data], Phrase]] = {
    "conditions-incomplete": fixed(
        "Not every diagnosis could be read: a red flag may be missing.",
        "diagnoses only partly read",
    ),
    "antibiotics-incomplete": fixed(
        "Not every antibiotic order could be read: treatment may have started earlier than "
        "the date used here.",
        "antibiotic orders only partly read",
    ),
    "crp-incomplete": _older_not_read("CRP"),
    "pain-incomplete": _older_not_read("pain score"),
    "crp-failed-in-part": _failed_in_part("CRP"),
    "pain-failed-in-part": _failed_in_part("pain score"),
    "paging-cut-off": _paging_cut_off,
    "search-failed-in-part": _search_failed_in_part,
}
