"""`bash scripts/mint-test-client.sh`: a test client for secure mode, outside the checkout.

The README's secure-mode quick start needs a trusted-clients file; the script mints a
key, its JWKS and that file. Checked for real: the service (gunicorn, secure mode)
started with the file accepts a JWT signed with the minted key and refuses one without.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from spine_cds_dev.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "mint-test-client.sh"


def mint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(where)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.integration
def test_the_minted_client_is_trusted_by_a_secure_mode_service(tmp_path: Path) -> None:
    where = tmp_path / "client"
    result = mint(where)
    assert result.returncode == 0, result.stderr
    clients = where / "clients.json"
    assert f"SPINE_CDS_TRUSTED_CLIENTS_FILE={clients}" in result.stdout
    hash_key = where / "audit-hash-key"
    assert f"SPINE_CDS_AUDIT_HASH_KEY_FILE={hash_key}" in result.stdout
    (entry,) = json.loads(clients.read_text())
    kid = json.loads((where / "client-jwks.json").read_text())["keys"][0]["kid"]
    key = serialization.load_pem_private_key((where / "client-key.pem").read_bytes(), None)
    assert (where / "client-key.pem").stat().st_mode & 0o077 == 0  # private to its owner
    env = {
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_AUDIT_HASH_KEY_FILE": str(hash_key),
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "spine-cds.sqlite3"),
    }
    with ServiceProcess(env=env, args=(), workers=1) as svc:
        now = int(time.time())
        claims = {
            "iss": entry["iss"],
            "aud": svc.url + "/cds-services",
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid})  # type: ignore[arg-type]
        url = svc.url + "/cds-services"
        ok = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert ok.status_code == 200
        assert requests.get(url, timeout=10).status_code == 401


def test_it_refuses_to_write_a_key_into_the_checkout() -> None:
    inside = ROOT / "minted-here"
    result = mint(inside)
    assert result.returncode == 2
    assert "inside the checkout" in result.stderr
    assert not inside.exists()
