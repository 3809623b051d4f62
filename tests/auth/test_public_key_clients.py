"""The CDS Hooks sandbox signs with a published private key: no entry of the trusted
clients may take its tokens, whatever the spelling of its ``iss`` or the ``iss`` its
key source is listed under (an attack suite loaded ``HTTPS://sandbox.cds-hooks.org``,
a trailing dot, ``:443``, and another ``iss`` with the sandbox's ``jku``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.auth import load_trusted_clients

SANDBOX_JWKS = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


def load(tmp_path: Path, entry: dict[str, Any]) -> Any:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks_file": "k.json"}, entry]))
    return load_trusted_clients(str(path))


@pytest.mark.parametrize(
    "iss",
    [
        "https://sandbox.cds-hooks.org",
        "https://sandbox.cds-hooks.org/",
        "HTTPS://sandbox.cds-hooks.org",
        "https://SANDBOX.cds-hooks.org",
        "https://sandbox.cds-hooks.org.",
        "https://sandbox.cds-hooks.org:443",
        "https://sandbox.cds-hooks.org.:443/",
    ],
)
def test_the_sandbox_issuer_is_refused_in_every_spelling_of_its_origin(
    tmp_path: Path, iss: str
) -> None:
    entry = {"iss": iss, "jwks_url": "https://keys.example.org/jwks.json"}
    with pytest.raises(ValueError, match=r"trusted_clients\[1\]: .*private key that is public"):
        load(tmp_path, entry)


@pytest.mark.parametrize(
    "source",
    [
        {"jku_allowlist": [SANDBOX_JWKS]},
        {"jku_allowlist": ["https://keys.example.org/jwks.json", SANDBOX_JWKS]},
        {"jwks_url": SANDBOX_JWKS},
        {"jwks_url": "https://SANDBOX.cds-hooks.org.:443/.well-known/jwks.json"},
        {"jku_list_url": "https://sandbox.cds-hooks.org/jku-list.json"},
        {"jwks_url": "https://keys.sandbox.cds-hooks.org/jwks.json"},
        {"jwks_url": "https://someone@sandbox.cds-hooks.org/jwks.json"},
    ],
)
def test_a_key_source_on_the_sandboxs_host_is_refused_under_any_issuer(
    tmp_path: Path, source: dict[str, Any]
) -> None:
    entry = {"iss": "https://client.example.org", **source}
    with pytest.raises(ValueError, match=r"trusted_clients\[1\]: .* signing key is public"):
        load(tmp_path, entry)


@pytest.mark.parametrize(
    "entry",
    [
        {
            "iss": "https://sandbox.cds-hooks.org.example.org",
            "jwks_url": "https://keys.example.org/k",
        },
        {"iss": "https://client.example.org", "jwks_url": "https://cds-hooks.org/jwks.json"},
        {"iss": "https://client.example.org", "jwks_url": "https://notsandbox.cds-hooks.org/k"},
        {"iss": "sandbox.cds-hooks.org", "jwks_file": "k.json"},
    ],
)
def test_other_hosts_and_issuers_are_kept(tmp_path: Path, entry: dict[str, Any]) -> None:
    clients = load(tmp_path, entry)
    assert [c.iss for c in clients] == ["https://ehr.example.org", entry["iss"]]
