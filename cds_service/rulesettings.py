"""Rule thresholds from configuration: strings from the environment become typed values."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from cds_service.engine.settings import RuleSettings
from cds_service.settings import SettingsError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, raw: str, target: Any) -> Any:
    text = raw.strip()
    try:
        if target is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if target is int:
            return int(text)
        if target is float:
            return float(text)
    except ValueError:
        raise SettingsError(
            f"rule setting {name}: expected {target.__name__}, got {raw!r}"
        ) from None
    return raw


def rule_settings_from(raw: Mapping[str, Any]) -> RuleSettings:
    """Build RuleSettings, naming the setting and the expected type when a value is wrong."""
    hints = typing.get_type_hints(RuleSettings)
    values = {
        name: _coerce(name, value, hints[name])
        if isinstance(value, str) and name in hints
        else value
        for name, value in raw.items()
    }
    try:
        return RuleSettings.from_mapping(values)
    except ValueError as exc:
        raise SettingsError(f"rules: {exc}") from None
