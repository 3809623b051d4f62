"""Run Debian's nginx with the shipped config (deploy/nginx/spine-cds.conf) on 127.0.0.1.

The config is used as shipped, with only the marked values (upstream, the public and the
internal listen ports) and the access-log path changed, inside a minimal nginx.conf in a temporary
prefix; nginx runs in the foreground as a child process and is stopped on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from spine_cds_dev.service_process import free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "spine-cds.conf"


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
    (metrics and readiness).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.internal_port = free_port()
        self.internal_url = f"http://127.0.0.1:{self.internal_port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="spine-cds-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    def render(self) -> Path:
        site = CONFIG.read_text()
        replacements = {
            "server 127.0.0.1:8080;": f"server 127.0.0.1:{self.upstream_port};",
            "listen 8443;": f"listen 127.0.0.1:{self.port};",
            "listen 127.0.0.1:8081;": f"listen 127.0.0.1:{self.internal_port};",
            "/var/log/nginx/spine-cds.access.log": str(self.prefix / "access.log"),
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
