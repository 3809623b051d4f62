"""``spine-cds try`` against a secure-mode service, signing its client JWT with a key file.

Real gunicorn in secure mode, the real FHIR test server, a key minted as the docs say and
its JWKS printed by ``spine-cds client-jwks``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.examples import load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess

pytestmark = pytest.mark.integration
ISS = "https://integrator.example.org"


def _spine_cds(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cds_service", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_try_signs_a_client_jwt_that_a_secure_service_accepts(tmp_path: Path) -> None:
    key_file = tmp_path / "client-key.pem"
    key = ec.generate_private_key(ec.SECP384R1())
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # what openssl ecparam writes
            serialization.NoEncryption(),
        )
    )
    jwks = _spine_cds("client-jwks", str(key_file))
    assert jwks.returncode == 0, jwks.stderr
    (tmp_path / "jwks.json").write_text(jwks.stdout)
    assert json.loads(jwks.stdout)["keys"][0]["alg"] == "ES384"
    example = load_examples(date.today())[0]
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(tmp_path / "clients.json"),
    }
    with ExitStack() as stack:
        fhir = stack.enter_context(FhirTestServer())
        # the FHIR test server is on loopback: a client may name it only when it is listed
        client = {"iss": ISS, "jwks_file": str(tmp_path / "jwks.json")}
        clients = [{**client, "fhir_servers": [fhir.base_url]}]
        (tmp_path / "clients.json").write_text(json.dumps(clients))
        service = stack.enter_context(ServiceProcess(env=env, args=()))
        fhir.load_bundle(example.bundle)
        common = [
            "try",
            "--fhir-server",
            fhir.base_url,
            "--patient",
            example.patient_id,
            "--order",
            "http://www.ama-assn.org/go/cpt|72158",
            "--service-url",
            service.url,
            "--json",
        ]
        unsigned = _spine_cds(*common)
        signed = _spine_cds(*common, "--client-key", str(key_file), "--client-iss", ISS)
        # the same service under another name: the JWT's aud is not its public_base_url
        elsewhere = [
            service.url.replace("127.0.0.1", "localhost") if a == service.url else a for a in common
        ]
        wrong_aud = _spine_cds(*elsewhere, "--client-key", str(key_file), "--client-iss", ISS)
    assert unsigned.returncode != 0  # refused: 401
    assert "401" in unsigned.stdout + unsigned.stderr
    assert "no client JWT was sent" in unsigned.stderr
    assert wrong_aud.returncode != 0
    assert "401" in wrong_aud.stderr
    assert "no client JWT" not in wrong_aud.stderr
    assert "--service-url is not the service's public_base_url" in wrong_aud.stderr
    assert "request id " in wrong_aud.stderr  # the log line that says why
    assert signed.returncode == 0, signed.stdout + signed.stderr
    exchange = json.loads(signed.stdout)
    assert exchange["response"]["status"] == 200
    assert exchange["response"]["body"]["cards"]


def test_client_key_without_issuer_is_a_usage_error(tmp_path: Path) -> None:
    result = _spine_cds(
        "try",
        "--fhir-server",
        "http://127.0.0.1:9/fhir",
        "--patient",
        "p",
        "--order",
        "x|y",
        "--service-url",
        "http://127.0.0.1:9",
        "--client-key",
        str(tmp_path / "k.pem"),
    )
    assert result.returncode == 2
    assert "--client-iss" in result.stderr


def test_try_rehearses_an_oracle_shaped_client_with_a_jku_and_a_tenant(tmp_path: Path) -> None:
    """An integrator's review: an entry with only ``jku_list_url`` and a ``tenant``
    (Oracle Health's shape) could not be rehearsed, since try sent neither a jku header
    nor a tenant claim, and its 401 hint blamed the audience alone."""
    from tests.support.jwks_server import JwksServer

    key_file = tmp_path / "oracle-key.pem"
    key = ec.generate_private_key(ec.SECP384R1())
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    jwks = _spine_cds("client-jwks", str(key_file))
    assert jwks.returncode == 0, jwks.stderr
    example = load_examples(date.today())[0]
    issuer = "https://oracle-shaped.example.org"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(tmp_path / "clients.json"),
    }
    with ExitStack() as stack:
        keys = stack.enter_context(JwksServer())
        keys.publish(json.loads(jwks.stdout), "/tenant-a/keys.json")
        keys.publish([keys.url("/tenant-a/keys.json")], "/jku-list.json")
        fhir = stack.enter_context(FhirTestServer())
        entry = {
            "iss": issuer,
            "jku_list_url": keys.url("/jku-list.json"),
            "tenant": "tenant-a",
            "fhir_servers": [fhir.base_url],
        }
        (tmp_path / "clients.json").write_text(json.dumps([entry]))
        service = stack.enter_context(ServiceProcess(env=env, args=()))
        fhir.load_bundle(example.bundle)
        common = [
            "try", "--fhir-server", fhir.base_url, "--patient", example.patient_id,
            "--order", "http://www.ama-assn.org/go/cpt|72158", "--service-url", service.url,
            "--json", "--client-key", str(key_file), "--client-iss", issuer,
        ]  # fmt: skip
        bare = _spine_cds(*common)
        signed = _spine_cds(
            *common,
            "--client-jku",
            keys.url("/tenant-a/keys.json"),
            "--client-tenant",
            "tenant-a",
        )
    assert bare.returncode != 0
    assert "--client-jku" in bare.stderr and "--client-tenant" in bare.stderr
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert json.loads(signed.stdout)["response"]["status"] == 200
