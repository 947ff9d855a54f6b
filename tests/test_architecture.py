"""Structure rules of the library, checked on the source: the module import graph and module sizes.

Every ``import`` counts, at module level and inside functions, relative or absolute:
an import inside a function still makes the two modules depend on each other, and a
cycle hidden that way is still a cycle.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("builder", "model", "manifests")     # top-level packages users install
MAX_LINES = 400
# Modules allowed over MAX_LINES, with the reason. Keep empty: split a module by role instead.
LONG_MODULES: dict[str, str] = {}
# Names under which the test suite's own modules are importable (tests/ is on sys.path when pytest runs).
TEST_MODULES = ("tests", "conftest", "support", "builder_helpers")
DEMO = "builder.demo"
DEMO_IMPORTERS = ("builder.commands.demo",)     # the one library module that may import builder.demo


@dataclass(frozen=True)
class Edge:
    source: str         # importing module
    target: str         # imported module (a module of LIBRARY when known, else the name as written)
    line: int
    file: Path


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_files() -> dict[str, Path]:
    return {module_name(path): path for package in LIBRARY
            for path in sorted((REPO_ROOT / package).rglob("*.py"))}


def _known(name: str, modules: Iterable[str]) -> str:
    """The longest prefix of ``name`` that is a library module (``a.b.func`` -> ``a.b``); else ``name``."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return name


