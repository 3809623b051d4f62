"""One answer from several readings of the treatment start.

Several active entries of the infection may carry different start dates (an encounter
diagnosis recorded at a readmission, a stale entry): which marks the treatment start is
unknown, so ``evaluate.assess`` decides from each start and this module keeps one answer.
The most cautious wins, so that a second entry can never hide a red flag; among equally
cautious ones, a reading of the chosen entry's infection from its earliest start (T0 is
"the earliest such start", clinical-rules.md: an outside clinician saw a readmission's
entry read "day 9" of a day-29 course, with early-order and first-imaging notes that did
not apply). The card names every start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from .assessment import Assessment, Episode, Recommendation, Remark
from .episode import same_infection
from .thresholds import RuleSettings

# The more cautious answer wins when the data allow several readings.
CAUTION = {
    Recommendation.ADVISE_AGAINST: 0,
    Recommendation.INSUFFICIENT_DATA: 1,
    Recommendation.SUPPORT: 2,
    Recommendation.SUPPORT_URGENT: 3,
    Recommendation.NOT_APPLICABLE: -1,
}


def most_cautious(
    results: Sequence[Assessment], chosen: Episode, settings: RuleSettings
) -> Assessment:
    """The answer kept, with a note naming every start read."""
    kept = max(results, key=lambda a: _preference(a, chosen, settings))
    starts = sorted(
        r.episode.t0.day.isoformat()
        for r in results
        if r.episode is not None and r.episode.t0 is not None
    )
    note = Remark("several-episode-starts", {"starts": starts})
    return replace(kept, notes=(*kept.notes, note))


def _preference(a: Assessment, chosen: Episode, settings: RuleSettings) -> tuple[int, int, int]:
    """The more cautious answer; then a reading of the chosen entry's infection; then the
    earlier start (an undated one last)."""
    reading = a.episode
    same = reading is not None and same_infection(chosen.condition, reading.condition, settings)
    t0 = reading.t0 if reading is not None else None
    start = t0.day.toordinal() if t0 is not None else date.max.toordinal()
    return CAUTION[a.recommendation], int(same), -start
