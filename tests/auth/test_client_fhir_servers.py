"""Which FHIR servers a trusted client may name: the EHR's access token goes to them.

An integration review named ``http://fhir.example.com/r4`` from a client without
``fhir_servers``: the service sent its seven queries with the Bearer token over plain
http. Key URLs were already https-only (http on loopback); FHIR servers now are too.
"""

from __future__ import annotations

import pytest

from cds_service.auth.clients import TrustedClient, parse_trusted_clients

ISS = "https://ehr.example.org"
JWKS = "https://ehr.example.org/jwks.json"


def client(**fields: object) -> TrustedClient:
    (made,) = parse_trusted_clients([{"iss": ISS, "jwks_url": JWKS, **fields}])
    return made


def test_a_client_without_a_list_may_name_https_servers_only() -> None:
    open_list = client()
    assert open_list.fhir_server_refusal("https://fhir.example.com/r4") is None
    refusal = open_list.fhir_server_refusal("http://fhir.example.com/r4")
    assert refusal is not None and "plain http" in refusal and "unencrypted" in refusal
    assert open_list.fhir_server_refusal("HTTP://fhir.example.com/r4") is not None


def test_a_listed_server_must_be_https_or_on_loopback() -> None:
    wanted = r"fhir_servers\[1\]: must be an https URL \(http only on loopback\)"
    with pytest.raises(ValueError, match=wanted):
        client(fhir_servers=["https://fhir.example.com/r4", "http://fhir.hospital.example/r4"])
    listed = client(fhir_servers=["http://127.0.0.1:8090/fhir", "https://fhir.example.com/r4"])
    assert listed.fhir_server_refusal("http://127.0.0.1:8090/fhir") is None
    assert listed.fhir_server_refusal("https://fhir.example.com/r4/") is None


def test_a_listed_server_with_dot_segments_is_refused_at_startup() -> None:
    """No call could name it (fhirServer with dot segments is a 400), and the trend app
    dropped it silently: said when the file is read (an attack suite)."""
    with pytest.raises(ValueError, match=r"fhir_servers\[0\]: must not have '\.' or '\.\.'"):
        client(fhir_servers=["https://ehr.example.org/r4/%2e%2e/admin"])
