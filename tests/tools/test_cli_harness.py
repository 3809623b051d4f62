"""`spine-cds demo` and `spine-cds fhir-test-server` come from the development harness
(spine_cds_dev): offered in a checkout, explained without it, never loaded by the other
commands."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.cli.harness import HARNESS_COMMANDS, harness_command
from spine_cds_dev.commands import COMMANDS


def test_help_lists_the_harness_commands_with_the_package_s() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in (*HARNESS_COMMANDS, "serve", "try", "report", "audit-purge", "review-examples"):
        assert f"  {name} " in result.output, name


def test_in_a_checkout_they_are_the_harness_s_own() -> None:
    assert set(COMMANDS) == set(HARNESS_COMMANDS)
    for name in HARNESS_COMMANDS:
        assert harness_command(name) is COMMANDS[name]


@pytest.mark.parametrize("name", list(HARNESS_COMMANDS))
def test_without_the_harness_each_says_where_it_runs(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setitem(sys.modules, "spine_cds_dev", None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "spine_cds_dev.commands", None)  # type: ignore[arg-type]
    result = CliRunner().invoke(main, [name, "--port", "8090", "--load-examples"])
    assert result.exit_code == 2, result.output
    assert "source checkout" in result.output
    assert f"bash scripts/{name}.sh" in result.output


def test_the_other_commands_never_load_the_harness() -> None:
    probe = (
        "import sys, click\n"
        "from cds_service.cli import main\n"
        "ctx = click.Context(main)\n"
        "for name in ('serve', 'try', 'report', 'audit-purge', 'review-examples'):\n"
        "    assert main.get_command(ctx, name) is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith('spine_cds_dev')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
