"""Configuration: defaults, an optional TOML file, then environment variables.

Every setting has a default that works on a laptop, so `spine-cds serve` runs with no
configuration at all. Precedence, lowest first: the defaults below, the file named by
``SPINE_CDS_CONFIG`` (or ``--config``), then ``SPINE_CDS_<NAME>`` environment
variables. Rule thresholds live in the file's ``[rules]`` table or in
``SPINE_CDS_RULE_<NAME>`` variables, read and converted like every other setting into
the engine's ``RuleSettings``, which checks their ranges.

Settings are parsed once at startup; a bad value stops the service with a message
that names the variable and what was expected, rather than failing a request later.

Two conventions of the places the service is deployed are understood:

- ``SPINE_CDS_<NAME>_FILE`` names a file holding the value of ``<name>`` (the convention
  of the official database images), so secrets come from mounted files, not the
  environment that ``docker inspect`` shows;
- Kubernetes injects service-link variables for every Service in the namespace; one
  named ``spine-cds`` gives ``SPINE_CDS_SERVICE_HOST``, ``SPINE_CDS_PORT=tcp://...`` and
  so on. They are recognised by name and value, ignored and reported; anything else
  under the prefix that is not a setting is still refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cds_service.engine.thresholds import RuleSettings

ENV_PREFIX = "SPINE_CDS_"
RULE_ENV_PREFIX = "SPINE_CDS_RULE_"


FILE_SUFFIX = "_FILE"
MAX_SETTING_FILE_BYTES = 64 * 1024

# Kubernetes service-link variables, after the prefix (a Service "spine-cds" or
# "spine-cds-db"): <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<port name>], <NAME>_PORT and
# <NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]. Only the bare _PORT collides with a
# setting; its value (tcp://10.96.0.12:8080) tells the two apart.
_K8S_LINK_NAME = re.compile(
    r"^(?:[A-Z0-9_]*_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?"
    r"|PORT_[0-9]+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)$"
)
_K8S_BARE_PORT_NAME = re.compile(r"^(?:[A-Z0-9_]*_)?PORT$")
_K8S_LINK_VALUE = re.compile(r"^(?:tcp|udp|sctp)://[0-9A-Fa-f.:\[\]]+:[0-9]+$")

log = logging.getLogger("cds_service.settings")

SECRET_SETTINGS = ("audit_hash_key",)
URL_SETTINGS = ("database_url", "redis_url")


def _without_password(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and says what was expected."""


@dataclass(frozen=True)
class Settings:
    """Everything the shell reads from configuration (documented in docs/settings.md)."""

    # Serving
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    worker_timeout_seconds: int = 30
    log_level: str = "info"
    log_format: str = "plain"  # "plain" (control characters escaped) | "json" (one object a line)
    # The URL clients reach the service at, e.g. https://cds.example.org: the JWT aud is
    # checked against it. Required outside development mode (never taken from the request).
    public_base_url: str = ""
    # Proxies (addresses or networks) whose X-Forwarded-Proto/-For are believed; empty: none.
    forwarded_allow_ips: tuple[str, ...] = ()

    # Protocol limits
    max_body_bytes: int = 5 * 1024 * 1024
    max_json_depth: int = 64

    # Data files
    hooks_file: str = ""  # empty: the hooks.json shipped with the service
    valueset_dir: str = ""  # extra value-set files that extend the shipped lists
    database_path: str = "spine-cds.sqlite3"  # SQLite file for feedback, audit, JWT replay
    database_url: str = ""  # postgresql://... : feedback and audit on PostgreSQL instead
    redis_url: str = ""  # redis://... : the JWT replay cache on Redis instead

    # Pilots and audit
    shadow_mode: bool = False  # evaluate and record every call, return no cards
    audit_enabled: bool = True
    audit_retention_days: int = 90
    audit_patient_id: str = "hash"  # "hash" (keyed hash) | "plain" | "omit"
    audit_hash_key: str = ""  # secret for the keyed hash; empty: generated once, kept in the DB
    metrics_enabled: bool = True

    # FHIR access (fallback fetch when prefetch is missing)
    fhir_connect_timeout_seconds: float = 0.2
    fhir_read_timeout_seconds: float = 0.4
    fhir_budget_seconds: float = 0.45
    fhir_max_pages: int = 5
    fhir_max_concurrency: int = 4

    # Reading observations
    accept_preliminary: bool = False
    # nmol/L per mg/L for molar CRP (LOINC 76485-2); on by default with the factor the
    # clinical rules give (1 mg/L = 9.524 nmol/L); 0 turns molar CRP off.
    crp_molar_factor: float = 9.524

    # Security
    dev_mode: bool = False
    auth_required_for_discovery: bool = True
    trusted_clients_file: str = ""
    jwt_leeway_seconds: int = 30
    jwks_refresh_min_interval_seconds: float = 60.0
    cors_origins: tuple[str, ...] = ()  # empty: "*" in development mode, no CORS otherwise

    # Rule thresholds: the [rules] table or SPINE_CDS_RULE_<NAME>, typed and checked here
    rules: RuleSettings = field(default_factory=RuleSettings)

    def public_summary(self) -> dict[str, Any]:
        """The effective configuration, safe to print and log (this holds no secrets)."""
        summary = dataclasses.asdict(self)
        for name in SECRET_SETTINGS:
            if summary[name]:
                summary[name] = "(set)"
        for name in URL_SETTINGS:
            summary[name] = _without_password(summary[name])
        summary["cors_origins"] = list(self.cors_origins)
        summary["forwarded_allow_ips"] = list(self.forwarded_allow_ips)
        return summary


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if f.name != "rules"}


