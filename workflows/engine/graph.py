"""Parsing and validating a workflow graph (WORKFLOW_FORMAT.md), and its compiled form.

``validate_graph`` reports every problem at once as ``[{"path": JSON pointer, "message"}]``;
``compile_graph`` returns a ``CompiledGraph`` (topology, per-port successors, predecessors,
ancestors, compiled expressions in the process-wide cache) or raises ``GraphInvalid``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.macros import MacroError, expand_macros
from workflows.engine.nodes.base import TEMPLATE_MARKERS, NodeType, Reference
from workflows.engine.nodes.registry import NODE_TYPES
from workflows.engine.params import BUILTIN_PARAMS, param_names, substitute_params
from workflows.engine.retry import RetryPolicy
from workflows.engine.templates import CelError, compile_expr, template_exprs
from workflows.engine.values import static_container_ids

__all__ = ["CompiledGraph", "CompiledNode", "Topology", "GraphInvalid", "InputInvalid", "compile_graph",
           "validate_graph", "validate_inputs", "inputs_json_schema", "outputs_json_schema", "graph_references"]

NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_IDS = frozenset({"inputs", "params", "run", "item", "index", "error"})
INPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array", "file")
# ``format`` of a string input: how forms show it (``paragraph``: long text) and, for the others,
# the JSON Schema format it is published with.
INPUT_FORMATS = ("paragraph", "email", "uri", "date", "date-time")
CHECK_TIME = datetime(2024, 2, 29, 12, 0, 0)  # time macros are expanded at this instant to check them


class GraphInvalid(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the graph")
        self.errors = errors


class InputInvalid(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors


RUNTIME_SCHEMA = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "config": {"type": "object"},
        "run": {"enum": ["normal", "skip"]},
        "retry": {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 0, "maximum": 100},
                "interval": {"type": "number", "minimum": 0},
                "backoff": {"enum": ["fixed", "exponential", "random"]},
                "max_interval": {"type": "number", "minimum": 0},
            },
            "additionalProperties": False,
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "on_error": {"enum": ["fail", "continue", "branch", "rollback"]},
        "compensate": {"type": "object"},
    },
}
DECL_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"enum": list(INPUT_TYPES)},
        "required": {"type": "boolean"},
        "description": {"type": "string"},
        "default": {},
        "enum": {"type": "array", "minItems": 1},
        "title": {"type": "string", "maxLength": 255},
        "format": {"enum": list(INPUT_FORMATS)},
        "minLength": {"type": "integer", "minimum": 0},
        "maxLength": {"type": "integer", "minimum": 0},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "accept": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "multiple": {"type": "boolean"},
    },
    "required": ["type"],
    "additionalProperties": False,
}
# Which declaration keys apply to which input types (a key on another type is a mistake, refused).
_DECL_KEY_TYPES = {
    "format": ("string",), "minLength": ("string",), "maxLength": ("string",),
    "minimum": ("number", "integer"), "maximum": ("number", "integer"),
    "accept": ("file",), "multiple": ("file",),
}
EDGE_SCHEMA = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "port": {"type": ["string", "null"]}},
}


# The string formats an input may declare, checked here (not by jsonschema's optional checkers,
# which depend on extra packages): a value that does not match is a 400 naming the input.
INPUT_FORMAT_CHECKER = FormatChecker(formats=())


@INPUT_FORMAT_CHECKER.checks("email")
def _is_email(value: object) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) is not None


@INPUT_FORMAT_CHECKER.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.path)) and " " not in value


@INPUT_FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(
        date.fromisoformat(value))


@INPUT_FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})", value):
        return False
    return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00")) is not None


# Validators by schema object, first in first out past VALIDATORS_KEPT (building one costs more than
# most validations): the platform's schemas are module constants; a graph's input and output
# declarations are kept with their schema (``_decls_validator``: validate_inputs and outputs_errors
# run on every run, and the schema built from the declarations is a new object each time).
VALIDATORS_KEPT = 1024
_VALIDATORS: OrderedDict[int, tuple[Any, Draft202012Validator]] = OrderedDict()
_VALIDATORS_LOCK = threading.Lock()


def _kept(key: Any, build: Callable[[], Draft202012Validator]) -> Draft202012Validator:
    hit = _VALIDATORS.get(id(key))
    if hit is not None and hit[0] is key:
        return hit[1]
    validator = build()
    with _VALIDATORS_LOCK:
        _VALIDATORS[id(key)] = (key, validator)  # the key is kept alive with it: its id is not reused
        while len(_VALIDATORS) > VALIDATORS_KEPT:
            _VALIDATORS.popitem(last=False)
    return validator


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return _kept(schema, lambda: Draft202012Validator(schema, format_checker=INPUT_FORMAT_CHECKER))


def _decls_validator(decls: Mapping[str, Any]) -> Draft202012Validator:
    return _kept(decls, lambda: Draft202012Validator(_decls_schema(decls), format_checker=INPUT_FORMAT_CHECKER))


def _schema_errors(schema: dict[str, Any], value: Any, pointer: str) -> list[dict[str, str]]:
    return _validator_errors(_validator(schema), value, pointer)


def _validator_errors(validator: Draft202012Validator, value: Any, pointer: str) -> list[dict[str, str]]:
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        path = pointer + "".join("/" + _escape(str(p)) for p in err.absolute_path)
        if err.validator == "required":
            missing = re.match(r"'(.+)' is a required property", err.message)
            if missing:
                path += "/" + _escape(missing.group(1))
        out.append({"path": path, "message": err.message})
    return out


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


# -- compiled form -------------------------------------------------------------------------------

@dataclass
class CompiledNode:
    id: str
    type: str
    node_type: NodeType
    title: str
    config: dict[str, Any]
    run: str
    retry: RetryPolicy | None
    timeout: float | None
    on_error: str
    compensate: dict[str, Any] | None
    pointer: str
    static_ids: set[int]
    inline: bool
    body: Topology | None = None


@dataclass
class Topology:
    """A DAG of nodes: the graph itself, or a container's body (a loop's)."""

    nodes: dict[str, CompiledNode]
    order: list[str]
    succ: dict[str, dict[str | None, list[str]]]
    in_edges: dict[str, list[tuple[str, str | None]]]
    preds: dict[str, list[str]]
    error_sources: dict[str, tuple[str, ...]]
    entries: list[str]
    sinks: list[str]
    # fan-outs: (source, port) -> [(target, nodes of that branch up to the first join)]
    branches: dict[tuple[str, str | None], list[tuple[str, frozenset[str]]]] = field(default_factory=dict)


@dataclass
class CompiledGraph(Topology):
    start_id: str = ""
    end_ids: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


# -- validation ----------------------------------------------------------------------------------
#
# The check is a few passes over each DAG (the graph, then every container body), each linear in
# the size of what it reads, and every pass runs even when an earlier one found problems, so one
# answer lists every problem: size (first, so an oversized graph costs nothing more) ->
# declarations -> parse nodes -> parse edges -> order (cycles) -> reach (from start) -> compile
# (each node's config, expressions and names in scope; containers check their bodies through
# their node type's ``check_config`` hook). "Is X upstream of Y" is answered from ancestor bitsets
# (one int per node), not from materialised ancestor sets.


class NameScope:
    """The names an expression may use at one place: fixed names (inputs, params, run, item, ...),
    the DAG's nodes upstream of the place (a bitset over the DAG's topological order), and the
    enclosing scope (a container's own scope, for its body)."""

    __slots__ = ("names", "bits", "index", "parent")

    def __init__(self, names: frozenset[str] | set[str], bits: int = 0, index: Mapping[str, int] | None = None,
                 parent: NameScope | None = None) -> None:
        self.names, self.bits, self.index, self.parent = frozenset(names), bits, index or {}, parent

    def __contains__(self, name: object) -> bool:
        scope: NameScope | None = self
        while scope is not None:
            if name in scope.names:
                return True
            i = scope.index.get(name)  # type: ignore[call-overload]
            if i is not None and (i < 0 or scope.bits >> i & 1):
                return True
            scope = scope.parent
        return False

    def with_names(self, names: Iterable[str]) -> NameScope:
        return NameScope(frozenset(names), parent=self)


@dataclass
class _Dag:
    """One DAG while it is checked: its raw nodes by id (in document order) and its edges."""

    prefix: str
    body: bool
    raw: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)  # id -> index in the nodes array
    succ: dict[str, dict[str | None, list[str]]] = field(default_factory=dict)
    in_edges: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    def pointer(self, node_id: str) -> str:
        return f"{self.prefix}/nodes/{self.position[node_id]}"


