"""Whatever string of the record an attacker writes, it reaches a card only quoted.

Every example patient is sent through the service in process, once per string of its
record (each kind of element once), with that string replaced by markdown, HTML and
control characters; the card's detail, rendered as CommonMark with raw HTML on, must
show no link, image, HTML or heading of it, and no card text may carry the controls. A
site value set without names is loaded, so that a Condition's display is what names it.
A new phrase that takes a value from the record without ``safe_text.quote`` fails here.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples import load_examples
from cds_service.tools.services import InProcessService, find_service

HOOK = "order-select"
MARK = "Zq9"
PAYLOAD = (
    f"{MARK}[a](https://evil.example/a) ![i](https://evil.example/i) "
    "<img src=x onerror=alert(1)> \u202e\x1b[31m\n# H"
)
# Strings that select what is read rather than say something (a changed code drops the
# resource); dates are left valid for the same reason.
SKIP = {"reference", "system", "resourceType", "id", "fullUrl", "url", "code"}
DATE = re.compile(r"^\d{4}-\d{2}")
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
MD = MarkdownIt("commonmark", {"html": True}).enable("table")


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in SKIP or isinstance(value, dict | list):
                yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    elif isinstance(node, str) and not DATE.match(node):
        yield path, node


def _shape(bundle: dict[str, Any], path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The kind of element a leaf is: its resource type and its path without indexes."""
    resource_type = bundle["entry"][path[1]]["resource"]["resourceType"]
    return (resource_type, *(p for p in path[3:] if not isinstance(p, int)))


def _once_per(key: str, bundle: dict[str, Any], path: tuple[Any, ...]) -> tuple[Any, ...]:
    """Leaves are tried once: each Condition's own in each example (each is named apart),
    one of each kind for the other resources (a series of Observations is read alike)."""
    if bundle["entry"][path[1]]["resource"]["resourceType"] == "Condition":
        return (key, path[1], *_shape(bundle, path))
    return _shape(bundle, path)


def _set(node: Any, path: tuple[Any, ...], value: str) -> None:
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_no_string_of_the_record_reaches_a_card_unquoted(tmp_path: Path) -> None:
    site = tmp_path / "valuesets"
    site.mkdir()
    conditions = json.loads(
        (Path(__file__).parents[2] / "cds_service" / "valuesets" / "conditions.json").read_text()
    )
    nameless = [
        {**{k: v for k, v in e.items() if k != "name"}, "system": "http://site.example/codes"}
        for e in conditions["entries"]
        if e["match"] == "exact"
    ]
    site_file = {"valueSet": "conditions", "source": "test", "entries": nameless}
    (site / "site.json").write_text(json.dumps(site_file))
    config = tmp_path / "spine-cds.toml"
    config.write_text(f'valueset_dir = "{site}"\n')
    seen_on_card: set[tuple[Any, ...]] = set()
    tried: set[tuple[Any, ...]] = set()
    problems: list[str] = []
    with InProcessService(str(config)) as service:
        entry = find_service(service.discovery(), HOOK, service.label)
        for example in load_examples(date(2026, 11, 26)):
            base = copy.deepcopy(example.bundle)
            for e in base["entry"]:  # every condition named by a nameless site entry
                for coding in e["resource"].get("code", {}).get("coding", []):
                    if e["resource"]["resourceType"] == "Condition":
                        coding["system"] = "http://site.example/codes"
            leaves = [
                leaf
                for index, e in enumerate(base["entry"])
                for leaf in _leaves(e["resource"], ("entry", index, "resource"))
            ]
            for path, _ in leaves:
                shape = _shape(base, path)
                if _once_per(example.key, base, path) in tried:
                    continue
                tried.add(_once_per(example.key, base, path))
                bundle = copy.deepcopy(base)
                _set(bundle, path, PAYLOAD)
                request = build_request(
                    HOOK, str(uuid.uuid4()), example.patient_id, example.draft_order
                )
                request["prefetch"] = local_prefetch(
                    entry.prefetch, request["context"], bundle_resources(bundle)
                )
                answer = service.call(entry.id, request)
                body = answer.body if isinstance(answer.body, dict) else {}
                for card in body.get("cards", []):
                    if MARK in card.get("detail", ""):
                        seen_on_card.add(shape)
                        html = MD.render(card["detail"])
                        if 'href="https://evil' in html or 'src="https://evil' in html:
                            problems.append(f"{example.key} {shape}: link or image in the detail")
                        if "<img" in html or "<h1>" in html:
                            problems.append(f"{example.key} {shape}: HTML or heading")
                    for text in _strings(card):
                        if FORBIDDEN.search(text):
                            problems.append(f"{example.key} {shape}: control in {text[:60]!r}")
    assert problems == []
    # the test reaches the card at all: displays, statuses and intents are quoted there
    reached = {shape[0] + "." + ".".join(map(str, shape[1:])) for shape in seen_on_card}
    assert "Condition.code.coding.display" in reached, reached
