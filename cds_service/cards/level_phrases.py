"""The phrasebook's words for an order that misses the level in question: the infected
level, the level a deficit points to (clinical-rules.md, "Imaging", 2026-12-06), or a new
infected level recorded on treatment, in a card's detail and in its summary (which says it
as the detail does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cds_service.cards.phrase import Data, Phrase
from cds_service.cards.safe_text import quote
from cds_service.cards.words import joined

REGION_WORDS = {
    "occipito-atlanto-axial": "at the skull base (C0-C2)",
    "cervicothoracic": "at the cervicothoracic junction",
    "thoracolumbar": "at the thoracolumbar junction",
    "lumbosacral": "lumbosacral",
    "sacral": "sacral",
}


def level_name(region: str) -> str:
    """A level as named in a list of the infection's levels: "thoracic", "thoracolumbar
    junction", "multiple sites" (an entry coded M46.29)."""
    if region == "multiple":
        return "multiple sites"
    return REGION_WORDS.get(region, region).removeprefix("at the ")


def named_levels(levels: Sequence[object]) -> str:
    """ "cervical and thoracic": the levels of an infection its entries put at several."""
    return joined([level_name(str(r)) for r in levels])


def at_levels(levels: Sequence[object]) -> str:
    """ "at more than one level (cervical and thoracic)": such an infection as the episode
    line, the level notes and the new-level remark say it."""
    return f"at more than one level ({named_levels(levels)})"


def _levels(d: Data) -> str | None:
    """``at_levels`` of the data's ``levels`` (an infection at several levels), else None."""
    levels = d.get("levels")
    return at_levels(levels) if levels else None


def _order_misses_level(d: Data) -> Phrase:
    region = str(d["region"])
    studies = ", ".join(f"{s['region']} {s['modality']}" for s in d["studies"])
    levels = _levels(d)
    if levels is not None:
        # an infection at several levels: every one must be imaged to answer a red flag
        image = "; MRI of the whole spine with gadolinium" if d.get("redFlag") else ""
        named = named_levels(d["levels"])
        return Phrase(
            f"The infection is {levels}: the {studies} ordered "
            f"will not show {'all of it' if d.get('partly') else 'it'}{image}.",
            f"the {studies} ordered will not show every infected level ({named})",
        )
    target = "upper cervical" if region == "occipito-atlanto-axial" else region
    # what to image only with a red flag: otherwise the order is named as outside the
    # infection, and an advise-against card does not go on to suggest a scan
    image = f"; MRI of the {target} or whole spine with gadolinium" if d.get("redFlag") else ""
    return Phrase(
        f"The infection is {REGION_WORDS.get(region, region)}: the {studies} ordered will not "
        f"show it{image}.",
        f"the {studies} ordered will not show the {target} infection",
    )


def urgent_level_words(d: Data, whole_spine: bool = False) -> str:
    """The urgent summary's words for an order that misses the infected level
    (clinical-rules.md, "Imaging", 2026-12-06): "the infection is cervical; emergency MRI
    of the cervical or whole spine with gadolinium now"; only the whole spine when the
    deficit points to another level than the infection's (``whole_spine``: a clinician
    reader saw "MRI of the lumbar or whole spine" for a quadriplegia)."""
    region = str(d["region"])
    levels = _levels(d)
    if levels is not None:
        return f"the infection is {levels}; emergency MRI of the whole spine with gadolinium now"
    target = "upper cervical" if region == "occipito-atlanto-axial" else region
    where = "the whole spine" if whole_spine else f"the {target} or whole spine"
    return (
        f"the infection is {REGION_WORDS.get(region, region)}; emergency MRI of {where} with "
        "gadolinium now"
    )


def missed_level_words(d: Data) -> tuple[str, str]:
    """A support summary's words for orders that all miss the infected level, as its
    detail says them (clinical-rules.md, "Imaging": summary and detail agree): "the lumbar
    MRI ordered will not show the thoracic infection: MRI of the thoracic or whole spine
    with gadolinium", and a shorter form."""
    region = str(d["region"])
    studies = ", ".join(f"{s['region']} {s['modality']}" for s in d["studies"])
    misses = "miss" if len(d["studies"]) > 1 else "misses"
    if d.get("levels"):
        levels = named_levels(d["levels"])
        some = "an infected level" if d.get("partly") else "the infected levels"
        return (
            f"the {studies} ordered will not show every infected level ({levels}): MRI of the "
            "whole spine with gadolinium",
            f"the {studies} ordered {misses} {some} ({levels}): whole-spine MRI",
        )
    target = "upper cervical" if region == "occipito-atlanto-axial" else region
    return (
        f"the {studies} ordered will not show the {target} infection: MRI of the {target} or "
        "whole spine with gadolinium",
        f"the {studies} ordered {misses} the {target} level: {target} or whole-spine MRI",
    )


def _order_misses_deficit_level(d: Data) -> Phrase:
    region = str(d["region"])
    studies = ", ".join(f"{s['region']} {s['modality']}" for s in d["studies"])
    name = quote(d["condition"]["name"]) if d["condition"].get("name") else "the deficit"
    # a paraplegia's lesion is in the thoracic cord or above (a cervical one too): the
    # study may miss its cause, which is not to say the cause is thoracic
    above = " or above" if region == "thoracic" else ""
    miss = "may miss" if region == "thoracic" else "will not show"
    short = "may miss" if region == "thoracic" else "misses"
    return Phrase(
        f"{name[:1].upper()}{name[1:]} points to the {region} level{above}: the {studies} "
        f"ordered {miss} a {region} cause; MRI of the whole spine with gadolinium.",
        f"the {studies} {short} a {region} cause",
    )


def _new_level_on_treatment(d: Data) -> Phrase:
    region, first = str(d["region"]), str(d["infectionRegion"])
    target = "upper cervical" if region == "occipito-atlanto-axial" else region
    day = d["condition"].get("day")
    when = f"on day {day}" if day is not None else f"on {d['condition'].get('date')}"
    treated = f"the {first} infection"
    if d.get("infectionLevels"):
        # entries of one infection at several levels: each named, as the episode line does
        treated = f"the infection {at_levels(d['infectionLevels'])}"
    return Phrase(
        f"A new level of infection, {target}, recorded {when} while {treated} was "
        "treated: it may mean spread or treatment failure. The study ordered does not image "
        "it, so this card does not advise against imaging.",
        f"new {target} infection recorded {when}",
    )


LEVEL_REMARKS: dict[str, Callable[[Data], Phrase]] = {
    "order-misses-level": _order_misses_level,
    "order-misses-deficit-level": _order_misses_deficit_level,
    "new-level-on-treatment": _new_level_on_treatment,
}
