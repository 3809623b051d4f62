"""Rule thresholds, each a setting with the default clinical-rules.md gives.

clinical-rules.md asks that every threshold (25 %, 20 %, 14 and 28 days, 2 points,
10 mg/L, the baseline window, the 7-day CRP recency) be configuration, not a constant
in code: sites tune them here, and the Assessment records the values it was computed with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# The digits a percentage keeps in a finding's data: a fall of 24.99% is never handed on
# as 25.0 beside the 25% it did not reach (the cards format it); float noise is dropped.
PCT_DIGITS = 6


@dataclass(frozen=True)
class RuleSettings:
    """Thresholds of the appropriateness rules (defaults from clinical-rules.md)."""

    # "the latest CRP, measured 28 days or more after T0, has fallen < 25% from baseline
    # (plateau)"; advise-against needs "fallen >= 25% from baseline".
    plateau_min_fall_pct: float = 25.0
    # "the latest CRP ... is > 20% above the lowest earlier CRP since T0 (a rise ...)".
    rise_pct: float = 20.0
    # "the latest CRP, measured more than 14 days after T0" (rise rule).
    rise_after_days: int = 14
    # "measured 28 days or more after T0" (plateau rule).
    plateau_after_days: int = 28
    # "latest pain score (0-10) is >= 2 points above its lowest value since T0".
    pain_worse_points: float = 2.0
    # "(or is below the normal limit, 10 mg/L)".
    crp_normal_mg_l: float = 10.0
    # "the baseline CRP is the highest value in [T0 - 7 d, T0 + 7 d]".
    baseline_window_days: int = 7
    # "Only data from T0 - 7 days onward count".
    data_lookback_days: int = 7
    # "the latest CRP is recent: taken no more than 7 days before the order" (advise-against;
    # "weekly markers are the usual rhythm"): also when the first on-treatment CRP is due,
    # "about day 7" (response.none_on_treatment).
    crp_max_age_days: int = 7
    # "M46.5x (other infective spondylopathies; setting)": out of scope unless enabled.
    include_other_infective: bool = False
    # "T0 = the earliest such start within [episode date - 14 d, episode date + 28 d]"
    # (clinical-rules.md, 2026-12-06): antibiotic orders outside it do not move T0.
    antibiotic_before_days: int = 14
    antibiotic_after_days: int = 28
    # "a deficit or complication ... no later than 3 days (setting diagnosis_window_days)
    # after the later of T0 and the episode date ... is known at diagnosis, not new".
    diagnosis_window_days: int = 3
    # Slow fall: "fallen at least 25% but less than 50% from baseline (setting
    # slow_fall_max_pct), and is still above 27.5 mg/L (setting slow_fall_crp_mg_l; Yoon
    # 2010: a week-4 CRP above 2.75 mg/dL ... predicted failure)".
    slow_fall_max_pct: float = 50.0
    slow_fall_crp_mg_l: float = 27.5
    # Yoon 2010: "ESR > 55 mm/h with CRP > 2.75 mg/dL" at week 4 predicted failure; an
    # advise-against card with both above says so instead of reassuring.
    yoon_esr_mm_h: float = 55.0
    # Discordant pair: "less than 12 hours apart (setting) and differ by more than 50% of
    # the lower value (setting)".
    discordant_max_hours: float = 12.0
    discordant_min_pct: float = 50.0
    # Adults only (clinical-rules.md, "Imaging", 2026-12-06): "Patients under 18 (setting
    # min_age_years ...): no card; the evidence is adult-only".
    min_age_years: int = 18
    # Prior imaging (clinical-rules.md, "Imaging", 2026-12-06): "when the red flag predates
    # a study done in the last 3 days (setting), the card says the finding was seen on it".
    prior_study_days: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool) and value < 0:
                raise ValueError(f"setting {f.name!r} must not be negative (got {value!r})")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RuleSettings:
        """Build settings from configuration; unknown keys and wrong types are refused.

        A typo in a site's configuration must not silently fall back to a default,
        so every problem raises ValueError naming the key.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown rule setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls, key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"setting {key!r} must be true or false (got {value!r})")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(
                        f"setting {key!r} must be a whole number of days (got {value!r})"
                    )
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"setting {key!r} must be a number (got {value!r})")
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError(f"setting {key!r} must be a finite number (got {value!r})")
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
