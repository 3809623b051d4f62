"""Run Debian's nginx with the shipped config (deploy/nginx/spine-cds.conf) on 127.0.0.1.

The config is used as shipped (``where="host"``), or as the Kubernetes pod or compose
renders it at start (their start scripts run on it, with their environment), with only the
marked values (upstream, the public and the internal listen ports) and the access-log path
changed, inside a minimal nginx.conf in a temporary prefix; nginx runs in the foreground as
a child process and is stopped on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import yaml

from spine_cds_dev.service_process import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = DEPLOY / "nginx" / "spine-cds.conf"
DEPLOYMENT = DEPLOY / "kubernetes" / "deployment.yaml"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
# Where the start scripts read the shipped file and write the one nginx reads.
MOUNTED = "/etc/spine-cds-nginx/spine-cds.conf"
WRITTEN = "/etc/nginx/conf.d/default.conf"
START_NGINX = "exec nginx -g 'daemon off;'"

Started = Literal["kubernetes", "compose"]  # a start script renders the config
Where = Literal["host", "kubernetes", "compose"]


def start_script(where: Started) -> str:
    """The shell script that writes nginx's config and starts it, in the pod or compose."""
    if where == "kubernetes":
        deployment = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
        pod = deployment["spec"]["template"]["spec"]
        nginx = next(c for c in pod["containers"] if c["name"] == "nginx")
        assert nginx["command"] == ["/bin/sh", "-c"], nginx["command"]
        script: str = nginx["args"][0]
        return script
    entrypoint = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["x-proxy"]["entrypoint"]
    assert entrypoint[:2] == ["/bin/sh", "-c"], entrypoint
    script = entrypoint[2]
    return script


def container_env(where: Started) -> dict[str, str]:
    """The environment the manifest gives the nginx container."""
    if where == "kubernetes":
        deployment = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
        pod = deployment["spec"]["template"]["spec"]
        nginx = next(c for c in pod["containers"] if c["name"] == "nginx")
        return {e["name"]: e["value"] for e in nginx.get("env", [])}
    environment = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["x-proxy"]
    return {k: str(v) for k, v in environment.get("environment", {}).items()}


def render_as_started(
    where: Started, out: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the start script of ``where`` up to starting nginx, on the shipped file, writing
    what nginx would read to ``out``; ``env`` replaces the manifest's own environment."""
    script = start_script(where)
    for fixed in (MOUNTED, WRITTEN, START_NGINX):
        assert fixed in script, f"{fixed!r} is no longer in the {where} start script"
    script = script.replace(MOUNTED, str(CONFIG)).replace(WRITTEN, str(out))
    script = script.replace(START_NGINX, "exit 0")
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin", **(container_env(where) if env is None else env)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed (scripts/test.sh installs Debian's package)")
    return found


class NginxProxy:
    """``with NginxProxy(upstream_port) as proxy: requests.get(proxy.url + "/health")``.

    ``proxy.url`` is the public listener, ``proxy.internal_url`` the internal one
    (metrics and readiness). ``where`` picks how the config is rendered: as shipped, or by
    the Kubernetes pod's or compose's start script with ``env`` (the manifest's own
    environment when None).
    """

    def __init__(
        self, upstream_port: int, where: Where = "host", env: dict[str, str] | None = None
    ) -> None:
        self.upstream_port = upstream_port
        self.where = where
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.internal_port = free_port()
        self.internal_url = f"http://127.0.0.1:{self.internal_port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="spine-cds-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def render(self) -> Path:
        internal = "listen 127.0.0.1:8081;"
        if self.where == "host":
            site = CONFIG.read_text()
        else:
            started = render_as_started(self.where, self.prefix / "started.conf", self.env)
            assert started.returncode == 0, started.stderr
            site = (self.prefix / "started.conf").read_text()
            internal = "listen 8081;"  # both open it to their network
        replacements = {
            "server 127.0.0.1:8080;": f"server 127.0.0.1:{self.upstream_port};",
            "listen 8443;": f"listen 127.0.0.1:{self.port};",
            internal: f"listen 127.0.0.1:{self.internal_port};",
            "/var/log/nginx/spine-cds.access.log": str(self.access_log),
        }
        for old, new in replacements.items():
            assert old in site, f"{old!r} is no longer in {CONFIG}"
            site = site.replace(old, new)
        (self.prefix / "spine-cds.conf").write_text(site)
        main = self.prefix / "nginx.conf"
        temp = self.prefix / "tmp"
        temp.mkdir()
        main.write_text(
            f"""
worker_processes 1;
pid {self.prefix / "nginx.pid"};
error_log {self.prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.prefix / "spine-cds.conf"};
}}
"""
        )
        return main

    def start(self, timeout: float = 10.0) -> None:
        config = self.render()
        self.process = subprocess.Popen(
            [nginx_binary(), "-p", str(self.prefix), "-c", str(config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> NginxProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