def _coerce(name: str, source: str, raw: Any, target: Any) -> Any:
    """Convert a value from a file or the environment to the declared type of a setting."""
    where = f"{source} {name}"
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{where}: expected a boolean (true/false), got {raw!r}")
    if target is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{where}: expected an integer, got {raw!r}")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{where}: expected an integer, got {raw!r}") from None
    if target is float:
        if isinstance(raw, bool):
            raise SettingsError(f"{where}: expected a number, got {raw!r}")
        try:
            return float(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{where}: expected a number, got {raw!r}") from None
    if target is str:
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise SettingsError(f"{where}: expected a string, got {raw!r}")
        return str(raw)
    origin = typing.get_origin(target)
    if origin is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
        raise SettingsError(f"{where}: expected a list of strings, got {raw!r}")
    if isinstance(target, types.UnionType):  # pragma: no cover - no such field today
        raise SettingsError(f"{where}: unsupported setting type")
    raise SettingsError(f"{where}: unsupported setting type {target!r}")  # pragma: no cover


def _check(settings: Settings) -> Settings:
    """Range checks that a type alone does not express."""
    problems: list[str] = []
    if not 0 < settings.port < 65536:
        problems.append("port must be between 1 and 65535")
    if settings.workers < 1:
        problems.append("workers must be at least 1")
    for name in (
        "fhir_connect_timeout_seconds",
        "fhir_read_timeout_seconds",
        "fhir_budget_seconds",
    ):
        if getattr(settings, name) <= 0:
            problems.append(f"{name} must be greater than 0")
    if settings.fhir_max_pages < 1:
        problems.append("fhir_max_pages must be at least 1")
    if settings.fhir_max_concurrency < 1:
        problems.append("fhir_max_concurrency must be at least 1")
    if settings.max_body_bytes < 1024:
        problems.append("max_body_bytes must be at least 1024")
    if settings.max_json_depth < 8:
        problems.append("max_json_depth must be at least 8")
    if settings.crp_molar_factor < 0:
        problems.append("crp_molar_factor must be 0 (off) or a positive number")
    if settings.log_level.lower() not in {"debug", "info", "warning", "error"}:
        problems.append("log_level must be one of debug, info, warning, error")
    if settings.log_format not in {"plain", "json"}:
        problems.append("log_format must be plain or json")
    if settings.public_base_url:
        base = urlsplit(settings.public_base_url)
        if base.scheme not in {"http", "https"} or not base.hostname:
            problems.append("public_base_url must be an http:// or https:// URL with a host")
        elif base.query or base.fragment or base.username or base.password:
            problems.append("public_base_url must have no query, fragment or credentials")
    if settings.audit_patient_id not in {"hash", "plain", "omit"}:
        problems.append("audit_patient_id must be one of hash, plain, omit")
    if settings.audit_retention_days < 1:
        problems.append("audit_retention_days must be at least 1")
    if settings.database_url and not settings.database_url.startswith(
        ("postgresql://", "postgres://")
    ):
        problems.append("database_url must be a postgresql:// URL (empty: SQLite at database_path)")
    if settings.redis_url and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        problems.append("redis_url must be a redis:// or rediss:// URL")
    if problems:
        raise SettingsError("; ".join(problems))
    return settings


def kubernetes_service_link(name: str, value: str) -> bool:
    """Whether ``name`` (after the ``SPINE_CDS_`` prefix) = ``value`` is a variable that
    Kubernetes injects for a Service, rather than a setting someone wrote."""
    if _K8S_LINK_NAME.match(name):
        return True
    return bool(_K8S_BARE_PORT_NAME.match(name) and _K8S_LINK_VALUE.match(value.strip()))


def _read_setting_file(variable: str, path: str) -> str:
    """The value of a ``SPINE_CDS_<NAME>_FILE`` variable: the file's text, less the
    trailing newline an editor or ``kubectl create secret --from-file`` leaves."""
    if not path.strip():
        raise SettingsError(f"environment variable {variable}: empty, expected a file path")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SETTING_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(
            f"environment variable {variable}: cannot read {path}: {exc.strerror or exc}"
        ) from None
    if len(data) > MAX_SETTING_FILE_BYTES:
        raise SettingsError(
            f"environment variable {variable}: {path} is larger than {MAX_SETTING_FILE_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"environment variable {variable}: {path} is not UTF-8 text") from None
    return text.rstrip("\r\n")


def _rule_settings(raw: Mapping[str, tuple[str, str, Any]]) -> RuleSettings:
    """The rule thresholds, each value converted by the same coercion as every setting.

    ``raw`` maps a threshold's name to (where it came from, the name used there, value).
    """
    hints = typing.get_type_hints(RuleSettings)
    unknown = sorted(f"{raw[name][0]} {raw[name][1]}" for name in raw if name not in hints)
    if unknown:
        raise SettingsError(f"unknown rule setting(s): {', '.join(unknown)}")
    values = {
        name: _coerce(shown, source, value, hints[name])
        for name, (source, shown, value) in raw.items()
    }
    try:
        return RuleSettings(**values)
    except ValueError as exc:
        raise SettingsError(f"rules: {exc}") from None


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    notices: list[str] | None = None,
) -> Settings:
    """Build the settings from defaults, an optional TOML file, the environment and overrides.

    ``overrides`` (from command-line options) win over everything else. What was read but
    ignored (Kubernetes service links) is appended to ``notices`` when given, for the
    caller to log once logging is set up; otherwise it is logged here.
    """
    said: list[str] = []
    env = os.environ if environ is None else environ
    types_by_name = _field_types()
    values: dict[str, Any] = {}
    rules: dict[str, tuple[str, str, Any]] = {}

    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key == "rules":
                if not isinstance(raw, dict):
                    raise SettingsError(f"config file {path}: [rules] must be a table")
                where = f"config file {path}: [rules]"
                rules.update({k: (where, k, v) for k, v in raw.items()})
                continue
            if key not in types_by_name:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, f"config file {path}:", raw, types_by_name[key])

    from_files: dict[str, str] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        rest = key[len(ENV_PREFIX) :]
        name = rest.lower()
        if name in types_by_name:
            try:
                values[name] = _coerce(key, "environment variable", raw, types_by_name[name])
                continue
            except SettingsError:
                if not kubernetes_service_link(rest, raw):
                    raise
        if kubernetes_service_link(rest, raw):
            what = f"the {name} setting" if name in types_by_name else "a setting"
            said.append(f"ignored {key}={raw}: a Kubernetes service-link variable, not {what}")
        elif key.startswith(RULE_ENV_PREFIX):
            rules[key[len(RULE_ENV_PREFIX) :].lower()] = ("environment variable", key, raw)
        elif rest.endswith(FILE_SUFFIX) and name[: -len(FILE_SUFFIX)] in types_by_name:
            target = name[: -len(FILE_SUFFIX)]
            plain = ENV_PREFIX + target.upper()
            if plain in env:
                raise SettingsError(
                    f"environment variable {key}: {plain} is set too; set one or the other"
                )
            from_files[target] = key
            values[target] = _coerce(
                key, "environment variable", _read_setting_file(key, raw), types_by_name[target]
            )
        else:
            raise SettingsError(f"environment variable {key}: unknown setting")

    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in types_by_name:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _coerce(name, "option", raw, types_by_name[name])

    for target, variable in sorted(from_files.items()):
        said.append(f"{target} read from the file named by {variable}")
    if notices is not None:
        notices.extend(said)
    else:
        for notice in said:
            log.info("%s", notice)
    return _check(Settings(**values, rules=_rule_settings(rules)))
