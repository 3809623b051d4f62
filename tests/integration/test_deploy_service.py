"""What orchestrators and containers need from the service process itself.

Liveness and readiness that mean something, a start that works on a read-only root
filesystem and says plainly when its data directory belongs to someone else, a graceful
timeout shorter than the stop timeouts, and a startup line with an address one can open.
The container test (scripts/container-test.sh) checks the same things in the image.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from cds_service import server
from cds_service.app import create_app
from cds_service.server import (
    GRACEFUL_TIMEOUT_SECONDS,
    DeploymentError,
    check_database_writable,
    listening_line,
    metrics_directory,
)
from cds_service.stores import RedisReplayCache
from cds_service.warmup import warm_up
from spine_cds_dev.service_process import ServiceProcess, ServiceStartError
from tests.conftest import make_settings
from tests.support.jwks_server import JwksServer

BASE = "https://cds.example.org"


def app_with(tmp_path: Path, **overrides: Any) -> Flask:
    """The app as a gunicorn worker serves it: warmed up (else /readyz says 503)."""
    app = create_app(make_settings(tmp_path, **overrides))
    warm_up(app.extensions["spine_cds"])
    return app


def clients_file(tmp_path: Path, clients: list[dict[str, str]]) -> str:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(clients), encoding="utf-8")
    return str(path)


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        app.extensions["spine_cds"].close()


# --- liveness and readiness ------------------------------------------------------------


def test_livez_is_the_liveness_answer_of_health(tmp_path: Path, apps: list[Flask]) -> None:
    apps.append(app := app_with(tmp_path))
    client = app.test_client()
    assert client.get("/livez").get_json() == client.get("/health").get_json()
    assert client.get("/livez").status_code == 200


def test_development_mode_with_sqlite_is_ready(tmp_path: Path, apps: list[Flask]) -> None:
    apps.append(app := app_with(tmp_path))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {
        "configuration": "ok",
        "database": "ok",
        "warmUp": "ok",
    }


def test_secure_mode_without_trusted_clients_is_live_but_not_ready(
    tmp_path: Path, apps: list[Flask]
) -> None:
    """The issue: /health was green while every call was refused with 401."""
    apps.append(app := app_with(tmp_path, dev_mode=False, public_base_url=BASE))
    client = app.test_client()
    assert client.get("/health").status_code == 200  # alive: do not restart it
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    body = response.get_json()
    assert body["error"] == "not_ready"
    assert "no trusted CDS clients" in body["checks"]["configuration"]
    assert body["checks"]["database"] == "ok"
    assert "configuration" in body["message"]


def test_secure_mode_with_a_trusted_client_is_ready(tmp_path: Path, apps: list[Flask]) -> None:
    with JwksServer() as keys:  # readiness fetches the client's key set once
        keys.publish({"keys": []})
        clients = clients_file(
            tmp_path, [{"iss": "https://ehr.example.org", "jwks_url": keys.url()}]
        )
        app = app_with(tmp_path, dev_mode=False, public_base_url=BASE, trusted_clients_file=clients)
        apps.append(app)
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["checks"]["keys"] == "ok"


def test_a_database_that_does_not_answer_makes_the_instance_not_ready(
    tmp_path: Path, apps: list[Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    apps.append(app := app_with(tmp_path))
    database = app.extensions["spine_cds"].stores.database

    def broken(write: bool = True) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(database, "transaction", broken)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "the sqlite database did not answer (OSError)"
    assert checks["configuration"] == "ok"
    assert "disk gone" not in response.get_data(as_text=True)  # no error text leaks out


def test_redis_is_checked_when_the_replay_cache_is_there(
    tmp_path: Path, apps: list[Flask], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps.append(app := app_with(tmp_path, redis_url=redis_url))
    client = app.test_client()
    assert client.get("/readyz").get_json()["checks"]["redis"] == "ok"
    replay = app.extensions["spine_cds"].stores.replay
    assert isinstance(replay, RedisReplayCache)

    def unreachable(key: str, expires_at: float) -> bool:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(replay, "add_if_new", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "Redis" in response.get_json()["checks"]["redis"]


# --- the place the process runs in ---------------------------------------------------------


def test_the_metrics_directory_falls_back_to_shared_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A read-only root filesystem without a tmpfs: no usable temporary directory."""
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # mkdtemp fails
    monkeypatch.setattr(server, "SHM_DIR", str(shm))
    made = metrics_directory()
    assert Path(made).parent == shm and Path(made).is_dir()


