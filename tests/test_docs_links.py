"""The documentation's links lead somewhere and its JSON examples are JSON.

Integrators copy the examples and follow the links; a renamed file or a JSON excerpt
with a stray comment would mislead them silently, so both are checked here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))
LINKED_FILES = [ROOT / "README.md", *DOC_FILES]

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links in code are examples, not links)."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        marker = FENCE.match(line.strip())
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif marker.group(1) == fence:
                fence = None
            continue
        if fence is None:
            lines.append(line)
    return lines


def json_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block marked ```json."""
    blocks: list[tuple[int, str]] = []
    body: list[str] | None = None
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if body is None:
            if stripped.startswith("```") and stripped[3:].strip().lower() == "json":
                body, start = [], number
        elif stripped.startswith("```"):
            blocks.append((start, "\n".join(body)))
            body = None
        else:
            body.append(line)
    assert body is None, f"a ```json block opened at line {start} is never closed"
    return blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    targets: list[str] = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if not EXTERNAL.match(target):
                targets.append(target)
    return targets


def broken(path: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``path``) leads nowhere, or None."""
    file_part, _, fragment = target.partition("#")
    destination = (path.parent / unquote(file_part)).resolve() if file_part else path
    if not destination.exists():
        return "no such file"
    if file_part and ROOT not in destination.parents and destination != ROOT:
        return "outside the repository"
    if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
        return f"no heading with anchor #{fragment}"
    return None


def test_the_docs_exist_and_have_links_and_examples() -> None:
    names = {p.name for p in DOC_FILES}
    assert {"README.md", "integration.md", "sandbox.md", "prefetch.md", "cards.md"} <= names
    assert {"deployment.md", "clinical-logic.md", "settings.md"} <= names
    assert sum(len(relative_links(p)) for p in LINKED_FILES) > 20
    assert sum(len(json_blocks(p.read_text(encoding="utf-8"))) for p in DOC_FILES) > 20


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(path: Path) -> None:
    problems = [
        f"{target}: {reason}"
        for target in relative_links(path)
        if (reason := broken(path, target)) is not None
    ]
    assert not problems, f"broken links in {path.relative_to(ROOT)}: {problems}"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_every_json_block_parses(path: Path) -> None:
    problems = []
    for line, body in json_blocks(path.read_text(encoding="utf-8")):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            problems.append(f"block at line {line}: {exc}")
    assert not problems, f"JSON that does not parse in docs/{path.name}: {problems}"


def test_the_index_links_every_document() -> None:
    linked = {target.partition("#")[0] for target in relative_links(DOCS / "README.md")}
    missing = [p.name for p in DOC_FILES if p.name != "README.md" and p.name not in linked]
    assert not missing, f"docs/README.md does not link: {missing}"


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The helpers themselves: a bad link, a bad anchor and bad JSON are all noticed."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Top heading\n\n## `Code` and more\n\n[ok](#top-heading) [ok](#code-and-more)\n"
        "[gone](missing.md) [bad](#nowhere) `[not a link](x.md)`\n\n"
        '```json\n{"a": 1,}\n```\n\n```text\n[example](nowhere.md)\n```\n',
        encoding="utf-8",
    )
    targets = relative_links(page)
    assert targets == ["#top-heading", "#code-and-more", "missing.md", "#nowhere"]
    assert [broken(page, t) for t in targets] == [
        None,
        None,
        "no such file",
        "no heading with anchor #nowhere",
    ]
    [(line, body)] = json_blocks(page.read_text(encoding="utf-8"))
    assert line == 8
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
