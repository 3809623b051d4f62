"""README.md says what the image's health check probes and what CI runs: held to the
Dockerfile and to .ci/run, so neither can drift from what a reader is told."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_the_path_the_healthcheck_probes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (probed,) = re.findall(r'"--probe", "(/[a-z]+)"', dockerfile)
    (told,) = re.findall(r"`HEALTHCHECK` on `(/[a-z]+)`", README)
    assert told == probed


def test_every_script_ci_runs_is_in_the_readme_development_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    scripts = re.findall(r"^bash (scripts/\S+)", ci, re.M)
    assert scripts, "no script found in .ci/run"
    development = README.split("## Development", 1)[1].split("```", 2)[1]
    missing = [s for s in scripts if f"bash {s}" not in development]
    assert not missing, f"CI runs {missing}, which README's Development block does not give"
