"""The phrasebook's remarks about what was known at diagnosis: the findings named with
their dates, a known abscess (with its drainage, if one is recorded), a known deficit
(clinical-rules.md, 2026-12-06: "what was known at diagnosis is named, never silently
dropped or turned into an emergency"), and findings no longer recorded active.

Like ``remark_phrases`` (which lists these among all remarks): one function per remark
code, from the remark's data to its (message, short).
"""

from __future__ import annotations

from collections.abc import Callable

from cds_service.cards.phrase import Data, Phrase
from cds_service.cards.words import (
    dated,
    ended_on,
    ended_status,
    lower_first,
    name_of,
    relative_date,
    status_and_when,
    upper_first,
    when_found,
)


def _known_at_diagnosis(d: Data) -> Phrase:
    earlier = [c for c in d["conditions"] if c.get("beforeEpisode")]
    conditions = [c for c in d["conditions"] if not c.get("beforeEpisode")]
    before = (
        "Recorded before this infection and still active, not read as a new red flag: "
        f"{'; '.join(dated(c) for c in earlier)}. Check the problem list: if it belongs to "
        "this infection, its date is wrong."
        if earlier
        else ""
    )
    if not conditions:
        return Phrase(
            before,
            "known before this infection: " + ", ".join(lower_first(name_of(c)) for c in earlier),
        )
    listed = "; ".join(dated(c) for c in conditions)
    # begun after treatment started, inside the window: what follows if it is new (an
    # outside clinician's re-run: an abscess from day 2 of treatment read only "known")
    after = [c for c in conditions if c.get("atStart") is False and "day" in c]
    later = sorted({c["day"] for c in after})
    # dated by its recordedDate alone: recorded then, not known to have begun then
    begun = "Recorded" if all(c.get("recordedOnly") for c in after) else "Begun"
    caveat = (
        f" {begun} after treatment started (day {', '.join(map(str, later))}): if not there "
        "at diagnosis, it is new, and imaging is reasonable."
        if later
        else ""
    )
    return Phrase(
        f"Recorded at diagnosis, not a new red flag: {listed}.{caveat}"
        + (f" {before}" if before else ""),
        "known at diagnosis: "
        + ", ".join(lower_first(name_of(c)) for c in [*conditions, *earlier]),
    )


def drained_on(drainage: Data) -> str:
    """When a drainage the engine placed after the abscess was done: "day 22", else the
    date as recorded (no treatment start, or a month or a year)."""
    return f"day {drainage['day']}" if "day" in drainage else str(drainage["date"])


def _known_abscess(d: Data) -> Phrase:
    drained = d.get("drainage")
    head = (
        f"{upper_first(str(drained['name']))} recorded ({drained_on(drained)}): if the "
        "drainage was incomplete"
        if drained
        else "If the abscess was not drained"
    )
    return Phrase(
        f"{head}, an MRI before stopping antibiotics may be reasonable (Park 2016, for "
        "paravertebral or psoas abscesses: undrained, they relapse more often; at least 8 "
        "weeks of treatment).",
        "abscess at diagnosis",
    )


def _known_deficit(d: Data) -> Phrase:
    c = d["condition"]
    emergency = "emergency MRI of the whole spine with gadolinium and urgent spine surgery review"
    rests = (
        "whether repeat imaging is needed rests on the neurologic exam. If it is worse: "
        f"{emergency}; if it is unchanged or better and the patient improves, routine repeat "
        "imaging is not needed."
    )
    name = lower_first(name_of(c))
    if d.get("onsetOnTreatment"):
        # inside the diagnosis window but begun on treatment: the rules read it as found
        # with the infection; the card says what follows if it was not
        return Phrase(
            f"{upper_first(dated(c))}: it began after treatment started, inside the "
            f"{d['windowDays']} days after diagnosis and treatment start that are read as "
            "found with the infection. "
            f"If it was not there at diagnosis, it is new: {emergency} now. If it was, {rests}",
            f"{name} since day {c['day']}: if new, emergency MRI",
        )
    if "recordedDay" in c:
        # dated at diagnosis but first recorded on treatment: a back-dated onset may hide
        # a new deficit (an outside clinician's review, 2026-12-07)
        return Phrase(
            f"{upper_first(dated(c))}, first recorded on day {c['recordedDay']}, is read as "
            f"found at diagnosis. If it was not there at diagnosis, it is new: {emergency} "
            f"now. If it was, {rests}",
            f"{name} recorded day {c['recordedDay']}: if new, emergency MRI",
        )
    return Phrase(
        f"{upper_first(dated(c))} recorded at diagnosis: {rests}",
        f"{name} known since diagnosis: compare the neurologic exam",
    )


def _resolved_findings(d: Data) -> Phrase:
    """Findings no longer recorded active: no red flag, but the ordering clinician sees
    them (an outside review: a cauda equina syndrome of day 10, resolved on day 20,
    vanished from the card), each under the status recorded: inactive and in remission
    are not resolved (an outside clinician saw "now recorded resolved" for inactive)."""
    groups: dict[str, list[str]] = {}
    for c in d["conditions"]:
        # before treatment start, by its dates: a finding of an earlier infection read
        # "present at diagnosis (day -578), resolved day -518" (a clinician reviewer)
        before = c.get("day", 0) < 0
        when = relative_date(c) if before else when_found(c)
        dates = ", ".join(part for part in (status_and_when(c, when), ended_on(c)) if part)
        name = lower_first(name_of(c))
        groups.setdefault(ended_status(c), []).append(f"{name} ({dates})" if dates else name)
    said = " ".join(
        f"Now recorded {'as ended' if status == 'ended' else status}: {'; '.join(parts)}."
        for status, parts in groups.items()
    )
    return Phrase(
        f"{said} Not counted as an active red flag; a worse exam now would be.",
        "finding no longer active on record",
    )


def _new_diagnoses_not_read(d: Data) -> Phrase:
    listed = ", ".join(
        f"{lower_first(name_of(c))} ({status_and_when(c, when_found(c) or str(c.get('date')))})"
        for c in d["conditions"]
    )
    more = d["count"] - len(d["conditions"])
    rest = f" and {more} more" if more > 0 else ""
    return Phrase(
        f"Also recorded since treatment started, and not among the diagnoses this service "
        f"reads: {listed}{rest}. If one is a new neurologic deficit or a complication, this "
        "advice does not cover it: examine the patient and image urgently if so.",
        "new diagnoses not read",
    )


KNOWN_REMARKS: dict[str, Callable[[Data], Phrase]] = {
    "known-at-diagnosis": _known_at_diagnosis,
    "known-abscess": _known_abscess,
    "known-deficit": _known_deficit,
    "resolved-finding": _resolved_findings,
    "new-diagnoses-not-read": _new_diagnoses_not_read,
}
