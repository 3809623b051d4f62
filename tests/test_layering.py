"""The layering of the house, enforced: a functional core inside a thin shell.

- ``fhir_mappers`` and ``cds_service/engine`` (the core) import no web framework, no
  HTTP client, no database or socket, read no file and no clock: evaluation time is a
  parameter, value sets and settings are handed in.
- ``fhir_mappers`` imports nothing from ``cds_service``; the engine imports from
  ``cds_service`` only its own package.
- The engine says nothing to a clinician: no string in ``cds_service/engine`` is a
  phrase of words (a docstring or an exception's message aside). It returns codes and
  numbers; the sentences are the cards' phrasebook's.
- The cards' modules that compose a card (the summary, the detail, the trend lines, the
  suggestions, the ratings, ...) hold no words of their own either: no string in them of
  two words or more (a docstring or a dict's key aside). The words are the phrase
  modules' (``PHRASE_MODULES``).
- The web layer (``cds_service/app.py`` and ``cds_service/routes/``) is the only
  importer of Flask.
- The development harness (``spine_cds_dev``, not in the wheel) is never imported by
  ``cds_service``, save the command line's lazy offer of its commands
  (``cds_service/cli/harness.py``, inside a function); and the server (everything
  ``app.py``, ``server.py`` and ``warmup.py`` import, however deep and however late)
  imports neither the harness nor the tests, the benchmarks or the command line.

Read from the source with ``ast``, so a violation fails here with the file and line.
"""

from __future__ import annotations

import ast
import re
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
HARNESS = "spine_cds_dev"
# The one module of the service that may name the harness, and only inside a function.
HARNESS_OFFER = ROOT / "cds_service" / "cli" / "harness.py"
SERVER_ENTRIES = ("cds_service.app", "cds_service.server", "cds_service.warmup")
NOT_FOR_THE_SERVER = (
    HARNESS,
    "tests",
    "bench",
    "cds_service.cli",
    "cds_service.__main__",
    "cds_service.tools",
)


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from [root] if root.is_file() else sorted(root.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``."""
    for line, module, _ in module_imports(path, with_names=False):
        yield line, module


def module_imports(path: Path, with_names: bool = True) -> Iterator[tuple[int, str, bool]]:
    """(line, absolute module name, whether inside a function) for every import in
    ``path``; ``with_names``: for ``from package import name`` also ``package.name``,
    which may be a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    in_function = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        lazy = id(node) in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, lazy
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module, lazy
            if with_names:
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}", lazy


