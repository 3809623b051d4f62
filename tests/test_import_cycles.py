"""No import circles in the shipped packages, at either scale a reader meets them.

- Between rooms (``cds_service.<sub>`` and ``fhir_mappers``): a room that imports
  another must not be imported back by it, however indirectly.
- Between modules: no two modules import each other, directly or through others.

Every import counts, at the top of a module, inside a function (a lazy import only
hides a circle from Python, not from the next reader) or under ``TYPE_CHECKING``. An
import of a module's own package (its ``__init__``) is the package, not a circle.
Read from the source with ``ast`` (``tests/test_layering.py``'s reader), so a circle
fails here with the modules that make it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tests.test_layering import ROOT, module_file, module_imports, python_files

SHIPPED = ("cds_service", "fhir_mappers")


def module_name(path_parts: tuple[str, ...]) -> str:
    parts = path_parts[:-1] if path_parts[-1] == "__init__" else path_parts
    return ".".join(parts)


def module_graph() -> dict[str, set[str]]:
    """module -> the shipped modules it imports (its own packages left out)."""
    graph: dict[str, set[str]] = {}
    for path in python_files(*(ROOT / name for name in SHIPPED)):
        module = module_name(path.relative_to(ROOT).with_suffix("").parts)
        graph[module] = {
            imported
            for _, imported, _ in module_imports(path)
            if imported.split(".")[0] in SHIPPED
            and module_file(imported) is not None
            and imported != module
            and not module.startswith(imported + ".")
        }
    return graph


def room(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] == "fhir_mappers" else ".".join(parts[:2])


def room_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {room(m): set() for m in graph}
    for module, imported in graph.items():
        rooms[room(module)].update(room(i) for i in imported if room(i) != room(module))
    return rooms


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan's algorithm, iterative):
    each is a set of nodes that all reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def test_the_finder_finds_a_circle() -> None:
    """The check below could fail: a circle through three nodes, and one of two, are found;
    a chain is not one."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_room_imports_a_room_that_imports_it_back() -> None:
    rooms = room_graph(module_graph())
    assert len(rooms) > 30 and sum(len(v) for v in rooms.values()) > 80  # it read the tree
    assert circles(rooms) == []


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = module_graph()
    assert "cds_service.fhir.exchange" in graph["cds_service.fhir.client"]  # it sees imports
    assert circles(graph) == []
