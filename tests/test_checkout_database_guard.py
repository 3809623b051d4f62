"""The suite's guard against a database in the checkout names both causes it can have.

``tests/conftest.py`` fails the first test after which ``spine-cds.sqlite3`` appears in
the checkout. An outside review ran the README's ``scripts/serve.sh`` in a second
terminal while ``scripts/test.sh`` ran in the same checkout: the service wrote the file,
and the guard told them to fix a packaging test that had done nothing. Run here as pytest
runs it, in a session of its own, with the guard's file moved into a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_database_made_during_a_test_names_a_service_running_in_the_checkout_too(
    tmp_path: Path,
) -> None:
    session = tmp_path / "session"
    session.mkdir()
    stray = tmp_path / "spine-cds.sqlite3"
    (session / "conftest.py").write_text(
        "from pathlib import Path\n"
        "import tests.conftest as suite\n"
        "from tests.conftest import (  # noqa: F401\n"
        "    _checkout_database_at_start,\n"
        "    _leaves_the_checkouts_database_alone,\n"
        ")\n"
        f"suite.CHECKOUT_DATABASE = Path({str(stray)!r})\n"
    )
    # what a service started meanwhile does, while this test does nothing of the kind
    (session / "test_meanwhile.py").write_text(
        "from pathlib import Path\n"
        "def test_while_a_service_starts() -> None:\n"
        f"    Path({str(stray)!r}).touch()\n"
    )
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(session)],
        capture_output=True,
        text=True,
        cwd=session,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    said = " ".join(ran.stdout.split())
    assert "spine-cds.sqlite3 appeared in the checkout during this test" in said
    assert "or something else running in this checkout, such as scripts/serve.sh" in said