def _count_nodes(graph: Mapping[str, Any], node_types: Mapping[str, NodeType]) -> tuple[int, int]:
    """(nodes in the graph and every container body, deepest container nesting); iterative."""
    total = deepest = 0
    todo: list[tuple[Any, int]] = [(graph.get("nodes"), 0)]
    while todo:
        nodes, depth = todo.pop()
        if not isinstance(nodes, list):
            continue
        total += len(nodes)
        deepest = max(deepest, depth)
        for node in nodes:
            if not isinstance(node, Mapping) or not isinstance(node.get("config"), Mapping):
                continue
            ntype = node_types.get(node.get("type")) if isinstance(node.get("type"), str) else None
            if ntype is not None:
                for _, body in ntype.bodies(node["config"]):
                    if isinstance(body, Mapping):
                        todo.append((body.get("nodes"), depth + 1))
    return total, deepest


def graph_references(graph: Any, node_types: Mapping[str, NodeType] | None = None
                     ) -> list[tuple[str, str, Reference]]:
    """Every ``NodeType.references`` of the graph and its container bodies, as ``(JSON pointer of
    the node, node id, reference)`` in document order; malformed nodes are skipped (validation
    reports them). Iterative, so a deep graph costs no recursion."""
    node_types = node_types or NODE_TYPES
    found: list[tuple[str, str, Reference]] = []
    todo: list[tuple[Any, str]] = [(graph.get("nodes") if isinstance(graph, Mapping) else None, "")]
    while todo:
        nodes, prefix = todo.pop(0)
        if not isinstance(nodes, list):
            continue
        for i, node in enumerate(nodes):
            config = node.get("config") if isinstance(node, Mapping) else None
            ntype = node_types.get(node.get("type")) if isinstance(config, Mapping) and isinstance(
                node.get("type"), str) else None
            if ntype is None:
                continue
            pointer = f"{prefix}/nodes/{i}"
            found.extend((pointer, str(node.get("id")), ref) for ref in ntype.references(config))
            for key, body in ntype.bodies(config):
                if isinstance(body, Mapping):
                    todo.append((body.get("nodes"), f"{pointer}/config/{_escape(key)}"))
    return found


