"""A relapse or recurrence recorded on the infection's Condition (``clinicalStatus``).

The treatment start is read from the Condition's own date (clinical-rules.md, "T0"),
which a relapse recorded on the original entry leaves at the first course, months back:
the CRP baseline, the 28-day marks and the fall are then those of the first course, and a
relapse whose CRP is falling slowly read "improving" against it (an outside clinician's
review, 2026-12-07: "CRP 150→70 mg/L, -53%" on day 229, while the relapse course's CRP
had gone 120→70 mg/L by its day 28). The design notes take relapse and recurrence as
active and say nothing of their treatment start, so the service does not advise against
imaging on a relapse: the card says the course cannot be told apart and names the
antibiotic order that started after the first course's window, if any (the service's own
reading, to be confirmed by the clinical reviewers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fhir_mappers.model import AntibioticStart

from .assessment import Episode, Remark
from .records import antibiotic_to_dict
from .thresholds import RuleSettings

RELAPSE_STATUSES = frozenset({"recurrence", "relapse"})


def relapse_recorded(
    episode: Episode, antibiotics: Sequence[AntibioticStart], settings: RuleSettings
) -> Remark | None:
    """The remark that blocks advise-against on a relapse or recurrence, with the first
    antibiotic order started after the window in which the first course's start is read."""
    status = episode.condition.clinical_status
    if status not in RELAPSE_STATUSES:
        return None
    data: dict[str, object] = {"status": status}
    start = episode.episode_start
    if start is not None:
        data["since"] = start.day.isoformat()
        window_end = start.day + timedelta(days=settings.antibiotic_after_days)
        later = sorted(
            (a for a in antibiotics if a.when.day > window_end),
            key=lambda a: (a.when.instant, a.reference),
        )
        if later:
            data["laterOrder"] = antibiotic_to_dict(later[0])
    return Remark("relapse-recorded", data)
