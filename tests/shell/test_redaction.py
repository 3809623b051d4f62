"""One redaction for every form a password takes in a URL setting, and in the errors that
quote one (tests/test_attacks_round3.py runs the same forms through serve, report and
audit-purge)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds_service.redaction import redact_text, redact_url, url_secrets
from cds_service.settings import SettingsError, load_settings

SECRET = "Hunter2-s3cret"

FORMS = {
    "userinfo": f"postgresql://spine:{SECRET}@db.example.org:5432/spine",
    "userinfo-no-user": f"redis://:{SECRET}@cache.example.org:6379/0",
    "percent-encoded": "postgresql://spine:Hunter2%2Ds3cret@db.example.org/spine",
    "badly-encoded": f"postgresql://spine:p%zz{SECRET}@db.example.org/spine",
    "raw-at-in-password": f"postgresql://spine:a@{SECRET}@db.example.org/spine",
    "raw-slash-in-password": f"postgresql://spine:a/{SECRET}@db.example.org/spine",
    "query-password": f"postgresql://db.example.org/spine?sslmode=require&password={SECRET}",
    "query-first": f"redis://cache.example.org:6379/0?password={SECRET}&db=1",
    "query-sslpassword": f"postgresql://db.example.org/spine?sslpassword={SECRET}",
    "rediss-userinfo": f"rediss://default:{SECRET}@cache.example.org:6380",
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_of_password_is_hidden_in_the_url(form: str) -> None:
    url = FORMS[form]
    shown = redact_url(url)
    assert SECRET not in shown and "Hunter2%2Ds3cret" not in shown
    assert "***" in shown
    assert "example.org" in shown  # where it points is still said


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_driver_error_quoting_the_password_is_redacted(form: str) -> None:
    url = FORMS[form]
    secret = max(url_secrets(url), key=len)
    message = f'cannot connect to {url}: invalid percent-encoded token: "{secret}"'
    shown = redact_text(message, [url])
    assert SECRET not in shown and secret not in shown
    assert "invalid percent-encoded token" in shown


def test_a_url_without_a_password_is_unchanged() -> None:
    for url in ("postgresql://spine@db/spine", "redis://cache:6379/0", "", "not a url"):
        assert redact_url(url) == url


def test_any_url_with_a_password_in_a_message_is_redacted() -> None:
    text = f"failed: postgresql://u:{SECRET}@h/db and redis://h?password={SECRET}"
    assert SECRET not in redact_text(text)


def test_settings_redact_their_own_secrets() -> None:
    settings = load_settings(
        environ={
            "SPINE_CDS_DATABASE_URL": f"postgresql://spine@db/spine?password={SECRET}",
            "SPINE_CDS_AUDIT_HASH_KEY": "k" * 32,
        }
    )
    summary = str(settings.public_summary())
    assert SECRET not in summary and "k" * 32 not in summary
    said = settings.redact(f'error: "{SECRET}" and key {"k" * 32}')
    assert SECRET not in said and "k" * 32 not in said


def test_a_file_variable_holding_another_secret_is_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"SPINE_CDS_FHIR_MAX_PAGES_FILE": str(path)})
    assert "SPINE_CDS_FHIR_MAX_PAGES_FILE: expected an integer" in str(refused.value)
    assert SECRET not in str(refused.value)
    with pytest.raises(SettingsError) as plain:
        load_settings(environ={"SPINE_CDS_FHIR_MAX_PAGES": "ten"})
    assert "got 'ten'" in str(plain.value)  # a value written in the environment is quoted