# Secrets enter a graph only through ``auth.credential`` (WORKFLOW_FORMAT.md): written in the graph
# they would be stored in plaintext and shown to every member who can read it.
INLINE_SECRET_FIELDS = ("key", "token", "password")
INLINE_SECRET_MESSAGE = ("an inline secret is not allowed: store it in a team credential and name that in "
                         "auth.credential (manage.py secrets_to_credentials moves existing ones)")
# What an HTTP node's ``auth.credential`` may name (a database or broker URL is no HTTP secret).
HTTP_AUTH_KINDS = ("api_key", "bearer", "basic")


def inline_secrets_masked(graph: Any) -> Any:
    """A copy of ``graph`` with every inline secret of an ``auth`` block shown as ``***``: what a
    member who cannot edit the workflow sees of a draft or version that still holds one."""
    if isinstance(graph, Mapping):
        return {k: ({f: ("***" if f in INLINE_SECRET_FIELDS and x not in (None, "") else x) for f, x in v.items()}
                    if k == "auth" and isinstance(v, Mapping) else inline_secrets_masked(v))
                for k, v in graph.items()}
    if isinstance(graph, list):
        return [inline_secrets_masked(v) for v in graph]
    return graph


class _Checker:
    def __init__(self, graph: Any, global_params: Mapping[str, Any], credential_names: Iterable[str],
                 node_types: Mapping[str, NodeType], limits: Limits, inline_secrets: bool = False) -> None:
        self.graph = graph
        self.inline_secrets = inline_secrets
        self.errors: list[dict[str, str]] = []
        self.global_params = dict(global_params or {})
        self.credentials = set(credential_names or ())
        # Given as ``{name: kind}``, the kinds are checked too (a set of names checks names only).
        self.credential_kinds: dict[str, str] = dict(credential_names) if isinstance(credential_names, Mapping) else {}
        self.node_types = node_types
        self.limits = limits
        self.all_ids: set[str] = set()
        self.params: dict[str, Any] = {}
        self.known_params: set[str] = set(BUILTIN_PARAMS)
        self.param_values: dict[str, Any] = {}

    def err(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    # -- graph level ------------------------------------------------------------------------------
    def check(self) -> CompiledGraph | None:
        graph = self.graph
        if not isinstance(graph, Mapping):
            self.err("", "the graph must be an object")
            return None
        if not self.check_size(graph):
            return None
        self.check_declarations(graph)
        self.check_params(graph)
        nodes, edges = graph.get("nodes"), graph.get("edges", [])
        if not isinstance(nodes, list):
            self.err("/nodes", "must be an array of nodes")
            return None
        if not isinstance(edges, list):
            self.err("/edges", "must be an array of edges")
            edges = []
        topo = self.check_dag(nodes, edges, "", NameScope(frozenset({"inputs", "params", "run"})), body=False)
        if topo is None or self.errors:
            return None
        starts = [n for n in topo.nodes.values() if n.type == "start"]
        return CompiledGraph(**vars(topo), start_id=starts[0].id,
                             end_ids=[n.id for n in topo.nodes.values() if n.type == "end"],
                             inputs=dict(graph.get("inputs", {})), outputs=dict(graph.get("outputs", {})),
                             params=self.params, source=dict(graph))

    def check_size(self, graph: Mapping[str, Any]) -> bool:
        """The graph-size budget, before anything else reads the graph."""
        total, deepest = _count_nodes(graph, self.node_types)
        ok = True
        if total > self.limits.graph_nodes:
            self.err("/nodes", f"the graph has {total} nodes (loop bodies included); the limit is "
                     f"{self.limits.graph_nodes} (WEFT_MAX_GRAPH_NODES)")
            ok = False
        if deepest > self.limits.graph_nesting:
            self.err("/nodes", f"loops are nested {deepest} deep; the limit is {self.limits.graph_nesting} "
                     "(WEFT_MAX_GRAPH_NESTING)")
            ok = False
        return ok

    def check_declarations(self, graph: Mapping[str, Any]) -> None:
        for key in ("inputs", "outputs"):
            decls = graph.get(key, {})
            if not isinstance(decls, Mapping):
                self.err(f"/{key}", "must be an object")
                continue
            for name, decl in decls.items():
                pointer = f"/{key}/{_escape(name)}"
                if not VAR_NAME.match(name):
                    self.err(pointer, f"invalid name {name!r}")
                decl_errors = _schema_errors(DECL_SCHEMA, decl, pointer) or _decl_key_errors(decl, pointer)
                self.errors.extend(decl_errors)
                if not decl_errors and "default" in decl:
                    problems = _schema_errors({"type": "object", "properties": {"v": _decl_schema(decl)}},
                                              {"v": decl["default"]}, "")
                    for p in problems:
                        self.err(f"{pointer}/default", p["message"])
        if "retry" in graph:  # workflow-level retry policy (runs.endings): same shape as a node's
            self.errors.extend(_schema_errors(RUNTIME_SCHEMA["properties"]["retry"], graph["retry"], "/retry"))

    def check_params(self, graph: Mapping[str, Any]) -> None:
        params = graph.get("params", {})
        if not isinstance(params, Mapping):
            self.err("/params", "must be an object")
            params = {}
        self.params = dict(params)
        self.known_params = set(self.global_params) | set(params) | BUILTIN_PARAMS
        self.param_values = {**{n: "20240229" for n in BUILTIN_PARAMS}, **self.global_params, **params}
        for name, value in params.items():
            if isinstance(value, str):
                self.check_string(value, f"/params/{_escape(name)}", None)

    # -- one DAG: parse nodes, parse edges, order, reach, compile ---------------------------------
    def check_dag(self, nodes: list[Any], edges: list[Any], prefix: str, scope: NameScope,
                  body: bool) -> Topology | None:
        dag = _Dag(prefix, body)
        self.parse_nodes(dag, nodes)
        self.parse_edges(dag, edges)
        order = self.order(dag)
        if not body:
            self.reach(dag)
        return self.compile(dag, order, scope)

    def parse_nodes(self, dag: _Dag, nodes: list[Any]) -> None:
        for i, node in enumerate(nodes):
            pointer = f"{dag.prefix}/nodes/{i}"
            if not isinstance(node, Mapping):
                self.err(pointer, "a node must be an object")
                continue
            self.errors.extend(_schema_errors(RUNTIME_SCHEMA, node, pointer))
            node_id = node.get("id")
            if not isinstance(node_id, str):
                continue
            if not NODE_ID.match(node_id):
                self.err(f"{pointer}/id", f"invalid node id {node_id!r}: use [a-z][a-z0-9_]{{0,63}}")
            elif node_id in RESERVED_IDS:
                self.err(f"{pointer}/id", f"node id {node_id!r} is reserved")
            if node_id in self.all_ids:
                self.err(f"{pointer}/id", f"duplicate node id {node_id!r}")
                continue
            self.all_ids.add(node_id)
            dag.position[node_id] = i
            dag.raw[node_id] = node
            ntype = node.get("type")
            if isinstance(ntype, str) and ntype not in self.node_types:
                self.err(f"{pointer}/type", f"unknown node type {ntype!r}")
            if dag.body and ntype in ("start", "end"):
                self.err(f"{pointer}/type", f"a loop body cannot contain a {ntype!r} node")
        if not dag.body:
            starts = sum(1 for n in dag.raw.values() if n.get("type") == "start")
            if starts != 1:
                self.err(f"{dag.prefix}/nodes", f"a graph needs exactly one start node, found {starts}")
            if not any(n.get("type") == "end" for n in dag.raw.values()):
                self.err(f"{dag.prefix}/nodes", "a graph needs at least one end node")
        dag.succ = {n: {} for n in dag.raw}
        dag.in_edges = {n: [] for n in dag.raw}

    def parse_edges(self, dag: _Dag, edges: list[Any]) -> None:
        ports: dict[str, list[str]] = {}
        for i, edge in enumerate(edges):
            pointer = f"{dag.prefix}/edges/{i}"
            shape = _schema_errors(EDGE_SCHEMA, edge, pointer)
            if shape:
                self.errors.extend(shape)
                continue
            src, dst, port = edge["from"], edge["to"], edge.get("port")
            missing = [(key, name) for key, name in (("from", src), ("to", dst)) if name not in dag.raw]
            for key, name in missing:
                self.err(f"{pointer}/{key}", f"no node {name!r}" + (" in this loop body" if dag.body else ""))
            if missing:
                continue
            if port is not None:
                self.check_port(dag.raw[src], src, port, pointer, ports)
            if src == dst:
                self.err(pointer, f"edge from {src!r} to itself makes a cycle")
                continue
            dag.succ[src].setdefault(port, []).append(dst)
            dag.in_edges[dst].append((src, port))
        dag.children = {n: list(dict.fromkeys(t for ts in dag.succ[n].values() for t in ts)) for n in dag.raw}

    def check_port(self, node: Mapping[str, Any], src: str, port: str, pointer: str,
                   cache: dict[str, list[str]]) -> None:
        ntype = self.node_types.get(node.get("type")) if isinstance(node.get("type"), str) else None
        if ntype is None:
            return
        if port == "error":
            if node.get("on_error") != "branch":
                self.err(f"{pointer}/port", f"port 'error' needs on_error 'branch' on node {src!r}")
            return
        if src not in cache:
            config = node.get("config", {})
            cache[src] = ntype.ports(config) if isinstance(config, Mapping) else []
        known = cache[src]
        if port not in known:
            self.err(f"{pointer}/port", f"node {src!r} has no port {port!r}"
                     + (f" (ports: {', '.join(known)})" if known else ""))

    def order(self, dag: _Dag) -> list[str]:
        """Topological order (Kahn); every node left out is reported as part of a cycle."""
        indeg = {n: len({s for s, _ in dag.in_edges[n]}) for n in dag.raw}
        order = [n for n in dag.raw if indeg[n] == 0]
        pos = 0
        while pos < len(order):
            for child in dag.children[order[pos]]:
                indeg[child] -= 1
                if indeg[child] == 0:
                    order.append(child)
            pos += 1
        if len(order) < len(dag.raw):
            placed = set(order)
            for n in dag.raw:
                if n not in placed:
                    self.err(dag.pointer(n), f"node {n!r} is part of a cycle")
        return order

    def reach(self, dag: _Dag) -> None:
        """Every node must be reachable from the start node (cycles or not)."""
        starts = [n for n, node in dag.raw.items() if node.get("type") == "start"]
        if len(starts) != 1:
            return
        seen, todo = {starts[0]}, [starts[0]]
        while todo:
            for child in dag.children[todo.pop()]:
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        for n in dag.raw:
            if n not in seen:
                self.err(dag.pointer(n), f"node {n!r} is not reachable from start")

    def compile(self, dag: _Dag, order: list[str], outer: NameScope) -> Topology | None:
        """Checks every node (in topological order; nodes caught in a cycle last, with every node of
        the DAG in scope so that only their own problems are reported) and builds the topology."""
        index = {n: i for i, n in enumerate(order)}
        ancestors: dict[str, int] = {}
        error_sources: dict[str, tuple[str, ...]] = {}
        preds = {n: list(dict.fromkeys(s for s, _ in dag.in_edges[n])) for n in dag.raw}
        compiled: dict[str, CompiledNode] = {}
        for n in order:
            bits = 0
            for p in preds[n]:
                bits |= ancestors[p] | (1 << index[p])
            ancestors[n] = bits
            sources: list[str] = []
            for src, port in dag.in_edges[n]:
                if port == "error":
                    sources.append(src)
                sources.extend(error_sources.get(src, ()))
            error_sources[n] = tuple(dict.fromkeys(sources))
            scope = NameScope({"error"} if error_sources[n] else frozenset(), bits, index, outer)
            cnode = self.compile_node(dag.raw[n], dag.pointer(n), scope)
            if cnode is not None:
                compiled[n] = cnode
        if len(order) < len(dag.raw):
            everything = NameScope(frozenset({"error"}), 0, {n: -1 for n in dag.raw}, outer)
            placed = set(order)
            for n in dag.raw:
                if n not in placed:
                    self.compile_node(dag.raw[n], dag.pointer(n), everything)
            return None
        if len(compiled) < len(dag.raw):
            return None
        topo = Topology(nodes={n: compiled[n] for n in order}, order=order, succ=dag.succ, in_edges=dag.in_edges,
                        preds=preds, error_sources=error_sources,
                        entries=[n for n in order if not dag.in_edges[n]],
                        sinks=[n for n in order if not dag.children[n]])
        topo.branches = _branches(topo, dag.children, index)
        return topo

    def compile_node(self, node: Mapping[str, Any], pointer: str, scope: NameScope) -> CompiledNode | None:
        ntype = self.node_types.get(node.get("type")) if isinstance(node.get("type"), str) else None
        config = node.get("config", {})
        if ntype is None or not isinstance(config, Mapping):
            return None
        cpointer = f"{pointer}/config"
        self.errors.extend(_schema_errors(ntype.config_schema, config, cpointer))
        self.errors.extend(ntype.validate(config, cpointer))
        body = ntype.check_config(self, config, cpointer, scope)
        self.check_credentials(config, cpointer)
        self.check_references(ntype.references(config), cpointer)
        compensate = node.get("compensate")
        if isinstance(compensate, Mapping):
            self.check_value(compensate, f"{pointer}/compensate", scope.with_names({node["id"]}))
            self.check_credentials(compensate, f"{pointer}/compensate")
        static: set[int] = set()
        static_container_ids(config, static)
        timeout = node.get("timeout", ntype.default_timeout)
        return CompiledNode(
            id=node["id"], type=ntype.type, node_type=ntype, title=node.get("name") or ntype.title or node["id"],
            config=dict(config), run=node.get("run", "normal"),
            retry=RetryPolicy.from_config(node.get("retry", ntype.default_retry)) if ntype.retries else None,
            timeout=timeout, on_error=node.get("on_error", "fail"), compensate=compensate, pointer=pointer,
            static_ids=static, inline=ntype.inline and timeout is None, body=body)

    # -- what node types call back (``ConfigChecker``) --------------------------------------------
    def check_body(self, nodes: list[Any], edges: list[Any], pointer: str, scope: NameScope,
                   names: Iterable[str]) -> tuple[Topology | None, NameScope]:
        """A container's body: a DAG of its own, seeing ``names`` (``item``, ``index``) and ``scope``."""
        body_scope = scope.with_names(names)
        return self.check_dag(nodes, edges or [], pointer, body_scope, body=True), body_scope

    def with_names(self, scope: NameScope, names: Iterable[str]) -> NameScope:  # type: ignore[override]
        return scope.with_names(names)

    def check_value(self, value: Any, pointer: str, scope: NameScope | None) -> None:
        """Every string inside ``value``: parameters, macros and ``{{ }}`` names in scope."""
        todo = [(value, pointer)]
        while todo:
            item, where = todo.pop()
            if isinstance(item, str):
                self.check_string(item, where, scope)
            elif isinstance(item, Mapping):
                todo.extend((v, f"{where}/{_escape(str(k))}") for k, v in reversed(list(item.items())))
            elif isinstance(item, list):
                todo.extend((v, f"{where}/{i}") for i, v in reversed(list(enumerate(item))))

    def check_expression(self, source: str, pointer: str, scope: NameScope) -> None:
        """A bare CEL field (not ``{{ }}``)."""
        expanded = self.expand_for_check(source, pointer)
        if expanded is None:
            return
        try:
            expr = compile_expr(expanded, self.limits)
        except CelError as exc:
            self.err(pointer, str(exc))
            return
        self.check_names(expr.names, pointer, scope)

    # -- strings ----------------------------------------------------------------------------------
    def expand_for_check(self, text: str, pointer: str) -> str | None:
        for name in param_names(text):
            if name not in self.known_params:
                self.err(pointer, f"unknown parameter ${{{name}}}")
                return None
        if "${" in text:
            text = substitute_params(text, self.param_values)
        if "$[" in text or "{{{" in text:
            try:
                text = expand_macros(text, CHECK_TIME)
            except MacroError as exc:
                self.err(pointer, str(exc))
                return None
        return text

    def check_string(self, text: str, pointer: str, scope: NameScope | None) -> None:
        if "$" not in text and "{{" not in text:
            return
        expanded = self.expand_for_check(text, pointer)
        if expanded is None or scope is None or "{{" not in expanded:
            return
        try:
            exprs = template_exprs(expanded, self.limits)
        except CelError as exc:
            self.err(pointer, str(exc))
            return
        for expr in exprs:
            self.check_names(expr.names, pointer, scope)

    def check_names(self, names: tuple[str, ...], pointer: str, scope: NameScope) -> None:
        for name in names:
            if name in scope:
                continue
            if name in self.all_ids or name in ("item", "index", "error"):
                self.err(pointer, f"{name!r} is not in scope here (only upstream nodes, inputs, params, run"
                         + (", item, index inside a loop body" if name in ("item", "index") else "")
                         + (", error on an error branch" if name == "error" else "") + ")")
            else:
                self.err(pointer, f"unknown name {name!r}")

    def check_credential(self, name: Any, pointer: str, accepts: tuple[str, ...], what: str) -> None:
        """A literal credential name (templates and parameters are resolved at run time): one of the
        team's, and of a kind in ``accepts`` when the kinds are known."""
        if not isinstance(name, str) or TEMPLATE_MARKERS.search(name):
            return
        if name not in self.credentials:
            self.err(pointer, f"unknown credential {name!r}")
            return
        kind = self.credential_kinds.get(name)
        if accepts and kind is not None and kind not in accepts:
            self.err(pointer, f"credential {name!r} is of kind {kind!r}; {what} needs a credential of kind "
                     + " or ".join(repr(a) for a in accepts))

    def check_references(self, references: list[Reference], pointer: str) -> None:
        for ref in references:
            if ref.kind == "credential":
                self.check_credential(ref.value, f"{pointer}{ref.field}", ref.accepts, "this node")

    def check_credentials(self, value: Any, pointer: str) -> None:
        """Every ``auth.credential`` anywhere in ``value`` (HTTP authentication)."""
        todo = [(value, pointer)]
        while todo:
            item, where = todo.pop()
            if isinstance(item, Mapping):
                for k, v in item.items():
                    if k == "auth" and isinstance(v, Mapping):
                        self.check_credential(v.get("credential"), f"{where}/auth/credential", HTTP_AUTH_KINDS,
                                              "HTTP authentication")
                        if not self.inline_secrets:
                            for field in INLINE_SECRET_FIELDS:
                                if v.get(field) not in (None, ""):
                                    self.err(f"{where}/auth/{field}", INLINE_SECRET_MESSAGE)
                    else:
                        todo.append((v, f"{where}/{_escape(str(k))}"))
            elif isinstance(item, list):
                todo.extend((v, f"{where}/{i}") for i, v in enumerate(item))


def _bits(value: int) -> Iterator[int]:
    while value:
        low = value & -value
        yield low.bit_length() - 1
        value ^= low


def _branches(topo: Topology, children: dict[str, list[str]],
              index: dict[str, int]) -> dict[tuple[str, str | None], list[tuple[str, frozenset[str]]]]:
    """For each fan-out, the nodes of each branch up to (excluding) where branches meet.
    Descendants are bitsets over the topological order; each fan-out costs O(targets)."""
    descendants: dict[str, int] = {}
    for n in reversed(topo.order):
        acc = 1 << index[n]
        for c in children[n]:
            acc |= descendants[c]
        descendants[n] = acc
    out: dict[tuple[str, str | None], list[tuple[str, frozenset[str]]]] = {}
    for src, ports in topo.succ.items():
        for port, targets in ports.items():
            if len(targets) < 2:
                continue
            masks = [descendants[t] for t in targets]
            before = [0] * (len(masks) + 1)
            for i, m in enumerate(masks):
                before[i + 1] = before[i] | m
            after = 0
            members: list[int] = [0] * len(masks)
            for i in range(len(masks) - 1, -1, -1):
                members[i] = masks[i] & ~(before[i] | after)
                after |= masks[i]
            out[(src, port)] = [(t, frozenset(topo.order[b] for b in _bits(m))) for t, m in zip(targets, members,
                                                                                                     strict=True)]
    return out


def _decl_key_errors(decl: Mapping[str, Any], pointer: str) -> list[dict[str, str]]:
    """Keys that do not apply to the declared type, and bounds that cross."""
    kind = decl["type"]
    errors = [{"path": f"{pointer}/{key}", "message": f"only for {' or '.join(types)} inputs"}
              for key, types in _DECL_KEY_TYPES.items() if key in decl and kind not in types]
    for low, high in (("minLength", "maxLength"), ("minimum", "maximum")):
        if low in decl and high in decl and decl[low] > decl[high]:
            errors.append({"path": f"{pointer}/{low}", "message": f"greater than {high}"})
    return errors


FILE_VALUE_SCHEMA = {"type": ["string", "object"], "x-weft-type": "file"}


def _decl_schema(decl: Mapping[str, Any]) -> dict[str, Any]:
    kind = decl.get("type", "string")
    schema: dict[str, Any]
    if kind == "file":
        schema = ({"type": "array", "items": dict(FILE_VALUE_SCHEMA)} if decl.get("multiple")
                  else dict(FILE_VALUE_SCHEMA))
    else:
        schema = {"type": kind}
    for key in ("title", "description", "enum", "default", "minLength", "maxLength", "minimum", "maximum"):
        if key in decl:
            schema[key] = decl[key]
    if decl.get("format") in INPUT_FORMATS[1:]:
        schema["format"] = decl["format"]  # published; forms read "paragraph" from the declaration
    if "accept" in decl:
        schema["x-weft-accept"] = list(decl["accept"])
    return schema


def _decls_schema(decls: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: _decl_schema(decl) for name, decl in decls.items()},
        "required": [name for name, decl in decls.items() if decl.get("required")],
    }