def imports_of(name: str, path: Path, modules: Iterable[str]) -> list[Edge]:
    modules = set(modules)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):                     # walk: imports inside functions and classes too
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.append(Edge(name, _known(alias.name, modules), node.lineno, path))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                if node.level > 1:
                    anchor = anchor[:-(node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                # `from a import b` imports module a.b when there is one, else a name from module a.
                edges.append(Edge(name, _known(f"{base}.{alias.name}", modules), node.lineno, path))
    return edges


@lru_cache(maxsize=1)
def import_graph() -> tuple[dict[str, Path], list[Edge]]:
    files = library_files()
    return files, [edge for name, path in files.items() for edge in imports_of(name, path, files)]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (``[a, b, ..., a]``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:              # Tarjan; the graph has ~150 nodes, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        start = min(component)
        # Shortest way back to the start inside the component (breadth first).
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            following = []
            for node in frontier:
                for nxt in sorted(graph.get(node, ())):
                    if nxt in component and nxt not in previous:
                        previous[nxt] = node
                        following.append(nxt)
            frontier = following
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(previous[path[-1]])
        cycles.append(path[::-1])
    return cycles


def _where(edges: Iterable[Edge]) -> str:
    return "\n".join(f"  {e.file.relative_to(REPO_ROOT)}:{e.line}: {e.source} imports {e.target}" for e in edges)


def test_the_graph_sees_imports_of_every_kind():
    files, edges = import_graph()
    pairs = {(e.source, e.target) for e in edges}
    assert len(files) > 100
    assert ("builder.export.stage", "builder.export.hf") in pairs                   # module level
    assert ("builder.release.verify_exports", "builder.export.official") in pairs  # inside a function
    assert ("builder.commands.demo", "builder.demo.pipeline") in pairs             # `from module import name`


def test_relative_imports_resolve(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("from . import sibling\nfrom ..other import thing\n\ndef f():\n    from .deep.x import y\n")
    known = {"pkg.sub.sibling", "pkg.other", "pkg.sub.deep.x"}
    targets = {e.target for e in imports_of("pkg.sub.mod", module, known)}
    assert targets == {"pkg.sub.sibling", "pkg.other", "pkg.sub.deep.x"}


def test_cycle_finder_reports_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    cycles = sorted(find_cycles(graph))
    assert cycles == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_cycle():
    files, edges = import_graph()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for edge in edges:
        if edge.target in files and edge.target != edge.source:
            graph[edge.source].add(edge.target)
    cycles = find_cycles(graph)
    where = {(e.source, e.target): e for e in edges}
    message = "\n\n".join(" -> ".join(cycle) + "\n" + _where(where[(a, b)] for a, b in pairwise(cycle))
                          for cycle in cycles)
    assert not cycles, f"import cycle(s):\n{message}"


def test_no_module_over_the_line_limit():
    long = {}
    for name, path in library_files().items():
        with open(path, encoding="utf-8") as handle:
            count = sum(1 for _ in handle)
        if count > MAX_LINES and name not in LONG_MODULES:
            long[str(path.relative_to(REPO_ROOT))] = count
    assert not long, f"modules over {MAX_LINES} lines (split them by role): {long}"
    stale = set(LONG_MODULES) - set(library_files())
    assert not stale, f"LONG_MODULES names modules that no longer exist: {sorted(stale)}"


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_demo_command_imports_the_demo_package():
    _, edges = import_graph()
    bad = [e for e in edges if _inside(e.target, DEMO) and not _inside(e.source, DEMO)
           and e.source not in DEMO_IMPORTERS]
    assert not bad, f"{DEMO} is for the demo command, the tests and the benches only:\n{_where(bad)}"


def test_model_does_not_import_the_command_line_or_the_demo():
    _, edges = import_graph()
    bad = [e for e in edges if _inside(e.source, "model")
           and (_inside(e.target, "builder.commands") or _inside(e.target, DEMO))]
    assert not bad, f"model/ depends on builder's library modules only:\n{_where(bad)}"


@pytest.mark.parametrize("package", TEST_MODULES)
def test_library_does_not_import_the_tests(package):
    _, edges = import_graph()
    bad = [e for e in edges if _inside(e.target, package)]
    assert not bad, f"library code imports test code:\n{_where(bad)}"


# --- One module owns the media-root layout -------------------------------------------------------------------------
LAYOUT_MODULE = "builder.manifest.media_root"
LAYOUT_FILES = ("manifest.csv", "decisions.csv", "annotations.json")
LAYOUT_DIRS = ("clips", "audio", "frames", "frames_full")
STATUS_LOG_SUFFIX = "_status.jsonl"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def layout_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of string literals that spell a media-root file or folder name as a path.

    Prose (help texts, messages: anything with a space) and docstrings may name the files;
    a path is a literal that *is* such a name, ends in ``/<name>``, starts with ``<folder>/``,
    is the right side of ``something / "<folder>"`` or is assigned as a folder name (``X_DIR = "clips"``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and node.right.value in LAYOUT_DIRS:
            found.append((node.lineno, f'/ "{node.right.value}"'))
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant) \
                and node.value.value in LAYOUT_DIRS \
                and any(isinstance(t, ast.Name) and t.id.endswith("_DIR") for t in targets):  # CLIPS_DIR = "clips"
            found.append((node.lineno, f'= "{node.value.value}"'))
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
            continue
        text = node.value
        if not text or any(c.isspace() for c in text):
            continue
        name = text.rsplit("/", 1)[-1]
        # "audio/x.wav", "frames/*.jpg", f"clips/{...}" are paths; "audio/wav" is a MIME type.
        rest = next((text[len(d) + 1:] for d in LAYOUT_DIRS if text.startswith(f"{d}/")), None)
        if name in LAYOUT_FILES or name.endswith(STATUS_LOG_SUFFIX) or name == "frames_full" \
                or (rest is not None and (not rest or "." in rest or "*" in rest)):
            found.append((node.lineno, text))
    return sorted(found)


def test_layout_literal_finder(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Writes manifest.csv and clips/."""\n'
                      'a = root / "manifest.csv"\nb = root / "clips"\nc = f"audio/{x}.wav"\n'
                      'd = "trim_status.jsonl"\ne = "see manifest.csv for details"\nf = {"audio": 1}\n'
                      'g = "audio/wav"\nh = "frames/*.jpg"\nCLIPS_DIR = "clips"\n')
    assert [line for line, _ in layout_literals(module)] == [2, 3, 4, 5, 9, 10]


def test_only_media_root_spells_the_media_root_layout():
    bad = {f"{path.relative_to(REPO_ROOT)}:{line}": text for name, path in library_files().items()
           if name != LAYOUT_MODULE for line, text in layout_literals(path)}
    assert not bad, f"media-root names spelled outside {LAYOUT_MODULE} (use MediaRoot / its constants): {bad}"
