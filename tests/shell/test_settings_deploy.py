"""Settings where the service is deployed: Kubernetes service links and ``*_FILE`` secrets.

Kubernetes injects ``<SERVICE>_SERVICE_HOST``, ``<SERVICE>_PORT=tcp://...`` and friends for
every Service in the namespace; a Service named ``spine-cds`` puts them under the
settings' own prefix. They must not stop the service, nor be taken for settings, while
a mistyped setting is still refused by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cds_service.settings import Settings, SettingsError, load_settings

# What kubelet injects for `kind: Service, name: spine-cds` with port 8080 named "http".
KUBERNETES_LINKS = {
    "SPINE_CDS_SERVICE_HOST": "10.96.0.12",
    "SPINE_CDS_SERVICE_PORT": "8080",
    "SPINE_CDS_SERVICE_PORT_HTTP": "8080",
    "SPINE_CDS_PORT": "tcp://10.96.0.12:8080",
    "SPINE_CDS_PORT_8080_TCP": "tcp://10.96.0.12:8080",
    "SPINE_CDS_PORT_8080_TCP_PROTO": "tcp",
    "SPINE_CDS_PORT_8080_TCP_PORT": "8080",
    "SPINE_CDS_PORT_8080_TCP_ADDR": "10.96.0.12",
}
# ... and for a Service "spine-cds-postgres" (and one whose name starts with "spine-cds-rule").
OTHER_SERVICE_LINKS = {
    "SPINE_CDS_POSTGRES_SERVICE_HOST": "10.96.0.40",
    "SPINE_CDS_POSTGRES_SERVICE_PORT": "5432",
    "SPINE_CDS_POSTGRES_PORT": "tcp://10.96.0.40:5432",
    "SPINE_CDS_POSTGRES_PORT_5432_TCP_ADDR": "10.96.0.40",
    "SPINE_CDS_RULE_ENGINE_SERVICE_HOST": "10.96.0.41",
    "SPINE_CDS_RULE_ENGINE_PORT": "tcp://[fd00::41]:80",
}


def test_the_service_starts_with_kubernetes_links_for_a_service_named_spine_cds() -> None:
    notices: list[str] = []
    settings = load_settings(environ=KUBERNETES_LINKS, notices=notices)
    assert settings == Settings()  # none of them was taken for a setting
    assert settings.port == 8080
    ignored = {notice.split("=", 1)[0].removeprefix("ignored ") for notice in notices}
    assert ignored == set(KUBERNETES_LINKS)
    assert all("Kubernetes service-link variable" in notice for notice in notices)
    port_notice = next(n for n in notices if n.startswith("ignored SPINE_CDS_PORT="))
    assert "not the port setting" in port_notice


def test_links_of_other_services_under_the_prefix_are_ignored_too() -> None:
    notices: list[str] = []
    assert load_settings(environ=OTHER_SERVICE_LINKS, notices=notices) == Settings()
    assert len(notices) == len(OTHER_SERVICE_LINKS)


def test_a_link_does_not_hide_the_settings_next_to_it(tmp_path: Path) -> None:
    config = tmp_path / "spine-cds.toml"
    config.write_text("port = 9100\n", encoding="utf-8")
    env = {**KUBERNETES_LINKS, "SPINE_CDS_WORKERS": "3"}
    settings = load_settings(environ=env, config_file=config, notices=[])
    assert settings.port == 9100  # the file's port: the link is not a port setting
    assert settings.workers == 3


def test_a_port_that_parses_is_still_the_port_setting() -> None:
    assert load_settings(environ={"SPINE_CDS_PORT": "9000"}, notices=[]).port == 9000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SPINE_CDS_PORT": "http"}, "SPINE_CDS_PORT"),  # neither a port nor a link
        ({"SPINE_CDS_PORT": "tcp://10.96.0.12"}, "SPINE_CDS_PORT"),  # a link has a port
        ({"SPINE_CDS_PORT": "http://10.96.0.12:8080"}, "SPINE_CDS_PORT"),
        ({"SPINE_CDS_PROT": "8080"}, "SPINE_CDS_PROT"),  # a typo
        ({"SPINE_CDS_WORKER_PORT": "9000"}, "SPINE_CDS_WORKER_PORT"),  # _PORT, no link value
        ({"SPINE_CDS_SERVICEHOST": "10.0.0.1"}, "SPINE_CDS_SERVICEHOST"),
        ({"SPINE_CDS_DATABSE_URL": "postgresql://x/y"}, "SPINE_CDS_DATABSE_URL"),
    ],
)
def test_genuine_mistakes_are_still_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=env, notices=[])


def test_without_a_notice_list_the_links_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cds_service.settings"):
        load_settings(environ={"SPINE_CDS_PORT": "tcp://10.96.0.12:8080"})
    assert any("ignored SPINE_CDS_PORT=" in r.getMessage() for r in caplog.records)


# --- *_FILE ------------------------------------------------------------------------------


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_setting_can_be_read_from_the_file_a_file_variable_names(tmp_path: Path) -> None:
    env = {
        "SPINE_CDS_DATABASE_URL_FILE": secret(
            tmp_path, "db", "postgresql://spine:s3cret@db.internal/spine\n"
        ),
        "SPINE_CDS_AUDIT_HASH_KEY_FILE": secret(tmp_path, "key", "k3y-from-a-secret\r\n"),
        "SPINE_CDS_WORKERS_FILE": secret(tmp_path, "workers", "4\n"),
    }
    notices: list[str] = []
    settings = load_settings(environ=env, notices=notices)
    assert settings.database_url == "postgresql://spine:s3cret@db.internal/spine"
    assert settings.audit_hash_key == "k3y-from-a-secret"  # the trailing newline is not in it
    assert settings.workers == 4  # converted like any other value
    summary = settings.public_summary()
    assert summary["audit_hash_key"] == "(set)" and "s3cret" not in str(summary)
    assert "audit_hash_key read from the file named by SPINE_CDS_AUDIT_HASH_KEY_FILE" in notices
    assert not any("s3cret" in notice or "k3y" in notice for notice in notices)


def test_inner_whitespace_and_leading_space_are_kept(tmp_path: Path) -> None:
    env = {"SPINE_CDS_AUDIT_HASH_KEY_FILE": secret(tmp_path, "key", " a b \n\n")}
    assert load_settings(environ=env, notices=[]).audit_hash_key == " a b "


def test_precedence_file_variable_over_the_toml_file_and_under_options(tmp_path: Path) -> None:
    config = tmp_path / "spine-cds.toml"
    config.write_text("workers = 2\naudit_hash_key = 'from-toml'\n", encoding="utf-8")
    env = {
        "SPINE_CDS_AUDIT_HASH_KEY_FILE": secret(tmp_path, "key", "from-secret"),
        "SPINE_CDS_WORKERS_FILE": secret(tmp_path, "workers", "3"),
    }
    settings = load_settings(environ=env, config_file=config, overrides={"workers": 5}, notices=[])
    assert settings.audit_hash_key == "from-secret"  # environment level, over the file
    assert settings.workers == 5  # a command-line option wins over everything


def test_a_value_and_its_file_variable_together_are_refused(tmp_path: Path) -> None:
    env = {
        "SPINE_CDS_AUDIT_HASH_KEY": "inline",
        "SPINE_CDS_AUDIT_HASH_KEY_FILE": secret(tmp_path, "key", "from-secret"),
    }
    with pytest.raises(SettingsError) as refused:
        load_settings(environ=env, notices=[])
    message = str(refused.value)
    assert "SPINE_CDS_AUDIT_HASH_KEY_FILE" in message and "SPINE_CDS_AUDIT_HASH_KEY " in message
    assert "from-secret" not in message and "inline" not in message


def test_a_missing_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"SPINE_CDS_DATABASE_URL_FILE": str(missing)}, notices=[])
    message = str(refused.value)
    assert message.startswith("environment variable SPINE_CDS_DATABASE_URL_FILE: cannot read")
    assert str(missing) in message and "No such file" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("lots", "expected an integer"), ("", "expected an integer")],
)
def test_a_bad_value_in_a_file_names_the_file_variable(
    tmp_path: Path, text: str, expected: str
) -> None:
    env = {"SPINE_CDS_WORKERS_FILE": secret(tmp_path, "workers", text)}
    with pytest.raises(SettingsError, match=f"SPINE_CDS_WORKERS_FILE: {expected}"):
        load_settings(environ=env, notices=[])


def test_an_empty_path_a_directory_and_a_huge_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SPINE_CDS_AUDIT_HASH_KEY_FILE: empty"):
        load_settings(environ={"SPINE_CDS_AUDIT_HASH_KEY_FILE": " "}, notices=[])
    with pytest.raises(SettingsError, match="SPINE_CDS_AUDIT_HASH_KEY_FILE: cannot read"):
        load_settings(environ={"SPINE_CDS_AUDIT_HASH_KEY_FILE": str(tmp_path)}, notices=[])
    huge = secret(tmp_path, "huge", "x" * 70_000)
    with pytest.raises(SettingsError, match="larger than"):
        load_settings(environ={"SPINE_CDS_AUDIT_HASH_KEY_FILE": huge}, notices=[])


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_file_variable_is_refused_not_taken_as_not_set(value: str) -> None:
    """docs/settings.md: unlike an empty SPINE_CDS_<NAME>, an empty _FILE variable stops
    the service, and its message says so and what to do (it named no secret: a template
    that did not fill in the path)."""
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"SPINE_CDS_DATABASE_URL_FILE": value}, notices=[])
    message = str(refused.value)
    assert message.startswith("environment variable SPINE_CDS_DATABASE_URL_FILE: empty")
    assert "not taken as not set" in message and "unset the variable" in message


def test_settings_whose_own_name_ends_in_file_keep_their_meaning(tmp_path: Path) -> None:
    clients = secret(tmp_path, "clients.json", "[]")
    env = {"SPINE_CDS_TRUSTED_CLIENTS_FILE": clients}
    assert load_settings(environ=env, notices=[]).trusted_clients_file == clients
    # ... and a file variable for one of them reads the path from a file.
    env = {"SPINE_CDS_HOOKS_FILE_FILE": secret(tmp_path, "hooks-path", "/etc/hooks.json\n")}
    assert load_settings(environ=env, notices=[]).hooks_file == "/etc/hooks.json"


def test_a_file_variable_for_no_setting_is_an_unknown_setting(tmp_path: Path) -> None:
    env = {"SPINE_CDS_PASSWORD_FILE": secret(tmp_path, "pw", "x")}
    with pytest.raises(SettingsError, match="SPINE_CDS_PASSWORD_FILE: unknown setting"):
        load_settings(environ=env, notices=[])
