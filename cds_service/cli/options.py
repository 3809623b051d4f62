"""What several commands share: reading settings, and the ``--date`` option's type."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from cds_service.settings import Settings, SettingsError, load_settings

DATE = click.DateTime(formats=["%Y-%m-%d"])


def settings_or_exit(
    config: str | None, overrides: dict[str, Any], notices: list[str] | None = None
) -> Settings:
    """The settings, or the command stops with the configuration error."""
    try:
        return load_settings(config_file=config, overrides=overrides, notices=notices)
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def order_date(value: datetime | None) -> date:
    """``--date`` or today (the shell may read the clock; the examples never do)."""
    return value.date() if value is not None else date.today()
