"""Imports run one way: ``models → selectors → services/lifecycle → execution → entry points``.

Read from the source (like ``test_engine_never_imports_django``), so it needs no database:
- every project module is put in a layer (``LAYERS``; a module nobody listed fails the test, so a new
  module gets a deliberate place);
- a module imports only from its own layer or a lower one;
- the project's modules have no import cycle (within a layer either);
- no project module is imported inside a function to dodge a cycle (the one exception:
  ``AppConfig.ready``, which Django calls once every app's models exist).
Imports under ``if TYPE_CHECKING:`` count for the layers (a type from a higher layer is a sign the
function is in the wrong layer too) but not for cycles (they are never executed).
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("accounts", "config", "runs", "web", "workflows")

MODELS, SELECTORS, SERVICES, EXECUTION, ENTRY = range(5)
NAMES = ["models", "selectors", "services/lifecycle", "execution", "entry points"]

# First match wins (fnmatch on the dotted module name).
LAYERS: list[tuple[str, int]] = [
    # Models and what everything may use: settings, errors, the pure engine, crypto helpers.
    ("workflows.engine", MODELS), ("workflows.engine.*", MODELS),
    ("*.models", MODELS), ("config.errors", MODELS), ("config.settings", MODELS), ("config.sqlite*", MODELS),
    ("accounts.crypto", MODELS), ("accounts.tokens", MODELS), ("*.migrations*", MODELS),
    ("config.localkeys", MODELS), ("config.settings_test", MODELS), ("workflows.budgets", MODELS),
    ("config.stamp", MODELS), ("config.jsoninput", MODELS), ("config.logmask", MODELS),
    # Hot-path statements compiled once, and the one fast JSON encoder (the executor pipe uses it).
    ("config.hotsql", MODELS), ("config.fastjson", MODELS), ("config.gctune", MODELS),
    ("accounts", MODELS), ("config", MODELS), ("runs", MODELS), ("web", MODELS), ("workflows", MODELS),
    ("runs.dialects", MODELS), ("*.management", MODELS), ("*.management.commands", MODELS),
    ("web.templatetags", MODELS), ("web.views", MODELS), ("workflows.demo", ENTRY),
    # Reads.
    ("*.selectors", SELECTORS), ("runs.versions", SELECTORS), ("runs.representations", SELECTORS),
    ("runs.http_policy", SELECTORS), ("runs.taskqueue", SELECTORS), ("runs.live", SELECTORS),
    ("runs.signing", SELECTORS), ("config.exceptions", SELECTORS),
    # The sub-workflow call graph of a graph being validated (reads the team's workflows).
    ("workflows.calls", SELECTORS),
    # Who the request is (token or session) and which team it acts for: what selectors are handed.
    ("accounts.authentication", SELECTORS), ("accounts.permissions", SELECTORS),
    # The outbound policies of a team's database and broker credentials (decrypted when used).
    ("accounts.connections", SELECTORS),
    # Writes: services, and the run lifecycle with what its end-of-run work needs.
    ("*.services", SERVICES), ("runs.lifecycle", SERVICES), ("runs.deadletters", SERVICES),
    ("runs.callbacks", SERVICES), ("runs.batches", SERVICES), ("runs.files", SERVICES),
    ("runs.idempotency", SERVICES),
    ("workflows.inline_secrets", SERVICES),
    # Execution: the executor, the engine's services for a run, the dispatch seam.
    ("runs.executor", EXECUTION), ("runs.runtime", EXECUTION), ("runs.execution", EXECUTION),
    # The execution tier: the pool of executor processes and an executor process's main loop.
    ("runs.pool", EXECUTION), ("runs.executor_process", EXECUTION),
    # Entry points: HTTP APIs, dialects, pages, websockets, tasks, the periodic pass, triggers.
    ("*", ENTRY),
]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> Iterator[pathlib.Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def layer(module: str) -> int:
    for pattern, value in LAYERS:
        if fnmatch.fnmatchcase(module, pattern):
            return value
    raise AssertionError(module)


def project(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES


def resolve(name: str, modules: set[str]) -> str:
    """``from runs import services`` imports ``runs.services`` when that is a module."""
    return name if name in modules else name


class Imports(ast.NodeVisitor):
    """Module-level imports (with the names imported) and imports inside functions."""

    def __init__(self) -> None:
        self.top: list[tuple[str, list[str], int, bool]] = []
        self.typing_only = False
        self.inner: list[tuple[str, int, str]] = []
        self.functions: list[str] = []
        self.classes: list[str] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            self.typing_only, before = True, self.typing_only
            for child in node.body:
                self.visit(child)
            self.typing_only = before
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _add(self, module: str, names: list[str], lineno: int) -> None:
        if not project(module):
            return
        if self.functions:
            where = ".".join([*self.classes, *self.functions])
            self.inner.append((module, lineno, where))
        else:
            self.top.append((module, names, lineno, self.typing_only))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, [], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self._add(node.module, [a.name for a in node.names], node.lineno)


def import_graph(*, runtime_only: bool = False) -> tuple[dict[str, set[str]], dict[str, list[str]], list[str]]:
    """(module -> the project modules it imports, module -> its import lines, inner-import offenders).
    ``runtime_only``: leave out the imports under ``if TYPE_CHECKING:``."""
    parsed = {module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in project_files()}
    modules = set(parsed)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    lines: dict[str, list[str]] = {m: [] for m in modules}
    inner: list[str] = []
    for module, (path, tree) in parsed.items():
        visitor = Imports()
        visitor.visit(tree)
        for target, names, lineno, typing_only in visitor.top:
            if typing_only and runtime_only:
                continue
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]
            for t in targets:
                if t in modules and t != module:
                    graph[module].add(t)
                    lines[module].append(f"{path.relative_to(ROOT)}:{lineno} imports {t}")
        for target, lineno, where in visitor.inner:
            if where.endswith("ready") and path.name == "apps.py":
                continue  # Django: apps.py is imported before the models exist
            inner.append(f"{path.relative_to(ROOT)}:{lineno} ({where}) imports {target}")
    return graph, lines, inner


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_import_goes_to_the_same_or_a_lower_layer() -> None:
    graph, lines, _ = import_graph()
    upward = []
    for module, targets in graph.items():
        for target in targets:
            if layer(target) > layer(module):
                where = next(line for line in lines[module] if line.endswith(f"imports {target}"))
                upward.append(f"{where}: {NAMES[layer(module)]} -> {NAMES[layer(target)]}")
    assert sorted(upward) == []


def test_the_project_modules_have_no_import_cycle() -> None:
    graph, _, _ = import_graph(runtime_only=True)
    assert cycles(graph) == []


def test_no_project_module_is_imported_inside_a_function() -> None:
    _, _, inner = import_graph()
    without_lines = {line.split(":", 1)[0] + " " + line.split(" ", 1)[1] for line in inner}
    assert sorted(without_lines) == []


def test_the_checks_see_the_project() -> None:
    graph, _, _ = import_graph()
    assert len(graph) > 80 and {"runs.lifecycle", "runs.executor", "runs.dialects.dify", "web.views.runs"} <= set(graph)
    assert layer("runs.lifecycle") < layer("runs.execution") < layer("runs.apis")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
