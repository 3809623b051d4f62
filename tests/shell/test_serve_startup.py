"""What ``spine-cds serve`` writes before gunicorn starts, in either log format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``spine-cds serve --dev`` with a hooks_file that does not exist: it stops at once."""
    return subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--dev", "--port", "18693"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")},
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
            "SPINE_CDS_HOOKS_FILE": str(tmp_path / "missing.json"),
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_stop_at_startup_is_a_json_line_with_log_format_json(tmp_path: Path) -> None:
    done = serve(tmp_path, SPINE_CDS_LOG_FORMAT="json")
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert records[-1]["level"] == "ERROR"
    assert records[-1]["message"].startswith("configuration error: hooks_file ")


def test_a_stop_at_startup_is_clicks_error_line_in_the_plain_format(tmp_path: Path) -> None:
    done = serve(tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("Error: configuration error: hooks_file ")
