"""Configuration: defaults, an optional TOML file, then environment variables.

Every setting has a default that works on a laptop, so `spine-cds serve` runs with no
configuration at all. ``Settings`` is a pydantic-settings model; precedence, lowest
first: the defaults, the file named by ``SPINE_CDS_CONFIG`` (or ``--config``),
``SPINE_CDS_<NAME>`` variables, then command-line options. Rule thresholds are every
field of the engine's ``RuleSettings``: the file's ``[rules]`` table or
``SPINE_CDS_RULE_<NAME>``, converted like any setting; RuleSettings checks their ranges.

Settings are parsed once at startup. A bad value or an unknown ``SPINE_CDS_`` variable
stops the service with a message naming it as it was written (``load_settings`` words
pydantic's findings so). Two conventions of the places the service runs are understood:

- ``SPINE_CDS_<NAME>_FILE`` names a file holding the value of ``<name>`` (the convention
  of the official database images), so secrets come from mounted files, not the
  environment that ``docker inspect`` shows;
- Kubernetes injects service-link variables for every Service in the namespace; one
  named ``spine-cds`` gives ``SPINE_CDS_SERVICE_HOST``, ``SPINE_CDS_PORT=tcp://...`` and
  so on. They are recognised by name and value, ignored and reported.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cds_service.engine.thresholds import RuleSettings
from cds_service.fhir.settings import FhirSettings
from cds_service.redaction import redact_text, redact_url
from cds_service.settings_sources import SettingsError as SettingsError  # its home is there
from cds_service.settings_sources import kubernetes_service_link, read_setting_file, refusal
from cds_service.trend_servers import trend_setting_problems

ENV_PREFIX = "SPINE_CDS_"


# An origin as a browser sends it: http(s), a host of letters, digits, dots and hyphens,
# an optional port; no path, wildcard, brackets or userinfo (settings ``cors_origins``).
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::(?P<port>[0-9]{1,5}))?"
)


def _is_origin(text: str) -> bool:
    """``text`` is an origin as a browser sends it, with a port in range."""
    found = _ORIGIN.fullmatch(text)
    return found is not None and (found["port"] is None or 0 < int(found["port"]) < 65536)


RULE_ENV_PREFIX = "SPINE_CDS_RULE_"

log = logging.getLogger("cds_service.settings")


def _comma_separated(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# A log level as gunicorn and ``logging`` take it; "INFO" is read as "info".
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)]
# "plain": control characters escaped; "json": one object a line.
LogFormat = Literal["plain", "json"]
# What the audit keeps of a patient id: a keyed hash, the id, or nothing.
PatientIdInAudit = Literal["hash", "plain", "omit"]


# A list: "a, b" in the environment, a list of strings (or that same string) in the file.
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]


class Settings(BaseSettings):
    """Everything the shell reads from configuration (documented in docs/settings.md)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # SPINE_CDS_RULE_<NAME>: the threshold <name> of ``rules``, by its alias "rule".
        env_prefix_target="all",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        # "inf" or "1e400" is no number of seconds: an integration review's
        # jwks_max_age_seconds=inf kept a withdrawn key trusted for ever
        allow_inf_nan=False,
    )

    # Serving
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(2, ge=1)
    # Calls each worker answers at once (threaded workers, cds_service/worker.py); 1: sync workers.
    threads: int = Field(8, ge=1)
    worker_timeout_seconds: int = 30
    log_level: LogLevel = "info"
    log_format: LogFormat = "plain"
    # The URL clients reach the service at, e.g. https://cds.example.org: the JWT aud is
    # checked against it. Required outside development mode (never taken from the request).
    public_base_url: str = ""
    # Proxies (addresses or networks) whose X-Forwarded-Proto/-For are believed; empty: none.
    forwarded_allow_ips: Names = ()

    # Protocol limits
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(64, ge=8)

    # Data files
    hooks_file: str = ""  # empty: the hooks.json shipped with the service
    valueset_dir: str = ""  # extra value-set files that extend the shipped lists
    database_path: str = "spine-cds.sqlite3"  # SQLite file for feedback, audit, JWT replay
    database_url: str = ""  # postgresql://... : feedback and audit on PostgreSQL instead
    redis_url: str = ""  # redis://... : the JWT replay cache on Redis instead

    # Pilots and audit
    shadow_mode: bool = False  # evaluate and record every call, return no cards
    # the Argonaut PAMA rating in systemActions (docs/cards.md: the AUC program is paused)
    appropriateness_rating: bool = True
    audit_enabled: bool = True
    audit_retention_days: int = Field(90, ge=1)
    # how long a worker's audit writer waits for more records before it writes a batch
    audit_batch_ms: int = Field(50, ge=0, le=1000)
    audit_patient_id: PatientIdInAudit = "hash"
    audit_hash_key: str = ""  # secret for the keyed hash; empty: generated once, kept in the DB
    metrics_enabled: bool = True
    # The EHR applies delete and create suggestions (the CDS Hooks sandbox applies only
    # updates): the study that answers a card's question replaces the draft by a delete
    # and a create instead of an update of its code (clinical-rules.md, "Imaging").
    replace_with_delete_create: bool = False

    # FHIR access (fallback fetch when prefetch is missing)
    fhir_connect_timeout_seconds: float = Field(0.2, gt=0)
    fhir_read_timeout_seconds: float = Field(0.4, gt=0)
    fhir_budget_seconds: float = Field(0.45, gt=0)
    fhir_max_pages: int = Field(5, ge=1)
    fhir_max_concurrency: int = Field(8, ge=1)

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
    # How old cached client keys may grow before they are read again: a key a client
    # removed from its key set is still trusted until then.
    jwks_max_age_seconds: float = Field(300.0, gt=0)
    cors_origins: Names = ()  # empty: "*" in development mode, no CORS otherwise
    # The trend app (/trend/): FHIR servers (iss) it may launch against besides the trusted
    # clients' fhir_servers (and, in development mode, loopback servers); the EHR origins
    # that may show it in a frame (CSP frame-ancestors).
    trend_fhir_servers: Names = ()
    trend_frame_ancestors: Names = ()

    # Rule thresholds: the [rules] table or SPINE_CDS_RULE_<NAME>
    rules: RuleSettings = Field(
        default_factory=RuleSettings, validation_alias=AliasChoices("rules", "rule")
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` is its arguments over the defaults; ``load_settings`` reads."""
        return (init_settings,)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        """The checks that a type and a bound (``Field(ge=...)``) do not express."""
        problems: list[str] = []
        if not 0 < self.port < 65536:
            problems.append("port must be between 1 and 65535")
        if self.crp_molar_factor < 0:
            problems.append("crp_molar_factor must be 0 (off) or a positive number")
        if self.public_base_url:
            base = urlsplit(self.public_base_url)
            if base.scheme not in {"http", "https"} or not base.hostname:
                problems.append("public_base_url must be an http:// or https:// URL with a host")
            elif base.query or base.fragment or base.username or base.password:
                problems.append("public_base_url must have no query, fragment or credentials")
            elif base.path.rstrip("/").endswith(_CDS_SERVICES):
                problems.append(_doubled_cds_services(self.public_base_url))
        for origin in self.cors_origins:
            # a browser's Origin is scheme://host[:port], nothing more: anything else never
            # matches, and flask-cors reads an entry with "*" or "[" as a pattern that need
            # only match the start of an origin (an attack suite: "https://*" allowed every
            # https page)
            if not _is_origin(origin):
                problems.append(
                    f"cors_origins: {origin!r} is not an origin (scheme://host[:port], e.g. "
                    "https://sandbox.cds-hooks.org)"
                )
        if self.database_url.count("@") > 1:
            # the driver quotes what follows a raw "@" of the password in its errors, which
            # the log's masking cannot know (an attack suite saw part of one at startup)
            problems.append("database_url: percent-encode an @ in the password (%40)")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            problems.append(
                "database_url must be a postgresql:// URL (empty: SQLite at database_path)"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append("redis_url must be a redis:// or rediss:// URL")
        problems += trend_setting_problems(self.trend_fhir_servers, self.trend_frame_ancestors)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def fhir(self) -> FhirSettings:
        """The FHIR client's and the prefetch check's slice of the settings."""
        return FhirSettings(
            connect_timeout_seconds=self.fhir_connect_timeout_seconds,
            read_timeout_seconds=self.fhir_read_timeout_seconds,
            budget_seconds=self.fhir_budget_seconds,
            max_pages=self.fhir_max_pages,
            max_concurrency=self.fhir_max_concurrency,
        )

    def public_summary(self) -> dict[str, Any]:
        """The effective configuration, safe to print and log (this holds no secrets)."""
        summary = self.model_dump(mode="json")
        if summary["audit_hash_key"]:
            summary["audit_hash_key"] = "(set)"
        for name in ("database_url", "redis_url"):
            summary[name] = redact_url(summary[name])
        return summary

    def redact(self, message: str) -> str:
        """``message`` (an error to print or log) without the passwords of the database
        and Redis URLs, in any form, nor the audit hash key (cds_service/redaction.py)."""
        secrets = [self.audit_hash_key] if self.audit_hash_key else []
        return redact_text(message, (self.database_url, self.redis_url), secrets)


_CDS_SERVICES = "/cds-services"


def _doubled_cds_services(url: str) -> str:
    """Why a ``public_base_url`` ending in /cds-services is refused, and what to give.

    The service adds /cds-services to the base itself, so every client JWT's expected
    ``aud`` became .../cds-services/cds-services/<id> and every EHR call a 401 (an
    outside review: an easy slip, since the EHR is handed the discovery URL)."""
    parts = urlsplit(url)
    base = parts._replace(path=parts.path.rstrip("/").removesuffix(_CDS_SERVICES)).geturl()
    return (
        f"public_base_url {url!r} ends in {_CDS_SERVICES}, which the service adds itself: "
        f"give {base!r} (discovery is then {base}{_CDS_SERVICES}, and a client JWT's aud "
        f"{base}{_CDS_SERVICES}/<service id>)"
    )


# The settings a SPINE_CDS_<NAME> (or _FILE) variable may name; thresholds go by RULE_.
_NAMES = Settings.model_fields.keys() - {"rules"}


class _Environment(EnvSettingsSource):
    """The variables given, not always os.environ; an empty one counts as not set."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self.variables.items() if value}


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
    env = os.environ if environ is None else environ
    said: list[str] = []
    origin: dict[tuple[str, ...], str] = {}  # where each value came from, for messages
    toml: list[TomlConfigSettingsSource] = []

    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        if not Path(path).is_file():
            raise SettingsError(f"config file {path} does not exist")
        try:
            toml.append(TomlConfigSettingsSource(Settings, toml_file=Path(path)))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        data = toml[0].toml_data
        for key, value in data.items():
            if key == "rules" and not isinstance(value, dict):
                raise SettingsError(f"config file {path}: [rules] must be a table")
            if key != "rules" and key not in _NAMES:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            origin[(key,)] = f"config file {path}: {key}"
        origin |= {("rules", k): f"config file {path}: [rules] {k}" for k in data.get("rules", {})}

    variables: dict[str, str] = {}
    from_files: dict[str, str] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        rest = key[len(ENV_PREFIX) :]
        name = rest.lower()
        if kubernetes_service_link(rest, raw):
            what = f"the {name} setting" if name in _NAMES else "a setting"
            said.append(f"ignored {key}={raw}: a Kubernetes service-link variable, not {what}")
        elif name in _NAMES:
            variables[key] = raw
            origin[(name,)] = f"environment variable {key}"
        elif key.startswith(RULE_ENV_PREFIX):
            variables[key] = raw
            origin[("rules", key[len(RULE_ENV_PREFIX) :].lower())] = f"environment variable {key}"
        elif rest.endswith("_FILE") and (target := name.removesuffix("_file")) in _NAMES:
            if (plain := ENV_PREFIX + target.upper()) in env:
                raise SettingsError(
                    f"environment variable {key}: {plain} is set too; set one or the other"
                )
            from_files[target] = read_setting_file(key, raw)
            origin[(target,)] = f"environment variable {key}"
            said.append(f"{target} read from the file named by {key}")
        else:
            raise SettingsError(f"environment variable {key}: unknown setting")

    options = {name: value for name, value in (overrides or {}).items() if value is not None}
    for name in options:
        if name not in _NAMES:
            raise SettingsError(f"unknown setting {name!r}")
        origin[(name,)] = f"option {name}"

    # Highest precedence first; a value and its _FILE variable never both reach here.
    sources = (
        InitSettingsSource(Settings, options),
        InitSettingsSource(Settings, from_files),
        _Environment(variables),
        *toml,
    )
    try:  # BaseSettings' own keyword, which mypy does not see past pydantic's fields
        settings = Settings(_build_sources=(sources, options))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise refusal(exc, origin, frozenset((name,) for name in from_files)) from None
    if notices is not None:
        notices.extend(said)
    else:
        for notice in said:
            log.info("%s", notice)
    return settings
