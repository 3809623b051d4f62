"""scripts/setup.sh installs only when something changed, and says what it does.

serve.sh, demo.sh, fhir-test-server.sh and test.sh all set up through it. It runs here
on a copy, in a throw-away project with a tiny package (its own pyproject.toml and
.venv), so that the checkout's virtual environment is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "tinypkg"
version = "{version}"

[project.optional-dependencies]
test = []
report = []

[tool.hatch.build.targets.wheel]
packages = ["tinypkg"]
"""


def _run(project: Path, *args: str) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHON"] = sys.executable
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "scripts/setup.sh", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, time.monotonic() - started


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPTS / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(version="0.1.0"))
    (tmp_path / "tinypkg").mkdir()
    (tmp_path / "tinypkg" / "__init__.py").write_text("VALUE = 1\n")
    return tmp_path


def test_installs_once_then_only_when_pyproject_or_extras_change(project: Path) -> None:
    out, _ = _run(project)
    assert "Installing spine-cds" in out and "first install" in out
    assert "installed in" in out

    out, took = _run(project)
    assert "up to date" in out and "Installing" not in out
    assert took < 5

    # Editable: a code change is live without a reinstall.
    (project / "tinypkg" / "__init__.py").write_text("VALUE = 2\n")
    value = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert value.stdout.strip() == "2"

    out, _ = _run(project, "--test")
    assert "adding test" in out

    out, _ = _run(project, "--test")
    assert "up to date" in out

    (project / "pyproject.toml").write_text(PYPROJECT.format(version="0.2.0"))
    out, _ = _run(project)
    assert "pyproject.toml changed" in out
    assert ".[test]" in out  # the extras installed before are kept


def test_fhir_packages_are_installed_only_when_the_lock_file_changed(project: Path) -> None:
    server = project / "tests" / "fhir_server"
    (server / "node_modules" / ".bin").mkdir(parents=True)
    (server / "node_modules" / "@medplum" / "fhir-router").mkdir(parents=True)
    node = server / "node_modules" / ".bin" / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    (server / "node_modules" / "@medplum" / "fhir-router" / "package.json").write_text("{}")
    package = {"name": "tiny-server", "version": "1.0.0", "private": True}
    (server / "package.json").write_text(json.dumps(package))
    lock = {**package, "lockfileVersion": 3, "requires": True, "packages": {"": package}}
    (server / "package-lock.json").write_text(json.dumps(lock))
    _run(project)

    out, _ = _run(project, "--fhir")
    assert "npm packages are installed and up to date" in out
    out, _ = _run(project, "--fhir")
    assert "up to date" in out

    if shutil.which("npm") is None:
        pytest.fail("npm is needed (the FHIR test server installs with it)")
    lock["version"] = package["version"] = "1.0.1"
    (server / "package.json").write_text(json.dumps(package))
    (server / "package-lock.json").write_text(json.dumps(lock))
    out, _ = _run(project, "--fhir")
    assert "Installing the FHIR test server's pinned npm packages" in out
    assert "installed in" in out
