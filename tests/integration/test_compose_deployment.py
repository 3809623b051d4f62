"""deploy/compose: locked-down containers, a Redis with a password, no committed secrets.

The compose file is read as compose reads it (YAML merge keys resolved). Its secrets are
made on first run by deploy/compose/make-secrets.sh, which is run here into a temporary
directory; Debian's redis-server then runs with the Redis config it made, to show that a
client without the password is refused and the service's URL gets in.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from spine_cds_dev.service_process import free_port
from tests.support.pg_server import missing_binary

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
MAKE_SECRETS = COMPOSE_DIR / "make-secrets.sh"
RANDOM_HEX = re.compile(r"^[0-9a-f]{64}$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_every_container_drops_all_capabilities_and_cannot_gain_privileges() -> None:
    services = compose()["services"]
    assert {"spine-cds-a", "proxy-a", "postgres", "redis"} <= set(services)
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "cap_add" not in service, name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name
    # The stores run as their own users from the start (their entrypoints would otherwise
    # need root's capabilities to change user).
    assert services["postgres"]["user"] == "postgres"
    assert services["redis"]["user"] == "redis"


def test_redis_requires_a_password_that_the_service_reads_from_a_file() -> None:
    loaded = compose()
    service = loaded["x-spine-cds"]
    assert "SPINE_CDS_REDIS_URL" not in service["environment"]
    assert service["environment"]["SPINE_CDS_REDIS_URL_FILE"] == "/run/secrets/redis-url"
    assert "redis-url" in service["secrets"]
    redis_service = loaded["services"]["redis"]
    assert redis_service["command"] == ["redis-server", "/run/secrets/redis.conf"]
    assert redis_service["secrets"] == ["redis.conf"]


def test_no_secret_is_committed_and_the_script_makes_every_one() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/compose/secrets"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == ""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/secrets/database-url"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "deploy/compose/secrets/ must be git-ignored"
    files = {s["file"] for s in compose()["secrets"].values()}
    assert files and all(f.startswith("./secrets/") for f in files), files
    with tempfile.TemporaryDirectory() as tmp:
        made = _make_secrets(Path(tmp) / "secrets")
        assert {f"./secrets/{name}" for name in made} == files


def _make_secrets(directory: Path) -> dict[str, str]:
    result = subprocess.run(
        ["sh", str(MAKE_SECRETS), str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "made" in result.stdout or "kept" in result.stdout
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())}


def test_the_secrets_are_random_consistent_and_kept_on_a_second_run(tmp_path: Path) -> None:
    first = _make_secrets(tmp_path / "one")
    other = _make_secrets(tmp_path / "two")
    assert oct((tmp_path / "one").stat().st_mode & 0o777) == "0o700"
    for name in ("postgres-password", "audit-hash-key"):
        assert RANDOM_HEX.match(first[name].strip()), name
        assert first[name] != other[name], name  # not a fixed value
    database = urlsplit(first["database-url"].strip())
    assert database.password == first["postgres-password"].strip()
    assert (database.hostname, database.path) == ("postgres", "/spine_cds")
    requirepass = re.search(r"^requirepass (\S+)$", first["redis.conf"], re.MULTILINE)
    assert requirepass and RANDOM_HEX.match(requirepass.group(1))
    assert urlsplit(first["redis-url"].strip()).password == requirepass.group(1)
    # A second run keeps what is there (the PostgreSQL volume knows the old password).
    assert _make_secrets(tmp_path / "one") == first


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not listen in time")


def test_redis_with_the_made_config_refuses_a_client_without_the_password(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        missing_binary("redis-server")
    secrets = tmp_path / "secrets"
    made = _make_secrets(secrets)
    port = free_port()
    command = [binary, str(secrets / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--dir", str(tmp_path), "--daemonize", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        anonymous = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
        anonymous.close()
        # The service's URL, its host and port pointed at this server.
        url = urlsplit(made["redis-url"].strip())
        local = url._replace(netloc=f":{url.password}@127.0.0.1:{port}").geturl()
        client = redis.Redis.from_url(local, socket_timeout=5)
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}  # nothing written to disk
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
