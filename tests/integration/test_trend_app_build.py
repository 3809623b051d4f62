"""The committed trend app (cds_service/static/trend) is what smart_app/ builds.

The service ships the built files so that it needs no Node at run time; this test
rebuilds them from smart_app/ (installing its locked npm packages first when they are
missing) into a temporary folder and compares them byte for byte, so a change to the
source that was not rebuilt, or a hand edit of the built files, fails here.
Rebuild with ``bash scripts/build-trend-app.sh``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cds_service.routes.trend_app import FILES, static_dir
from tests.support.trend_app_packages import install_trend_app_packages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "smart_app"


def test_the_committed_build_is_the_build_of_the_source(tmp_path: Path) -> None:
    install_trend_app_packages()
    node = shutil.which("node")
    assert node is not None, "node is needed to build the trend app"
    done = subprocess.run(
        [node, "build.mjs", "--out", str(tmp_path)],
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(FILES)
    committed = static_dir()
    stale = [n for n in FILES if (tmp_path / n).read_bytes() != (committed / n).read_bytes()]
    assert stale == [], f"rebuild with scripts/build-trend-app.sh and commit: {stale}"


def test_the_wheel_ships_the_built_app(tmp_path: Path) -> None:
    # hatchling ships every file of the package that git does not ignore: no Node at run time.
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), ROOT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("spine_cds-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in FILES:
            member = f"cds_service/static/trend/{name}"
            assert member in names, member
            assert archive.read(member) == (static_dir() / name).read_bytes()
