"""The generators of the README's example exchange and of docs/cards.md's example cards
print their usage for -h/--help (they once took it for the file to rewrite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["readme_example", "cards_doc"])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_usage_and_writes_nothing(module: str, flag: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"cds_service.tools.{module}", flag],
        cwd=tmp_path,  # a file named after the flag would land here
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m cds_service.tools.{module}")
    assert "path" in result.stdout
    assert list(tmp_path.iterdir()) == []
