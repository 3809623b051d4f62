"""RuleSettings: documented defaults, strict parsing of configuration."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.engine import RuleSettings


def test_defaults_are_the_documented_values() -> None:
    s = RuleSettings()
    assert (s.plateau_min_fall_pct, s.rise_pct, s.rise_after_days, s.plateau_after_days) == (
        25.0,
        20.0,
        14,
        28,
    )
    assert (s.pain_worse_points, s.crp_normal_mg_l, s.baseline_window_days) == (2.0, 10.0, 7)
    assert s.data_lookback_days == 7
    assert s.include_other_infective is False


def test_from_mapping_reads_known_keys() -> None:
    s = RuleSettings.from_mapping(
        {"rise_pct": 30, "plateau_after_days": 21, "include_other_infective": True}
    )
    assert s.rise_pct == 30.0 and isinstance(s.rise_pct, float)
    assert s.plateau_after_days == 21
    assert s.include_other_infective is True
    assert RuleSettings.from_mapping(s.to_dict()) == s


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"plateau_fall": 20}, "plateau_fall"),
        ({"rise_pct": "20"}, "rise_pct"),
        ({"rise_pct": True}, "rise_pct"),
        ({"rise_pct": float("nan")}, "rise_pct"),
        ({"plateau_after_days": 28.5}, "plateau_after_days"),
        ({"plateau_after_days": True}, "plateau_after_days"),
        ({"include_other_infective": 1}, "include_other_infective"),
        ({"crp_normal_mg_l": -1}, "crp_normal_mg_l"),
    ],
)
def test_bad_configuration_is_refused_by_name(data: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        RuleSettings.from_mapping(data)
