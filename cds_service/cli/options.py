"""What several commands share: reading settings, the ``--date`` option's type, and the
FHIR server's options."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import click

from cds_service.settings import Settings, SettingsError, load_settings

DATE = click.DateTime(formats=["%Y-%m-%d"])
# The variable ``--token`` falls back to: a token in it stays out of the process list.
TOKEN_ENV = "FHIR_ACCESS_TOKEN"  # noqa: S105 (a variable's name, not a token)

F = TypeVar("F", bound=Callable[..., Any])


def fhir_server_option(help: str, required: bool = True) -> Callable[[F], F]:
    """``--fhir-server``: the FHIR server's base URL, as the command uses it."""
    return click.option("--fhir-server", required=required, help=help)


def token_option(help: str) -> Callable[[F], F]:
    """``--token``, read from FHIR_ACCESS_TOKEN when not given; ``help`` says what it is
    used for, the variable is said after it."""
    return click.option(
        "--token",
        envvar=TOKEN_ENV,
        help=f"{help} [env {TOKEN_ENV}, which keeps it out of the process list].",
    )


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
