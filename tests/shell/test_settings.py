"""The settings loader: precedence, one conversion for every value, refusals by name, masking.

One loader reads defaults, a TOML file, ``SPINE_CDS_*`` variables and command-line
overrides, and pydantic converts every value (rule thresholds included) by the same
rules, so a value means the same wherever it is written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from cds_service.engine.thresholds import RuleSettings
from cds_service.settings import Settings, SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spine-cds.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_work_with_no_configuration_at_all() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.rules == RuleSettings()
    assert settings.crp_molar_factor == 9.524


def test_precedence_defaults_then_file_then_environment_then_options(tmp_path: Path) -> None:
    config = write(tmp_path, "port = 9001\nworkers = 3\nlog_level = 'debug'\n")
    env = {"SPINE_CDS_WORKERS": "5", "SPINE_CDS_LOG_LEVEL": "warning"}
    settings = load_settings(environ=env, config_file=config, overrides={"log_level": "error"})
    assert settings.port == 9001  # file over default
    assert settings.workers == 5  # environment over file
    assert settings.log_level == "error"  # option over environment
    assert settings.fhir_max_pages == Settings().fhir_max_pages  # default kept


def test_the_config_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path, "port = 9002\n")
    assert load_settings(environ={"SPINE_CDS_CONFIG": str(config)}).port == 9002


def test_rule_thresholds_follow_the_same_precedence_and_coercion(tmp_path: Path) -> None:
    config = write(tmp_path, "[rules]\nrise_pct = 30\ncrp_max_age_days = 10\n")
    env = {"SPINE_CDS_RULE_CRP_MAX_AGE_DAYS": "5", "SPINE_CDS_RULE_INCLUDE_OTHER_INFECTIVE": "yes"}
    rules = load_settings(environ=env, config_file=config).rules
    assert rules.rise_pct == 30.0 and isinstance(rules.rise_pct, float)  # int in TOML
    assert rules.crp_max_age_days == 5  # environment over file
    assert rules.include_other_infective is True


def test_every_threshold_of_rule_settings_is_read_without_being_listed(tmp_path: Path) -> None:
    """A field added to RuleSettings is a setting at once, in the file and the environment."""
    changed: dict[str, Any] = {}
    for threshold in dataclasses.fields(RuleSettings):
        default = getattr(RuleSettings(), threshold.name)
        changed[threshold.name] = not default if isinstance(default, bool) else default + 1
    lines = [f"{name} = {str(value).lower()}" for name, value in changed.items()]
    config = write(tmp_path, "[rules]\n" + "\n".join(lines) + "\n")
    assert load_settings(environ={}, config_file=config).rules == RuleSettings(**changed)
    env = {f"SPINE_CDS_RULE_{name.upper()}": str(value) for name, value in changed.items()}
    assert load_settings(environ=env).rules == RuleSettings(**changed)


def test_an_empty_variable_counts_as_not_set(tmp_path: Path) -> None:
    config = write(tmp_path, "workers = 3\n")
    env = {"SPINE_CDS_WORKERS": "", "SPINE_CDS_AUDIT_ENABLED": "", "SPINE_CDS_PORT": ""}
    settings = load_settings(environ=env, config_file=config)
    assert (settings.workers, settings.audit_enabled, settings.port) == (3, True, 8080)


def test_settings_made_in_code_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINE_CDS_PORT", "9999")
    assert Settings().port == 8080
    assert Settings(port=81).port == 81
    assert load_settings().port == 9999  # the loader reads os.environ when given none


@pytest.mark.parametrize("text", ["", "0", "false", "off", "no"])
def test_a_boolean_means_the_same_for_a_setting_and_a_threshold(text: str) -> None:
    env = {"SPINE_CDS_SHADOW_MODE": text, "SPINE_CDS_RULE_INCLUDE_OTHER_INFECTIVE": text}
    settings = load_settings(environ=env)
    assert settings.shadow_mode is False and settings.rules.include_other_infective is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SPINE_CDS_PORTT": "1"}, "SPINE_CDS_PORTT: unknown setting"),
        ({"SPINE_CDS_RULE_RISE_PERCENT": "1"}, "SPINE_CDS_RULE_RISE_PERCENT"),
        ({"SPINE_CDS_RULES": '{"rise_pct": 1}'}, "SPINE_CDS_RULES: unknown setting"),
        ({"SPINE_CDS_RULE": "1"}, "SPINE_CDS_RULE: unknown setting"),
        ({"SPINE_CDS_PORT": "eighty"}, "SPINE_CDS_PORT: expected an integer"),
        ({"SPINE_CDS_RULE_RISE_PCT": "lots"}, "SPINE_CDS_RULE_RISE_PCT: expected a number"),
        ({"SPINE_CDS_RULE_RISE_AFTER_DAYS": "1.5"}, "SPINE_CDS_RULE_RISE_AFTER_DAYS"),
        ({"SPINE_CDS_RULE_RISE_PCT": "-5"}, "rise_pct"),
        ({"SPINE_CDS_SHADOW_MODE": "perhaps"}, "expected a boolean"),
        ({"SPINE_CDS_WORKERS": "0"}, "workers must be at least 1"),
        ({"SPINE_CDS_MAX_JSON_DEPTH": "4"}, "max_json_depth must be at least 8"),
        ({"SPINE_CDS_FHIR_BUDGET_SECONDS": "0"}, "fhir_budget_seconds must be greater than 0"),
        ({"SPINE_CDS_PORT": "70000"}, "port must be between 1 and 65535"),
        # no number of seconds or threshold is infinite (an integration review's
        # jwks_max_age_seconds=inf kept a withdrawn key trusted for ever)
        ({"SPINE_CDS_JWKS_MAX_AGE_SECONDS": "inf"}, "JWKS_MAX_AGE_SECONDS: .*finite"),
        ({"SPINE_CDS_JWKS_REFRESH_MIN_INTERVAL_SECONDS": "1e400"}, "INTERVAL_SECONDS: .*finite"),
        ({"SPINE_CDS_RULE_CRP_NORMAL_MG_L": "nan"}, "CRP_NORMAL_MG_L: .*finite"),
        (
            {"SPINE_CDS_LOG_FORMAT": "xml"},
            "SPINE_CDS_LOG_FORMAT: expected one of plain, json, got 'xml'",
        ),
        (
            {"SPINE_CDS_LOG_LEVEL": "loud"},
            "SPINE_CDS_LOG_LEVEL: expected one of debug, info, warning, error, got 'loud'",
        ),
        (
            {"SPINE_CDS_AUDIT_PATIENT_ID": "keep"},
            "SPINE_CDS_AUDIT_PATIENT_ID: expected one of hash, plain, omit, got 'keep'",
        ),
    ],
)
def test_a_bad_value_is_refused_by_name(env: dict[str, str], named: str | None) -> None:
    if named is None:
        assert load_settings(environ=env).log_level == "warning"
        return
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


def test_every_wrong_value_is_named_at_once(tmp_path: Path) -> None:
    config = write(tmp_path, "workers = 'many'\n[rules]\nrise_after_days = 1.5\n")
    env = {"SPINE_CDS_PORT": "eighty", "SPINE_CDS_RULE_RISE_PCT": "lots"}
    with pytest.raises(SettingsError) as refused:
        load_settings(environ=env, config_file=config)
    assert set(str(refused.value).split("; ")) == {
        "environment variable SPINE_CDS_PORT: expected an integer, got 'eighty'",
        f"config file {config}: workers: expected an integer, got 'many'",
        "environment variable SPINE_CDS_RULE_RISE_PCT: expected a number, got 'lots'",
        f"config file {config}: [rules] rise_after_days: expected an integer, got 1.5",
    }


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(environ={}, config_file=write(tmp_path, "prot = 1\n"))
    with pytest.raises(SettingsError, match=r"\[rules\] rise_percent"):
        load_settings(environ={}, config_file=write(tmp_path, "[rules]\nrise_percent = 1\n"))
    with pytest.raises(SettingsError, match="unknown setting 'rule'"):  # the table is [rules]
        load_settings(environ={}, config_file=write(tmp_path, "[rule]\nrise_pct = 1\n"))


def test_public_summary_masks_secrets_and_passwords() -> None:
    env = {
        "SPINE_CDS_AUDIT_HASH_KEY": "a-long-secret-key",
        "SPINE_CDS_DATABASE_URL": "postgresql://cds:hunter2@db.internal:5432/cds",
        "SPINE_CDS_REDIS_URL": "redis://:redispass@cache.internal:6379/0",
    }
    summary = load_settings(environ=env).public_summary()
    text = repr(summary)
    for secret in ("a-long-secret-key", "hunter2", "redispass"):
        assert secret not in text
    assert summary["audit_hash_key"] == "(set)"
    assert "db.internal:5432/cds" in summary["database_url"]
    assert summary["rules"]["crp_max_age_days"] == 7  # thresholds are shown, not hidden
