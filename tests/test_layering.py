"""The layering of the house, enforced: a functional core inside a thin shell.

- ``fhir_mappers`` and ``cds_service/engine`` (the core) import no web framework, no
  HTTP client, no database or socket, read no file and no clock: evaluation time is a
  parameter, value sets and settings are handed in.
- ``fhir_mappers`` imports nothing from ``cds_service``; the engine imports from
  ``cds_service`` only its own package.
- The web layer (``cds_service/app.py`` and ``cds_service/routes/``) is the only
  importer of Flask.

Read from the source with ``ast``, so a violation fails here with the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = [ROOT / "fhir_mappers", ROOT / "cds_service" / "engine"]
# Modules that do I/O or talk to the network; the core uses none of them.
IO_MODULES = {
    "flask",
    "werkzeug",
    "requests",
    "urllib3",
    "http",
    "socket",
    "ssl",
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "redis",
    "subprocess",
    "gunicorn",
    "importlib",
    "shutil",
    "tempfile",
    "os",
    "logging",
}
IO_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "urlopen"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}
CLOCK_OWNERS = {"datetime", "date", "time"}
WEB_LAYER = [ROOT / "cds_service" / "app.py", ROOT / "cds_service" / "routes"]


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from [root] if root.is_file() else sorted(root.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module


def calls(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, called name, the name it is called on) for every call in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            yield node.lineno, func.id, None
        elif isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            yield node.lineno, func.attr, owner


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("path", list(python_files(*CORE)), ids=lambda p: p.name)
def test_the_core_does_no_io_and_reads_no_clock(path: Path) -> None:
    found = [
        f"{where(path, line)} imports {module}"
        for line, module in imports(path)
        if module.split(".")[0] in IO_MODULES
    ]
    found += [
        f"{where(path, line)} calls {name}()"
        for line, name, owner in calls(path)
        if name in IO_CALLS or (name in CLOCK_CALLS and owner in CLOCK_OWNERS)
    ]
    assert not found, found


@pytest.mark.parametrize("path", list(python_files(ROOT / "fhir_mappers")), ids=lambda p: p.name)
def test_the_mappers_import_nothing_from_the_service(path: Path) -> None:
    found = [m for _, m in imports(path) if m.split(".")[0] == "cds_service"]
    assert not found, (path.name, found)


@pytest.mark.parametrize(
    "path", list(python_files(ROOT / "cds_service" / "engine")), ids=lambda p: p.name
)
def test_the_engine_imports_only_itself_from_the_service(path: Path) -> None:
    found = [
        m
        for _, m in imports(path)
        if m.split(".")[0] == "cds_service" and not m.startswith("cds_service.engine")
    ]
    assert not found, (path.name, found)


def test_only_the_web_layer_imports_flask() -> None:
    web = {p.resolve() for p in python_files(*WEB_LAYER)}
    found = [
        where(path, line)
        for path in python_files(ROOT / "cds_service", ROOT / "fhir_mappers")
        if path.resolve() not in web
        for line, module in imports(path)
        if module.split(".")[0] in {"flask", "werkzeug", "flask_cors"}
    ]
    assert not found, found


def test_the_checks_see_what_they_check() -> None:
    """The scan finds real imports (a check that finds nothing would always pass)."""
    hooks = ROOT / "cds_service" / "routes" / "hooks.py"
    assert any(m == "flask" for _, m in imports(hooks))
    rules = ROOT / "cds_service" / "engine" / "rules.py"
    assert any(m == "cds_service.engine.assessment" for _, m in imports(rules))
    assert any(name == "sorted" for _, name, _ in calls(rules))
