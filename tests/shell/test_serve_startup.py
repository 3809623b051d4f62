"""What ``spine-cds serve`` writes before gunicorn starts, in either log format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cds_service.cli.serve import CHECKOUT, next_steps
from tests.conftest import make_settings


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


def test_a_first_start_says_what_to_do_next_in_one_short_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, host="0.0.0.0", port=8080)
    assert CHECKOUT is not None  # the tests run from a checkout
    line = next_steps(settings)
    assert line.startswith("next: curl http://127.0.0.1:8080/cds-services (discovery)")
    assert "bash scripts/fhir-test-server.sh --port 8090 --load-examples," in line
    # complete: try calls this service, not one of its own in process (an outside review)
    assert (
        ".venv/bin/spine-cds try --service-url http://127.0.0.1:8080 --fhir-server "
        "http://127.0.0.1:8090/fhir --patient spine-cds-e1 "
        "--order 'http://www.ama-assn.org/go/cpt|72158'; guides: docs/README.md"
    ) in line
    assert "\n" not in line and len(line) <= 400
    # on another port the FHIR test server's sandbox links are pointed at it too
    other = next_steps(make_settings(tmp_path, port=9000))
    assert "--port 8090 --load-examples --service-url http://127.0.0.1:9000," in other
    assert "try --service-url http://127.0.0.1:9000 " in other
    assert "\n" not in other and len(other) <= 400
    # installed (no checkout): no script or file that is not there
    installed = next_steps(make_settings(tmp_path, port=9000), checkout=None)
    assert installed == (
        "next: curl http://127.0.0.1:9000/cds-services (discovery); "
        "a hook call against a FHIR server: spine-cds try --help"
    )
