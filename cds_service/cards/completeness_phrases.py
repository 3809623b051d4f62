"""The phrasebook's remarks about data read only in part: a search cut off (its older
pages not read) or failed in part (an error beside its results), and what that leaves
unknown (clinical-rules.md, "Reading the data": "Incomplete data"); and what the record
says of the course that the treatment start cannot hold: a relapse, whose course the
record does not tell apart from the first, a treatment start not held to a day of
treatment, and bacteraemia on treatment.

Like ``remark_phrases`` (which lists these among all remarks): one function per remark
code, from the remark's data to its (message, short).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.cards.phrase import Data, Phrase, fixed
from cds_service.cards.safe_text import quote
from cds_service.cards.words import ended_on, ended_status, joined, upper_first

# What a search left partly read is called on a card: the things it returns, one entry
# per data source (datasources.py; tests/shell/test_datasources.py holds the keys equal),
# in the order a card names them.
KIND_WORDS = {
    "conditions": "diagnoses",
    "crp": "CRP results",
    "esr": "ESR results",
    "pain": "pain scores",
    "antibiotics": "antibiotic orders",
    "patient": "patient details",
    "procedures": "procedures",
    "imaging_studies": "imaging studies",
    "imaging_reports": "diagnostic reports",
}
_KIND_ORDER = {kind: i for i, kind in enumerate(KIND_WORDS)}


def kinds_named(kinds: list[str]) -> str:
    """The sources' words in the card's order, "diagnoses and CRP results"; a key this
    table lacks (the test above keeps it from happening) comes last, as it is."""
    ordered = sorted(kinds, key=lambda k: (_KIND_ORDER.get(k, len(_KIND_ORDER)), k))
    return joined([KIND_WORDS.get(k, k) for k in ordered])


def _paging_cut_off(d: Data) -> Phrase:
    kinds = kinds_named(d["kinds"])
    return Phrase(
        f"Some {kinds} could not be read: the record sent them in pages and not every page "
        "was read, so older ones may be missing.",
        "record only partly read",
    )


def _search_failed_in_part(d: Data) -> Phrase:
    kinds = kinds_named(d["kinds"])
    return Phrase(
        f"The record sent an error with the {kinds}: some, the latest too, may be missing.",
        f"some {kinds} may be missing",
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


def _relapse_recorded(d: Data) -> Phrase:
    since = f" on the infection of {d['since']}" if "since" in d else ""
    later = d.get("laterOrder")
    course = (
        f"; the {quote(later['name'])} order started {later['start']} may be its treatment"
        if later
        else ""
    )
    return Phrase(
        f"{upper_first(d['status'])} recorded{since}{course}. Days, baseline and fall are "
        "counted here from the first course, which the record does not tell apart from this "
        "one, so this card does not advise against imaging: judge the response from the "
        "start of the current treatment.",
        f"{d['status']} recorded",
    )


def _treatment_start_unclear(d: Data) -> Phrase:
    later = d.get("laterOrder")
    if later is not None and "partial" not in d:
        return Phrase(
            f"Treatment start unclear: no antibiotic order starts near the infection's "
            f"recorded date ({d['since']}), so days are counted from that date, which may be "
            f"when symptoms began; the {quote(later['name'])} order started {later['start']}, "
            f"more than {d['windowDays']} days later, may be when treatment began. The "
            "baseline, the fall and the 28-day marks may then include time before "
            "treatment, so this card does not advise against imaging: judge the response "
            "from the start of antibiotics for this infection.",
            f"treatment start unclear ({quote(later['name'])} started {later['start']})",
        )
    span = "a month" if d["partial"] == "month" else "a year"
    order = (
        f"; the {quote(later['name'])} order started {later['start']} may be when treatment "
        "began, but no window drawn from such a date can tie it to this infection"
        if later is not None
        else ", and no antibiotic order gives the treatment start"
    )
    return Phrase(
        f"Treatment start unclear: the infection is dated {d['since']}, {span} without a "
        f"day{order}. The baseline, the fall and the 28-day marks have no day to count "
        "from, so this card does not advise against imaging: the start date of antibiotics "
        "for this infection would let them count.",
        f"treatment start unclear (infection dated {d['since']})",
    )


def _bacteraemia_still_recorded(d: Data) -> Phrase:
    c = d["condition"]
    name = upper_first(quote(str(c.get("name") or "bacteraemia")))
    when = f" (day {c['day']})" if "day" in c else f" ({c['date']})" if "date" in c else ""
    return Phrase(
        f"{name} recorded at diagnosis{when} is still recorded active: confirm that blood "
        "cultures have cleared; persisting bacteraemia is a reason to image.",
        "bacteraemia still recorded active",
    )


def _bacteraemia_on_treatment(d: Data) -> Phrase:
    c = d["condition"]
    name = upper_first(quote(str(c.get("name") or "bacteraemia")))
    when = f"day {c['day']}" if "day" in c else str(c.get("date"))
    if c.get("ended"):
        # the status as recorded: inactive or in remission is not resolved
        status, on = ended_status(c), ended_on(c)
        ended = (
            [on or f"since {status}"] if status in ("resolved", "ended") else [f"now {status}", on]
        )
        when = ", ".join([when, *(part for part in ended if part)])
    return Phrase(
        f"{name} recorded on {when}, after treatment started: bacteria in the blood on "
        "treatment is not a favourable response, so this card does not advise against "
        "imaging. If treatment failure is suspected, MRI with gadolinium is reasonable "
        "(IDSA 2015).",
        f"{name.lower()} on {when}",
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
    "age-unread": fixed(
        "The patient's details could not be read, so the age is unknown: this advice is for "
        "adults only.",
        "age not known",
    ),
    "surgery-unread": fixed(
        "The patient's procedures could not be read: after spine surgery a CT may be needed "
        "to assess the hardware or the fusion.",
        "surgical history not read",
    ),
    "crp-incomplete": _older_not_read("CRP"),
    "pain-incomplete": _older_not_read("pain score"),
    "crp-failed-in-part": _failed_in_part("CRP"),
    "pain-failed-in-part": _failed_in_part("pain score"),
    "relapse-recorded": _relapse_recorded,
    "treatment-start-unclear": _treatment_start_unclear,
    "bacteraemia-on-treatment": _bacteraemia_on_treatment,
    "bacteraemia-still-recorded": _bacteraemia_still_recorded,
    "paging-cut-off": _paging_cut_off,
    "search-failed-in-part": _search_failed_in_part,
}
