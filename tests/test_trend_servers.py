"""The trend app's allowlist of FHIR servers and its frame ancestors, and their settings
(``cds_service/trend_servers.py``); the attacks through gunicorn and chromium are in
tests/test_attacks_trend.py."""

from __future__ import annotations

import pytest

from cds_service.fhir.urls import is_loopback_host
from cds_service.settings import SettingsError, load_settings
from cds_service.trend_servers import frame_ancestors, trend_servers

LISTED = "https://fhir.ehr.example.org/r4"


def test_a_listed_server_is_allowed_however_it_is_spelled() -> None:
    servers = trend_servers(False, [LISTED], [])
    for url in (
        LISTED,
        LISTED + "/",
        "HTTPS://FHIR.EHR.example.org/r4",
        LISTED.replace(".org", ".org:443"),
    ):
        assert servers.problem(url) is None, url


@pytest.mark.parametrize(
    "url",
    [
        "https://fhir.ehr.example.org/r4-other",  # another path
        "https://fhir.ehr.example.org/R4",  # paths are case-sensitive
        "http://fhir.ehr.example.org/r4",  # another scheme
        "https://fhir.ehr.example.org:8443/r4",  # another port
        "https://fhir.ehr.example.org.evil.example/r4",
        "https://u:p@fhir.ehr.example.org/r4",  # credentials
        "https://fhir.ehr.example.org/r4?x=1",  # a query
        "https://evil.example\\@fhir.ehr.example.org/r4",  # parsers disagree
        "javascript:alert(1)",
        "http://127.0.0.1:8090/fhir",  # loopback: development mode only
        "",
    ],
)
def test_anything_else_is_refused_with_a_reason(url: str) -> None:
    problem = trend_servers(False, [LISTED], []).problem(url)
    assert problem is not None and problem.startswith("it is not")


def test_the_trusted_clients_servers_are_listed_and_a_client_without_a_list_adds_none() -> None:
    servers = trend_servers(False, [], [("https://a.example/fhir",), None])
    assert servers.problem("https://a.example/fhir") is None
    assert servers.problem("https://b.example/fhir") is not None


def test_development_mode_adds_the_loopback_interface_only() -> None:
    dev = trend_servers(True, [], [])
    for url in ("http://127.0.0.1:8090/fhir", "http://localhost:1/x", "https://[::1]:9/fhir"):
        assert dev.problem(url) is None, url
    for url in ("http://10.0.0.1/fhir", "http://127.1:8090/fhir", "https://localhost.evil/x"):
        assert dev.problem(url) is not None, url
    assert is_loopback_host("127.9.9.9") and not is_loopback_host("127.0.0.1.nip.io")


def test_frame_ancestors_are_the_listed_origins_not_any_https_page() -> None:
    assert frame_ancestors(False, ()) == "'self'"
    assert frame_ancestors(False, ("https://ehr.example.org",)) == "'self' https://ehr.example.org"
    assert frame_ancestors(True, ()) == "'self' http://127.0.0.1:* http://localhost:*"


def test_the_settings_are_read_and_checked() -> None:
    env = {
        "SPINE_CDS_TREND_FHIR_SERVERS": f"{LISTED}, https://other.example/fhir",
        "SPINE_CDS_TREND_FRAME_ANCESTORS": "https://ehr.example.org, http://localhost:3000",
    }
    settings = load_settings(env)
    assert settings.trend_fhir_servers == (LISTED, "https://other.example/fhir")
    assert settings.trend_frame_ancestors == ("https://ehr.example.org", "http://localhost:3000")


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("TREND_FHIR_SERVERS", "ftp://x.example/fhir", "trend_fhir_servers[0]"),
        ("TREND_FHIR_SERVERS", f"{LISTED}, https://x.example/fhir?a=1", "trend_fhir_servers[1]"),
        ("TREND_FRAME_ANCESTORS", "https:", "trend_frame_ancestors[0] must be an origin"),
        ("TREND_FRAME_ANCESTORS", "*", "trend_frame_ancestors[0] must be an origin"),
        ("TREND_FRAME_ANCESTORS", "https://a.example/path", "must be an origin"),
        ("TREND_FRAME_ANCESTORS", "https://a.example 'unsafe-inline'", "must be an origin"),
        ("TREND_FRAME_ANCESTORS", "https://a.example;script-src *", "must be an origin"),
        ("TREND_FRAME_ANCESTORS", "https://a.example:99999", "must be an origin"),
        ("TREND_FRAME_ANCESTORS", "http://ehr.example.org", "must be https"),
        # the app sends the SMART token to it: plain http only on loopback (an attack suite)
        ("TREND_FHIR_SERVERS", "http://fhir.example.org/r4", "trend_fhir_servers[0] must be https"),
    ],
)
def test_a_bad_value_stops_startup_naming_it(name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=said.replace("[", r"\[").replace("*", r"\*")):
        load_settings({f"SPINE_CDS_{name}": value})
