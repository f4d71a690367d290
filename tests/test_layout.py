"""The layout rules of docs/architecture.md, checked over the source's syntax trees.

- No import cycle between boxsmith's modules, counting imports inside functions and under
  `TYPE_CHECKING` too (they run later or never, but a cycle through them still ties the modules
  together), and the package `__init__` each import runs first.
- Imports go down the layers: the cli over the stages over the shared leaves. A module may import
  its own layer and the layers below, never one above.
- Public: `boxsmith` (its `__all__`), `boxsmith.errors`, `boxsmith.config`, `boxsmith.sandbox`
  and `boxsmith.tasks` (the invoke tasks, at the cli's layer); everything else is under
  `boxsmith._internal` (or `_`-prefixed inside `boxsmith.sandbox`); tests/test_public_api.py
  holds the examples to the public names.
- Sizes: no module over 400 lines and no function over 60 lines, unless the file says why it
  reads better whole (a comment with the words "reads better whole").
- The project stands alone: nothing in it points at files outside the repository.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "boxsmith"

# Lowest first. A module may import modules of its own layer and of lower ones.
LAYERS: list[tuple[str, ...]] = [
    ("boxsmith.errors",),
    ("boxsmith.config",),
    (
        "boxsmith._internal.retry",
        "boxsmith._internal.progress",
        "boxsmith._internal.gha",
        "boxsmith._internal.lock",
        "boxsmith._internal.dockerfile",
        "boxsmith._internal.extras",  # which pip extra brings a missing module: a leaf
        "boxsmith._internal.history",  # build and smoke append to it: a leaf
    ),
    ("boxsmith._internal.spec", "boxsmith._internal.docker"),
    ("boxsmith._internal.render",),
    ("boxsmith._internal.lint", "boxsmith._internal.build"),
    ("boxsmith._internal.backend",),
    ("boxsmith._internal.publish",),
    ("boxsmith._internal.smoke",),
    ("boxsmith._internal.release",),
    # report reads what `status` reads (cli/status.py): the cli's layer
    ("boxsmith._internal.cli", "boxsmith._internal.report", "boxsmith.__main__", "boxsmith.tasks"),
]
# The public sandbox tool stands beside the pipeline: it may use the shared leaves only.
SANDBOX_MAY_USE = (
    "boxsmith.errors",
    "boxsmith.config",
    "boxsmith._internal",  # the package of retry: a docstring
    "boxsmith._internal.retry",
)
PUBLIC = {
    "boxsmith", "boxsmith.errors", "boxsmith.config", "boxsmith.sandbox", "boxsmith.tasks",
    "boxsmith.__main__",
}  # fmt: skip
WHOLE = "reads better whole"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """Every boxsmith module `name` imports (line, module), at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate in MODULES and candidate != name:
                yield node.lineno, candidate
                # importing a.b.c runs the __init__ of a.b first: an edge too, unless it is a
                # package the importer itself is in (that one has run already)
                parent = candidate.rpartition(".")[0]
                while parent and parent != "boxsmith":
                    if not (name == parent or name.startswith(parent + ".")):
                        yield node.lineno, parent
                    parent = parent.rpartition(".")[0]


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for _, target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def _layer(name: str) -> int | None:
    if name in ("boxsmith", "boxsmith._internal"):  # `__version__`, a docstring: both leaves
        return 0
    for number, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return number
    return None


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRAPH, "boxsmith.errors", [(1, "boxsmith.config")])
    assert ["boxsmith.config", "boxsmith.errors"] in _cycles()


def test_an_import_runs_the_package_init_first(tmp_path: Path) -> None:
    source = tmp_path / "builder.py"
    source.write_text("def f():\n    from boxsmith._internal.lint.rules import RULES\n")
    found = {target for _, target in _imports("boxsmith._internal.build.builder", source)}
    # lint/__init__ runs before lint.rules; _internal/__init__ has run for the importer already
    assert found == {"boxsmith._internal.lint.rules", "boxsmith._internal.lint"}


def test_every_module_has_a_layer() -> None:
    unplaced = [
        name
        for name in MODULES
        if _layer(name) is None
        and name != "boxsmith._internal"
        and not name.startswith("boxsmith.sandbox")
    ]
    assert unplaced == [], "add them to LAYERS in tests/test_layout.py and docs/architecture.md"


def test_imports_go_down_the_layers() -> None:
    upward = []
    for name, imports in GRAPH.items():
        own = _layer(name)
        for line, target in imports:
            if name == "boxsmith":  # the public facade names entry points of every stage
                allowed = True
            elif name.startswith("boxsmith.sandbox"):
                allowed = target.startswith("boxsmith.sandbox") or target in SANDBOX_MAY_USE
            else:
                theirs = _layer(target)
                allowed = own is None or (theirs is not None and theirs <= own)
            if not allowed:
                upward.append(f"{MODULES[name].relative_to(ROOT)}:{line}: imports {target}")
    assert upward == []


def test_an_upward_import_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GRAPH, "boxsmith._internal.spec.names", [(7, "boxsmith._internal.cli.app")])
    with pytest.raises(
        AssertionError, match=r"spec/names.py:7: imports boxsmith._internal.cli.app"
    ):
        test_imports_go_down_the_layers()


def test_only_the_public_modules_are_outside_internal() -> None:
    outside = {
        name
        for name in MODULES
        if not name.startswith("boxsmith._internal") and not (name.startswith("boxsmith.sandbox._"))
    }
    assert outside == PUBLIC


def _says_why(lines: list[str]) -> bool:
    return any(WHOLE in line for line in lines if line.lstrip().startswith(("#", '"', "'")))


def _head(text: str) -> list[str]:
    """A module's docstring and the comment lines before its first import or definition."""
    tree = ast.parse(text)
    docstring = ast.get_docstring(tree) or ""
    first = next((n.lineno for n in tree.body if not isinstance(n, ast.Expr)), 1)
    comments = [line for line in text.splitlines()[: first - 1] if line.lstrip().startswith("#")]
    return [f"# {line}" for line in docstring.splitlines()] + comments


def test_modules_are_short_or_say_why() -> None:
    long = []
    for path in MODULES.values():
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and not _says_why(_head(text)):
            long.append(f"{path.relative_to(ROOT)}: {len(lines)} lines")
    assert long == []


def test_functions_are_short_or_say_why() -> None:
    long = []
    for path in MODULES.values():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > MAX_FUNCTION_LINES and not _says_why(body):
                long.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} ({length} lines)")
    assert long == []


def test_nothing_points_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"\.\./shared|/work/shared|shared/reference|e2b-templates\.md")
    pointing = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".toml", ".yml", ".yaml", ".j2", ".txt", ""):
            continue
        if name == "tests/test_layout.py" or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                pointing.append(f"{name}:{number}: {line.strip()[:80]}")
    assert pointing == []