def inputs_json_schema(graph: Mapping[str, Any]) -> dict[str, Any]:
    """The run inputs as a JSON Schema object (``file`` inputs: a URL string or a file object)."""
    return _decls_schema(graph.get("inputs") or {})


def outputs_json_schema(graph: Mapping[str, Any]) -> dict[str, Any]:
    return _decls_schema(graph.get("outputs") or {})


def outputs_errors(declarations: Mapping[str, Any], outputs: Any) -> list[dict[str, str]]:
    """A run's outputs checked against the graph's output declarations (``[]``: they match)."""
    return _validator_errors(_decls_validator(declarations), outputs, "/outputs")


def validate_graph(graph: Any, *, global_params: Mapping[str, Any] | None = None,
                   credential_names: set[str] | Mapping[str, str] | None = None,
                   node_types: Mapping[str, NodeType] | None = None,
                   limits: Limits | None = None) -> list[dict[str, str]]:
    """Every problem of ``graph`` as ``[{"path", "message"}]`` (empty: valid). What publishing
    checks: an inline secret in an ``auth`` block is one of the problems. ``credential_names``: the
    team's credentials, as names or as ``{name: kind}`` (then kinds are checked too)."""
    checker = _Checker(graph, global_params or {}, credential_names or set(), node_types or NODE_TYPES,
                       limits or DEFAULT_LIMITS)
    checker.check()
    return checker.errors


def compile_graph(graph: Any, *, global_params: Mapping[str, Any] | None = None,
                  credential_names: set[str] | Mapping[str, str] | None = None,
                  node_types: Mapping[str, NodeType] | None = None,
                  limits: Limits | None = None, inline_secrets: bool = False) -> CompiledGraph:
    """The compiled graph; raises GraphInvalid with every problem. ``inline_secrets``: accept
    secrets written in an ``auth`` block (only for versions published before they were refused)."""
    checker = _Checker(graph, global_params or {}, credential_names or set(), node_types or NODE_TYPES,
                       limits or DEFAULT_LIMITS, inline_secrets)
    compiled = checker.check()
    if checker.errors or compiled is None:
        raise GraphInvalid(checker.errors or [{"path": "", "message": "invalid graph"}])
    return compiled


def validate_inputs(compiled: CompiledGraph, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inputs with defaults applied; raises InputInvalid naming each bad field."""
    inputs = dict(inputs or {})
    for name, decl in compiled.inputs.items():
        if name not in inputs and "default" in decl:
            inputs[name] = decl["default"]
    errors = _validator_errors(_decls_validator(compiled.inputs), inputs, "/inputs")
    if errors:
        raise InputInvalid(errors)
    return inputs
