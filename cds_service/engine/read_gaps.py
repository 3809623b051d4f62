"""What the searches read and what they left: a cut-off or partly failed search, whether
the values read reach back to where the rules look from, and the pain scores on record
that could not be used. Judged here once, for the gaps that keep advise-against from
standing and for the words every card says about them (``KeyFigures``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from fhir_mappers.model import DataIssue, MeasurementKind, PatientData

from . import sources
from .assessment import Remark
from .thresholds import RuleSettings


def cut_off_note(kinds: frozenset[str], code: str = "paging-cut-off") -> Remark:
    """Which searches were cut off (or, with ``code`` "search-failed-in-part", failed in
    part): their prefetch keys, sorted only to be the same each time (the card names them
    in its own order)."""
    return Remark(code, {"kinds": sorted(kinds)})


def incomplete_reads(data: PatientData, t0_day: date, settings: RuleSettings) -> list[Remark]:
    """Gaps that a cut-off or partly failed search leaves, for the advise-against check.

    clinical-rules.md: with CRP paging cut off, advise-against stands only if the CRP
    values read reach back to the start of the baseline window (T0 - 7 d): the missing
    older pages may hold the baseline. The same caution applies to pain (the first score
    since T0 may be missing) and to diagnoses (a red flag may be on an unread page).

    A search that failed in part (``failed_in_part``) may miss any result, the latest
    CRP or pain score as well as the first: advise-against never stands on it.
    """
    gaps: list[Remark] = []
    failed = data.failed_in_part
    if not data.cut_off and not failed:
        return gaps
    if sources.CONDITIONS in data.cut_off | failed:
        gaps.append(Remark("conditions-incomplete"))
    if sources.ANTIBIOTICS in data.cut_off | failed:
        # an earlier antibiotic order may be on an unread page: T0 may be earlier
        gaps.append(Remark("antibiotics-incomplete"))
    for kind in (sources.CRP, sources.PAIN):
        if kind in failed:
            gaps.append(Remark(f"{kind}-failed-in-part"))
    for kind, code in ((sources.CRP, "crp-incomplete"), (sources.PAIN, "pain-incomplete")):
        if read_short(data, kind, t0_day, settings):
            gaps.append(Remark(code))
    return gaps


# Results withdrawn by their laboratory or clinician: not a value on record that "could
# not be used", only one that was taken back (FHIR ObservationStatus).
WITHDRAWN = frozenset({"entered-in-error", "cancelled"})


def unusable_pain(issues: Sequence[DataIssue], t0_day: date, eval_day: date) -> int:
    """Pain scores on record since T0 that could not be used (text, off the scale, not
    final): the card says there are some rather than asking for a first. Not a withdrawn
    one, nor one dated after the order, which the card names as such (a code review
    found both counted as "could not be used")."""
    return sum(
        1
        for i in issues
        if i.kind == "pain"
        and not i.kept
        and i.status not in WITHDRAWN
        and (i.when is None or t0_day <= i.when.day <= eval_day)
    )


def read_short(data: PatientData, kind: str, t0_day: date, settings: RuleSettings) -> bool:
    """A cut-off search (not one failed in part) whose values read do not reach back to
    where the rules look from: the start of the baseline window for CRP (its first value
    read may not be the baseline), T0 for pain. Judged here once, for the gap that keeps
    advise-against from standing and for the card's words on every card (``KeyFigures``)."""
    if kind not in data.cut_off or kind in data.failed_in_part:
        return False
    reach = t0_day
    if kind == sources.CRP:
        reach -= timedelta(days=settings.baseline_window_days)
    kind_enum = MeasurementKind.CRP if kind == sources.CRP else MeasurementKind.PAIN
    days = [m.when.day for m in data.measurements if m.kind is kind_enum]
    return not days or min(days) > reach
