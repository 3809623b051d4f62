"""The trend app's locked npm packages (smart_app/node_modules), installed once when a
test needs them: `npm ci` under a file lock, so parallel tests install once."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "smart_app"
INSTALLED = (
    APP_DIR / "node_modules" / "esbuild" / "package.json",
    APP_DIR / "node_modules" / "fhirclient" / "package.json",
    APP_DIR / "node_modules" / "chart.js" / "package.json",
)


def install_trend_app_packages() -> None:
    """`npm ci` in smart_app/ unless its packages are there; fails the test without npm."""
    if all(p.exists() for p in INSTALLED):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build the trend app; it is not on PATH")
    with open(APP_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if all(p.exists() for p in INSTALLED):
                return
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=APP_DIR,
                capture_output=True,
                text=True,
                timeout=540,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
