"""`bash scripts/mint-test-client.sh`: a test client for secure mode, outside the checkout.

The README's secure-mode quick start needs a trusted-clients file; the script mints a
key, its JWKS and that file. Checked for real: the service (gunicorn, secure mode)
started with the file accepts a JWT signed with the minted key and refuses one without.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from cds_service.examples import load_examples
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "mint-test-client.sh"


def mint(where: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *options, str(where)], capture_output=True, text=True, timeout=120
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


def printed_command(stdout: str, marker: str) -> list[str]:
    """The one printed command line that contains ``marker``, split as the shell would."""
    (line,) = [line for line in stdout.splitlines() if marker in line]
    return shlex.split(line)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_printed_commands_work_as_printed(tmp_path: Path) -> None:
    """The three printed commands agree with each other and with clients.json (the FHIR
    server `try` names is the one the client may name, the one the test server command
    starts, and the service's public_base_url is the URL `try` calls), and run: the
    signed call through the loopback FHIR test server gets a card, not a 400 or a 401.
    Run on free ports (8080 and 8090 may be taken here), moved consistently."""
    where = tmp_path / "client dir"  # a space: the printed paths must be quoted
    result = mint(where)
    assert result.returncode == 0, result.stderr
    fhir_cmd = printed_command(result.stdout, "scripts/fhir-test-server.sh")
    serve_cmd = printed_command(result.stdout, "scripts/serve.sh")
    try_cmd = printed_command(result.stdout, "spine-cds try")
    assert fhir_cmd[:2] == ["bash", "scripts/fhir-test-server.sh"]
    assert "--load-examples" in fhir_cmd
    fhir_port = int(fhir_cmd[fhir_cmd.index("--port") + 1])
    serve_env = dict(arg.split("=", 1) for arg in serve_cmd if "=" in arg and arg[0] != "-")
    assert serve_cmd[-2:] == ["bash", "scripts/serve.sh"]
    assert serve_env["SPINE_CDS_DEV_MODE"] == "false"
    assert try_cmd[:2] == [".venv/bin/spine-cds", "try"]
    options = dict(zip(try_cmd[2::2], try_cmd[3::2], strict=True))
    fhir_url = options["--fhir-server"]
    assert urlsplit(fhir_url).hostname == "127.0.0.1"
    assert urlsplit(fhir_url).port == fhir_port
    assert options["--service-url"] == serve_env["SPINE_CDS_PUBLIC_BASE_URL"]
    (entry,) = json.loads(Path(serve_env["SPINE_CDS_TRUSTED_CLIENTS_FILE"]).read_text())
    assert entry["fhir_servers"] == [fhir_url]
    assert entry["iss"] == options["--client-iss"]
    assert Path(options["--client-key"]) == where / "client-key.pem"

    service_port = urlsplit(options["--service-url"]).port
    ports = {fhir_port: free_port(), service_port: free_port()}

    def moved(text: str) -> str:
        for printed, free in ports.items():
            text = text.replace(f"127.0.0.1:{printed}", f"127.0.0.1:{free}")
        return text

    clients = tmp_path / "clients.json"  # the minted file, on the free port
    clients.write_text(json.dumps([{**entry, "fhir_servers": [moved(fhir_url)]}]))
    env = {
        **{name: moved(value) for name, value in serve_env.items()},
        "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "spine-cds.sqlite3"),
    }
    with ExitStack() as stack:
        fhir = stack.enter_context(FhirTestServer(port=ports[fhir_port]))
        assert fhir.base_url == moved(fhir_url)
        for example in load_examples(date.today()):
            fhir.load_bundle(example.bundle)
        stack.enter_context(ServiceProcess(env=env, args=(), workers=1, port=ports[service_port]))
        argv = [moved(arg) for arg in try_cmd[1:]]
        called = subprocess.run(
            [sys.executable, "-m", "cds_service", *argv, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert called.returncode == 0, called.stdout + called.stderr
    exchange = json.loads(called.stdout)
    assert exchange["response"]["status"] == 200
    assert exchange["response"]["body"]["cards"]


def test_it_refuses_to_write_a_key_into_the_checkout() -> None:
    inside = ROOT / "minted-here"
    result = mint(inside)
    assert result.returncode == 2
    assert "inside the checkout" in result.stderr
    assert not inside.exists()


@pytest.mark.parametrize(
    ("url", "step1"),
    [
        # the project's test server on another port: its command on that port
        ("http://127.0.0.1:18555/fhir/", "bash scripts/fhir-test-server.sh --port 18555"),
        # any other server: load the examples into it
        (
            "https://fhir.example.org/r4",
            ".venv/bin/spine-cds load-examples --fhir-server https://fhir.example.org/r4",
        ),
    ],
)
def test_the_fhir_server_the_client_may_name_is_an_option(
    tmp_path: Path, url: str, step1: str
) -> None:
    # An outside review: clients.json pinned 127.0.0.1:8090, so a FHIR test server on any
    # other port meant editing it by hand, or a 400 on every call.
    where = tmp_path / "client"
    result = mint(where, "--fhir-server", url)
    assert result.returncode == 0, result.stderr
    base = url.rstrip("/")
    (entry,) = json.loads((where / "clients.json").read_text())
    assert entry["fhir_servers"] == [base]
    assert step1 in result.stdout
    options = printed_command(result.stdout, "spine-cds try")
    assert options[options.index("--fhir-server") + 1] == base


def test_a_fhir_server_that_is_not_a_url_is_refused(tmp_path: Path) -> None:
    result = mint(tmp_path / "client", "--fhir-server", "127.0.0.1:8091/fhir")
    assert result.returncode == 2
    assert "expected an http(s) base URL" in result.stderr
    assert not (tmp_path / "client").exists()


def test_help_prints_the_scripts_header_comment_and_nothing_after_it() -> None:
    # An outside review: --help ended with the line "set -euo pipefail", its range one
    # line too long. The header is every comment line after the shebang.
    lines = SCRIPT.read_text().splitlines()[1:]
    header = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
    expected = [line.removeprefix("#").removeprefix(" ") for line in header]
    result = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