def test_no_writable_place_at_all_says_what_to_mount(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    monkeypatch.setattr(server, "SHM_DIR", str(tmp_path / "no-shm"))
    with pytest.raises(DeploymentError, match=r"mount a tmpfs at /tmp .*emptyDir"):
        metrics_directory()


def _check_as_another_user(path: Path) -> tuple[int, str]:
    """check_database_writable for ``path`` as uid/gid 10001, in a forked child (root
    passes every access check, so the test drops to the uid of the container image)."""
    settings = make_settings(path.parent, database_path=str(path))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to 10001, check, report through the pipe
        status = 0
        try:
            os.setgroups([])
            os.setgid(10001)
            os.setuid(10001)
            check_database_writable(settings)
            message = ""
        except DeploymentError as exc:
            message, status = str(exc), 3
        except BaseException as exc:
            message, status = repr(exc), 4
        os.write(write_end, message.encode())
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), message


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="checks as uid 10001, which only root can become"
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can reach (pytest's tmp_path is private to its user)."""
    made = Path(tempfile.mkdtemp(prefix="spine-cds-test-", dir="/tmp"))
    os.chmod(made, 0o755)
    yield made
    for path in made.rglob("*"):
        if path.is_dir():
            os.chmod(path, 0o755)
    shutil.rmtree(made, ignore_errors=True)


@needs_root
def test_a_data_directory_owned_by_someone_else_gets_a_clear_message(shared_dir: Path) -> None:
    data = shared_dir / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # owned by the test's user, not writable by uid 10001
    status, message = _check_as_another_user(data / "spine-cds.sqlite3")
    assert status == 3, message
    assert f"its directory {data} (owned by uid 0" in message
    assert "is not writable by this process (uid 10001, gid 10001)" in message
    assert "chown 10001:10001" in message and "fsGroup: 10001" in message
    # Given to that uid, the same directory passes.
    os.chown(data, 10001, 10001)
    assert _check_as_another_user(data / "spine-cds.sqlite3") == (0, "")


def test_a_missing_data_directory_under_a_read_only_parent_is_explained(
    shared_dir: Path, tmp_path: Path
) -> None:
    parent = shared_dir / "ro"
    parent.mkdir()
    os.chmod(parent, 0o555)
    try:
        if os.geteuid() == 0:
            status, message = _check_as_another_user(parent / "data" / "spine-cds.sqlite3")
            assert status == 3, message
            assert f"{parent / 'data'} does not exist and {parent}" in message
        else:
            settings = make_settings(
                tmp_path, database_path=str(parent / "data" / "spine-cds.sqlite3")
            )
            with pytest.raises(DeploymentError, match="does not exist"):
                check_database_writable(settings)
    finally:
        os.chmod(parent, 0o755)


def test_postgresql_and_memory_databases_need_no_directory(tmp_path: Path) -> None:
    check_database_writable(make_settings(tmp_path, database_path=":memory:"))
    check_database_writable(make_settings(tmp_path, database_url="postgresql://h/db"))


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_the_startup_line_never_offers_an_address_no_one_can_open(
    tmp_path: Path, host: str
) -> None:
    line = listening_line(make_settings(tmp_path, host=host, port=8080))
    assert "0.0.0.0" not in line and "[::]" not in line
    assert line == (
        "listening on all interfaces, port 8080; from this host: http://127.0.0.1:8080/cds-services"
    )
    with_base = make_settings(tmp_path, host=host, public_base_url=BASE + "/")
    assert listening_line(with_base).endswith(
        f"; clients call {BASE}/cds-services (a client JWT's aud: {BASE}/cds-services/<service id>)"
    )
    assert listening_line(make_settings(tmp_path, host="::1", port=81)) == (
        "serving http://[::1]:81/cds-services"
    )


@pytest.mark.integration
def test_serve_refuses_a_public_base_url_ending_in_cds_services_and_shows_the_aud(
    tmp_path: Path,
) -> None:
    """An outside review: a public_base_url of .../cds-services started, and every EHR
    call was then refused 401 for an aud of .../cds-services/cds-services/<id>; the
    banner showed only the address the service listened on."""
    log_path = tmp_path / "service.log"
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    doubled = ServiceProcess(env=dict(env), args=(), log_path=log_path, workers=1)
    doubled.extra_env["SPINE_CDS_PUBLIC_BASE_URL"] = f"{doubled.url}/cds-services/"
    with pytest.raises(ServiceStartError):
        doubled.start()
    said = log_path.read_text()
    assert (
        f"public_base_url '{doubled.url}/cds-services/' ends in /cds-services, which the "
        f"service adds itself: give '{doubled.url}'"
    ) in said
    assert f"a client JWT's aud {doubled.url}/cds-services/<service id>" in said

    with ServiceProcess(env=env, args=(), log_path=log_path, workers=1) as service:
        assert requests.get(service.url + "/livez", timeout=5).status_code == 200
    assert (
        f"serving {service.url}/cds-services; clients call {service.url}/cds-services"
        f" (a client JWT's aud: {service.url}/cds-services/<service id>)"
    ) in log_path.read_text()


def test_gunicorn_stops_within_the_stop_timeouts_and_keeps_no_files_on_disk(
    tmp_path: Path,
) -> None:
    app = server._GunicornApp(make_settings(tmp_path))
    assert app.cfg.graceful_timeout == GRACEFUL_TIMEOUT_SECONDS
    assert GRACEFUL_TIMEOUT_SECONDS < 10  # docker's and podman's default stop timeout
    assert app.cfg.control_socket_disable is True  # no socket in the home directory
    if os.access("/dev/shm", os.W_OK):
        assert app.cfg.worker_tmp_dir == "/dev/shm"


@pytest.mark.integration
def test_serve_logs_the_ignored_links_and_starts(tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_SERVICE_HOST": "10.96.0.12",
        "SPINE_CDS_PORT_8080_TCP_ADDR": "10.96.0.12",
    }
    with ServiceProcess(env=env, log_path=log_path, workers=1) as service:
        assert requests.get(service.url + "/readyz", timeout=5).status_code == 200
    log = log_path.read_text()
    assert "ignored SPINE_CDS_SERVICE_HOST=10.96.0.12: a Kubernetes service-link" in log
    assert "ignored SPINE_CDS_PORT_8080_TCP_ADDR=" in log
