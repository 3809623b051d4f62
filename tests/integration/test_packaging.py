"""The installed package (what `pip install .` and the Dockerfile install) works on its own.

The wheel is built and unpacked, and the service is run from it, away from the source
tree, so that a data file missing from the package (hooks.json, schemas, value sets,
examples) fails here rather than in a container. It ships the service and nothing of
the checkout's development harness (spine_cds_dev), tests or benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from spine_cds_dev.service_process import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_PACKAGES = {"cds_service", "fhir_mappers"}


def test_service_runs_from_the_built_wheel(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("spine_cds-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.namelist()
        archive.extractall(site)
    assert (site / "cds_service" / "hooks.json").is_file()
    tops = {name.split("/")[0] for name in shipped if not name.split("/")[0].endswith(".dist-info")}
    assert tops == SHIPPED_PACKAGES, sorted(tops)
    assert not [name for name in shipped if "spine_cds_dev" in name or "/tests/" in name]

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
    env["PYTHONPATH"] = str(site)  # before the editable install of the source tree
    env["SPINE_CDS_DATABASE_PATH"] = str(tmp_path / "db.sqlite3")
    where = subprocess.run(
        [sys.executable, "-c", "import cds_service; print(cds_service.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cds_service",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert service.poll() is None, "the service exited at startup"
            time.sleep(0.1)
        services = requests.get(url + "/cds-services", timeout=5).json()["services"]
        assert {s["hook"] for s in services} == {"order-select", "order-sign"}
        assert requests.get(url + "/openapi.json", timeout=5).status_code == 200
    finally:
        service.terminate()
        service.wait(timeout=15)
    # The harness's commands are listed, and say they run from a source checkout.
    demo = subprocess.run(
        [sys.executable, "-m", "cds_service", "demo", "--patient", "e01"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "source checkout" in demo.stderr
    assert "Starting" not in demo.stdout