def module_file(module: str) -> Path | None:
    """The file of a module of this repository, or None (the standard library, a
    dependency, or a name that is not a module)."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(*entries: str) -> dict[str, str]:
    """Every module of the repository the entries import, however deep and however late
    (imports inside functions count), with parent packages: module -> who imports it."""
    found: dict[str, str] = {entry: "(entry)" for entry in entries}
    todo = list(entries)
    while todo:
        module = todo.pop()
        path = module_file(module)
        if path is None:
            continue
        for line, imported, _ in module_imports(path):
            parts = imported.split(".")
            for end in range(1, len(parts) + 1):
                name = ".".join(parts[:end])
                if name not in found and module_file(name) is not None:
                    found[name] = where(path, line)
                    todo.append(name)
    return found


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


def test_the_service_never_imports_the_development_harness() -> None:
    found = [
        f"{where(path, line)} imports {module}"
        + (" outside a function" if path.resolve() == HARNESS_OFFER else "")
        for path in python_files(ROOT / "cds_service", ROOT / "fhir_mappers")
        for line, module, lazy in module_imports(path, with_names=False)
        if module.split(".")[0] == HARNESS and (path.resolve() != HARNESS_OFFER or not lazy)
    ]
    assert not found, found


def test_the_server_imports_neither_the_harness_nor_the_tests() -> None:
    closure = import_closure(*SERVER_ENTRIES)
    found = [
        f"{module} (imported at {closure[module]})"
        for module in closure
        if any(module == bad or module.startswith(bad + ".") for bad in NOT_FOR_THE_SERVER)
    ]
    assert not found, found
    assert "cds_service.pipeline" in closure  # the scan reached the request path


# Issue 22: a module one head can hold. The shipped packages are what the wheel installs.
MAX_MODULE_LINES = 400


def test_no_shipped_module_is_over_400_lines() -> None:
    files = list(python_files(ROOT / "cds_service", ROOT / "fhir_mappers"))
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in files}
    over = sorted(f"{p.relative_to(ROOT)}: {n}" for p, n in sizes.items() if n > MAX_MODULE_LINES)
    assert not over, "lines; split along the data flow: " + "; ".join(over)
    assert len(files) > 100 and max(sizes.values()) > 300  # it read the real tree


def test_the_checks_see_what_they_check() -> None:
    """The scan finds real imports (a check that finds nothing would always pass)."""
    hooks = ROOT / "cds_service" / "routes" / "hooks.py"
    assert any(m == "flask" for _, m in imports(hooks))
    rules = ROOT / "cds_service" / "engine" / "rules.py"
    assert any(m == "cds_service.engine.assessment" for _, m in imports(rules))
    assert any(name == "sorted" for _, name, _ in calls(rules))
    offer = [(module, lazy) for _, module, lazy in module_imports(HARNESS_OFFER)]
    assert ("spine_cds_dev.commands", True) in offer
    demo = import_closure("spine_cds_dev.demo")
    assert "spine_cds_dev.service_process" in demo and "cds_service.tools.services" in demo


# Two words or more: letters, whitespace, letters ("early order", "No CRP since ...").
PHRASE = re.compile(r"[A-Za-z][\s]+[A-Za-z(]")


def phrases(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) for every string in ``source`` that reads as words, however it is
    written: a plain or implicitly joined string, an f-string (its values read as "X"),
    strings joined with +. Docstrings and the messages of exceptions raised (for whoever
    configures the service, never on a card) are left out."""
    tree = ast.parse(source)
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise):
            skipped.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.expr):
            continue
        text = _text_of(node)
        if text is None:
            continue
        skipped.update(id(inner) for inner in ast.walk(node))  # judged as a whole
        if PHRASE.search(text):
            yield node.lineno, text


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstrings' nodes in ``tree`` (a module's, a class's, a function's)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _text_of(node: ast.AST) -> str | None:
    """The text a string expression makes, or None when it is no string expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_of(v) or "X" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text_of(node.left), _text_of(node.right)
        if left is not None or right is not None:
            return (left or "X") + (right or "X")
    return None


@pytest.mark.parametrize(
    "path", list(python_files(ROOT / "cds_service" / "engine")), ids=lambda p: p.name
)
def test_the_engine_holds_no_sentence_for_a_clinician(path: Path) -> None:
    found = [
        f"{where(path, line)}: {text!r}" for line, text in phrases(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "the engine returns codes and numbers; put the words in cds_service/cards "
        f"(the phrasebook): {found}"
    )


def test_the_sentence_check_finds_sentences_however_written() -> None:
    """The check sees a sentence put back into the engine in any of its usual forms, and
    leaves docstrings and exception messages alone (a check that finds nothing would
    always pass)."""
    source = '''
"""A module docstring of several words."""
def rule(day, n):
    """A docstring of several words."""
    if n < 0:
        raise ValueError(f"setting {n} must not be negative")
    a = Remark("early-order", {"day": day})
    b = "Latest CRP old"
    c = f"Ordered on day {day} of treatment"
    d = ("No pain score "
         "recorded")
    e = "CRP " + str(n) + " mg/L"
    f = f"{day}" + " days ago"
    g = "hs-CRP used"
    return ["; ".join([]), "mg/L", "crp-not-recent", f"{day}/10"]
'''
    found = [line for line, _ in phrases(source)]
    assert found == [8, 9, 10, 12, 13, 14], list(phrases(source))


# The cards' words have their homes, the phrase modules (docs/architecture.md, "a sentence
# a clinician reads"); every other module of cds_service/cards composes a card from the
# engine's answer and those words, and holds none of its own.
CARDS = ROOT / "cds_service" / "cards"
PHRASE_MODULES = frozenset(
    {
        "text",
        "phrase",
        "phrasebook",
        "remark_phrases",
        "imaging_phrases",
        "level_phrases",
        "completeness_phrases",
        "marker_phrases",
        "known_phrases",
        "summary_phrases",
        "trend_phrases",
        "left_out",
        "episode_line",
        "words",
    }
)
COMPOSERS = [path for path in python_files(CARDS) if path.stem not in PHRASE_MODULES]
# Two words or more: letters, a space, letters ("Order a CRP", "not shown: see the trend").
WORDS = re.compile(r"[A-Za-z]+ +[A-Za-z]+")


def word_literals(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) for every string constant in ``source`` that holds two words or more:
    a plain string, or one part of an f-string (its joiners, such as ", " or ": ", hold
    none). Docstrings and the keys of a dict (codes, such as "crp" or "order-sign") are
    left out."""
    tree = ast.parse(source)
    skipped = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in skipped and WORDS.search(node.value):
                yield node.lineno, node.value


@pytest.mark.parametrize("path", COMPOSERS, ids=lambda p: p.name)
def test_the_cards_composers_hold_no_words_of_their_own(path: Path) -> None:
    found = [
        f"{where(path, line)}: {text!r}"
        for line, text in word_literals(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "a sentence a clinician reads lives in a phrase module of cds_service/cards "
        f"({', '.join(sorted(PHRASE_MODULES))}); compose it from there: {found}"
    )


def test_the_word_check_sees_words_and_leaves_codes_alone() -> None:
    """The check sees words in a plain string, an f-string's part and strings joined, and
    leaves docstrings, a dict's keys, codes and joiners alone; it reads the composers the
    issue named (a check that finds nothing would always pass)."""
    source = '''
"""A module docstring of several words."""
KEYS = {"order-sign": 1, "two words": 2}
def label(n, named):
    """A docstring of several words."""
    a = "crp-not-falling"
    b = f"{named}, {n}: {named} {n}"
    c = "Order a CRP"
    d = f"Remove the {named} order"
    e = ("No pain score "
         "recorded")
    return [a, b, "mg/L", "; ".join([]), c, d, e]
'''
    assert sorted(line for line, _ in word_literals(source)) == [8, 9, 10]
    assert {"summary", "detail", "trend_lines", "actions", "render", "ratings"} <= {
        path.stem for path in COMPOSERS
    }
    assert all((CARDS / f"{name}.py").is_file() for name in PHRASE_MODULES)
