"""The house's shape: rooms import only rooms below them, and no module imports in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "odqa"

ROOMS = {
    "errors": 0,
    "_version": 0,
    "threads": 0,
    "fs": 1,
    "extras": 1,
    "corpus": 2,
    "models": 3,
    "encode": 4,
    "index": 5,
    "retrieve": 6,
    "read": 6,
    "qa": 7,
    "integrations": 8,
    "evaluate": 8,
    "train": 9,
    "tune": 9,
    "render": 10,
    "plots": 10,
    "server": 11,
    "cli": 12,
}
"""Bottom to top, in the order data flows. Rooms of the same rank do not import each other.
``integrations`` (the LangChain and LlamaIndex adapters) sits on ``qa`` and nothing imports it.
The package face (``odqa/__init__.py``) sits above all and no room imports it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str | None:
    """``odqa.index.late.codec`` -> ``index``; the face ``odqa`` -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def typing_only_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks: imports there never run."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[str, int]]:
    """``(module, line)`` of every ``odqa`` import in ``path`` (at any depth)."""
    found = []
    package = module_name(path)
    is_init = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    TYPING_ONLY[module_name(path)] = typing_only_lines(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + (1 if is_init else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "odqa" or target.startswith("odqa."):
                for alias in node.names:  # `from odqa.index import late` names a module
                    candidate = f"{target}.{alias.name}"
                    inner = target != "odqa" and module_exists(candidate)
                    found.append((candidate if inner else target, node.lineno))  # `from odqa
                    # import fs` runs the face first: it counts as importing the face
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("odqa")]
    return found


def module_exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


TYPING_ONLY: dict[str, set[int]] = {}
SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(path): imports_of(path) for path in SOURCES}


def test_every_room_has_a_rank() -> None:
    rooms = {room_of(module) for module in GRAPH} - {None}
    assert rooms <= set(ROOMS), f"rooms without a rank: {sorted(rooms - set(ROOMS))}"


def upward_imports(module: str, imports: list[tuple[str, int]]) -> list[str]:
    """What ``module`` imports against the rule, one line each."""
    room = room_of(module)
    if room is None:
        return []  # the face may import everything
    wrong = []
    for target, line in imports:
        other = room_of(target)
        if other == room:
            continue
        if other is None:
            wrong.append(f"line {line}: imports the package face `{target}`")
        elif ROOMS[other] >= ROOMS[room]:
            wrong.append(f"line {line}: {room} (rank {ROOMS[room]}) imports {target}")
    return wrong


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_rooms_import_only_rooms_below(module: str) -> None:
    wrong = upward_imports(module, GRAPH[module])
    assert not wrong, f"{module}: " + "; ".join(wrong)


def test_no_module_imports_in_a_circle() -> None:
    """At run time: imports only a type checker reads are left out."""
    edges = {
        module: {
            target
            for target, line in imports
            if target in GRAPH and target != module and line not in TYPING_ONLY[module]
        }
        for module, imports in GRAPH.items()
    }
    for module in edges:  # a package importing its own submodules is not a circle
        edges[module] = {t for t in edges[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_check_catches_wrong_imports() -> None:
    """The rule itself: upward, sideways between peers, and the face are refused."""
    assert upward_imports("odqa.index.bm25", [("odqa.retrieve.searcher", 3)])
    assert upward_imports("odqa.read.extractive", [("odqa.retrieve.hit", 3)])
    assert upward_imports("odqa.index.manifest", [("odqa", 3)])
    assert not upward_imports("odqa.retrieve.searcher", [("odqa.index.kind", 3)])


def test_nothing_in_odqa_imports_the_integrations() -> None:
    """The framework adapters are optional extras: odqa runs without their frameworks."""
    importers = [
        f"{module} (line {line})"
        for module, imports in GRAPH.items()
        if room_of(module) != "integrations"
        for target, line in imports
        if room_of(target) == "integrations"
    ]
    assert not importers, "imports the integrations: " + ", ".join(importers)
