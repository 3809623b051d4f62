"""The settings loader: precedence, one coercion for every value, refusals by name, masking.

One loader reads defaults, a TOML file, ``SPINE_CDS_*`` variables and command-line
overrides, and converts every value (rule thresholds included) with the same rules, so
a value means the same wherever it is written.
"""

from __future__ import annotations

from pathlib import Path

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
        ({"SPINE_CDS_PORT": "eighty"}, "SPINE_CDS_PORT: expected an integer"),
        ({"SPINE_CDS_RULE_RISE_PCT": "lots"}, "SPINE_CDS_RULE_RISE_PCT: expected a number"),
        ({"SPINE_CDS_RULE_RISE_AFTER_DAYS": "1.5"}, "SPINE_CDS_RULE_RISE_AFTER_DAYS"),
        ({"SPINE_CDS_RULE_RISE_PCT": "-5"}, "rise_pct"),
        ({"SPINE_CDS_SHADOW_MODE": "perhaps"}, "expected a boolean"),
        ({"SPINE_CDS_WORKERS": "0"}, "workers must be at least 1"),
    ],
)
def test_a_bad_value_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env)


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(environ={}, config_file=write(tmp_path, "prot = 1\n"))
    with pytest.raises(SettingsError, match=r"\[rules\] rise_percent"):
        load_settings(environ={}, config_file=write(tmp_path, "[rules]\nrise_percent = 1\n"))


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
