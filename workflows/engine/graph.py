"""Parsing and validating a workflow graph (WORKFLOW_FORMAT.md), and its compiled form.

``validate_graph`` reports every problem at once as ``[{"path": JSON pointer, "message"}]``;
``compile_graph`` returns a ``CompiledGraph`` (topology, per-port successors, predecessors,
ancestors, compiled expressions in the process-wide cache) or raises ``GraphInvalid``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from workflows.engine.macros import MacroError, expand_macros
from workflows.engine.nodes.base import NodeType
from workflows.engine.params import BUILTIN_PARAMS, param_names
from workflows.engine.retry import RetryPolicy
from workflows.engine.templates import CelError, compile_expr, template_exprs
from workflows.engine.values import static_container_ids

__all__ = ["CompiledGraph", "CompiledNode", "Topology", "GraphInvalid", "InputInvalid", "compile_graph",
           "validate_graph", "validate_inputs", "inputs_json_schema", "outputs_json_schema"]

NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_IDS = frozenset({"inputs", "params", "run", "item", "index", "error"})
INPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array", "file")


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
    },
    "required": ["type"],
    "additionalProperties": False,
}
EDGE_SCHEMA = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "port": {"type": ["string", "null"]}},
}


_VALIDATORS: dict[int, Draft202012Validator] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached.schema is schema:
        return cached
    validator = Draft202012Validator(schema)
    if len(_VALIDATORS) < 1024:
        _VALIDATORS[id(schema)] = validator
    return validator


def _schema_errors(schema: dict[str, Any], value: Any, pointer: str) -> list[dict[str, str]]:
    validator = _validator(schema)
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
    """A DAG of nodes: the graph itself, or a loop body."""

    nodes: dict[str, CompiledNode]
    order: list[str]
    succ: dict[str, dict[str | None, list[str]]]
    in_edges: dict[str, list[tuple[str, str | None]]]
    preds: dict[str, list[str]]
    ancestors: dict[str, frozenset[str]]
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

class _Checker:
    def __init__(self, graph: Any, global_params: Mapping[str, Any], credential_names: set[str],
                 node_types: Mapping[str, NodeType]) -> None:
        self.graph = graph
        self.errors: list[dict[str, str]] = []
        self.global_params = dict(global_params or {})
        self.credentials = set(credential_names or ())
        self.node_types = node_types
        self.all_ids: set[str] = set()

    def err(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    # graph-level
    def check(self) -> CompiledGraph | None:
        graph = self.graph
        if not isinstance(graph, Mapping):
            self.err("", "the graph must be an object")
            return None
        for key in ("inputs", "outputs"):
            decls = graph.get(key, {})
            if not isinstance(decls, Mapping):
                self.err(f"/{key}", "must be an object")
                continue
            for name, decl in decls.items():
                if not VAR_NAME.match(name):
                    self.err(f"/{key}/{_escape(name)}", f"invalid name {name!r}")
                decl_errors = _schema_errors(DECL_SCHEMA, decl, f"/{key}/{_escape(name)}")
                self.errors.extend(decl_errors)
                if not decl_errors and "default" in decl:
                    problems = _schema_errors({"type": "object", "properties": {"v": _decl_schema(decl)}},
                                              {"v": decl["default"]}, "")
                    for p in problems:
                        self.err(f"/{key}/{_escape(name)}/default", p["message"])
        if "retry" in graph:  # workflow-level retry policy (runs.endings): same shape as a node's
            self.errors.extend(_schema_errors(RUNTIME_SCHEMA["properties"]["retry"], graph["retry"], "/retry"))
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
        nodes, edges = graph.get("nodes"), graph.get("edges", [])
        if not isinstance(nodes, list):
            self.err("/nodes", "must be an array of nodes")
            return None
        if not isinstance(edges, list):
            self.err("/edges", "must be an array of edges")
            edges = []
        scope = {"inputs", "params", "run"}
        topo = self.check_dag(nodes, edges, "", scope, body=False)
        if topo is None or self.errors:
            return None
        starts = [n for n in topo.nodes.values() if n.type == "start"]
        return CompiledGraph(**vars(topo), start_id=starts[0].id,
                             end_ids=[n.id for n in topo.nodes.values() if n.type == "end"],
                             inputs=dict(graph.get("inputs", {})), outputs=dict(graph.get("outputs", {})),
                             params=self.params, source=dict(graph))

    def check_dag(self, nodes: list[Any], edges: list[Any], prefix: str, outer_scope: set[str],
                  body: bool) -> Topology | None:
        ids: dict[str, int] = {}
        raw: dict[str, dict[str, Any]] = {}
        for i, node in enumerate(nodes):
            pointer = f"{prefix}/nodes/{i}"
            if not isinstance(node, Mapping):
                self.err(pointer, "a node must be an object")
                continue
            shape = _schema_errors(RUNTIME_SCHEMA, node, pointer)
            self.errors.extend(shape)
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
            ids[node_id] = i
            raw[node_id] = node
            ntype = node.get("type")
            if isinstance(ntype, str) and ntype not in self.node_types:
                self.err(f"{pointer}/type", f"unknown node type {ntype!r}")
            if body and ntype in ("start", "end"):
                self.err(f"{pointer}/type", f"a loop body cannot contain a {ntype!r} node")
        if not body:
            starts = [n for n in raw if raw[n].get("type") == "start"]
            if len(starts) != 1:
                self.err(f"{prefix}/nodes", f"a graph needs exactly one start node, found {len(starts)}")
            if not any(raw[n].get("type") == "end" for n in raw):
                self.err(f"{prefix}/nodes", "a graph needs at least one end node")
        # edges
        succ: dict[str, dict[str | None, list[str]]] = {n: {} for n in raw}
        in_edges: dict[str, list[tuple[str, str | None]]] = {n: [] for n in raw}
        edge_pointer: dict[tuple[str, str], str] = {}
        for i, edge in enumerate(edges):
            pointer = f"{prefix}/edges/{i}"
            shape = _schema_errors(EDGE_SCHEMA, edge, pointer)
            if shape:
                self.errors.extend(shape)
                continue
            src, dst, port = edge["from"], edge["to"], edge.get("port")
            bad = False
            for key, name in (("from", src), ("to", dst)):
                if name not in raw:
                    self.err(f"{pointer}/{key}", f"no node {name!r}" + (" in this loop body" if body else ""))
                    bad = True
            if bad:
                continue
            node = raw[src]
            ntype = self.node_types.get(node.get("type"))
            if port is not None and ntype is not None:
                ports = ntype.ports(node.get("config") or {}) if isinstance(node.get("config", {}), Mapping) else []
                if port == "error":
                    if node.get("on_error") != "branch":
                        self.err(f"{pointer}/port", f"port 'error' needs on_error 'branch' on node {src!r}")
                elif port not in ports:
                    self.err(f"{pointer}/port", f"node {src!r} has no port {port!r}"
                             + (f" (ports: {', '.join(ports)})" if ports else ""))
            if src == dst:
                self.err(pointer, f"edge from {src!r} to itself makes a cycle")
                continue
            succ[src].setdefault(port, []).append(dst)
            in_edges[dst].append((src, port))
            edge_pointer.setdefault((src, dst), pointer)
        # topology
        indeg = {n: len({s for s, _ in in_edges[n]}) for n in raw}
        preds = {n: list(dict.fromkeys(s for s, _ in in_edges[n])) for n in raw}
        children = {n: list(dict.fromkeys(t for ts in succ[n].values() for t in ts)) for n in raw}
        order = [n for n in raw if indeg[n] == 0]
        pos = 0
        while pos < len(order):
            for child in children[order[pos]]:
                indeg[child] -= 1
                if indeg[child] == 0:
                    order.append(child)
            pos += 1
        if len(order) < len(raw):
            for n in raw:
                if n not in order:
                    self.err(f"{prefix}/nodes/{ids[n]}", f"node {n!r} is part of a cycle")
            return None
        if not body:
            starts = [n for n in raw if raw[n].get("type") == "start"]
            if len(starts) == 1:
                seen, todo = {starts[0]}, [starts[0]]
                while todo:
                    for child in children[todo.pop()]:
                        if child not in seen:
                            seen.add(child)
                            todo.append(child)
                for n in raw:
                    if n not in seen:
                        self.err(f"{prefix}/nodes/{ids[n]}", f"node {n!r} is not reachable from start")
        ancestors: dict[str, frozenset[str]] = {}
        for n in order:
            acc: set[str] = set()
            for p in preds[n]:
                acc.add(p)
                acc |= ancestors[p]
            ancestors[n] = frozenset(acc)
        error_sources: dict[str, tuple[str, ...]] = {}
        for n in order:
            sources: list[str] = []
            for src, port in in_edges[n]:
                if port == "error":
                    sources.append(src)
                sources.extend(error_sources.get(src, ()))
            error_sources[n] = tuple(dict.fromkeys(sources))
        # nodes
        compiled: dict[str, CompiledNode] = {}
        for n in order:
            node = raw[n]
            scope = outer_scope | ancestors[n] | ({"error"} if error_sources[n] else set())
            cnode = self.check_node(node, f"{prefix}/nodes/{ids[n]}", scope)
            if cnode is not None:
                compiled[n] = cnode
        if len(compiled) < len(raw):
            return None
        topo = Topology(nodes={n: compiled[n] for n in order}, order=order, succ=succ, in_edges=in_edges,
                        preds=preds, ancestors=ancestors, error_sources=error_sources,
                        entries=[n for n in order if not in_edges[n]],
                        sinks=[n for n in order if not children[n]])
        topo.branches = _branches(topo, children)
        return topo

    def check_node(self, node: Mapping[str, Any], pointer: str, scope: set[str]) -> CompiledNode | None:
        ntype = self.node_types.get(node.get("type"))
        config = node.get("config", {})
        if ntype is None or not isinstance(config, Mapping):
            return None
        cpointer = f"{pointer}/config"
        self.errors.extend(_schema_errors(ntype.config_schema, config, cpointer))
        self.errors.extend(ntype.validate(config, cpointer))
        body = None
        if ntype.type == "loop":
            loop_body = config.get("body")
            if isinstance(loop_body, Mapping) and isinstance(loop_body.get("nodes"), list):
                body_scope = scope | {"item", "index"}
                body = self.check_dag(loop_body["nodes"], loop_body.get("edges", []) or [],
                                      f"{cpointer}/body", body_scope, body=True)
                if "items" in config:
                    self.check_value(config["items"], f"{cpointer}/items", scope)
                if "output" in config and body is not None:
                    self.check_value(config["output"], f"{cpointer}/output", body_scope | set(body.nodes))
        else:
            self.check_value(config, cpointer, scope)
            for path, source in ntype.expressions(config):
                fpointer = cpointer + "".join("/" + _escape(str(p)) for p in path)
                self.check_expr(self.expand_for_check(source, fpointer), fpointer, scope)
        self.check_credentials(config, cpointer)
        compensate = node.get("compensate")
        if isinstance(compensate, Mapping):
            self.check_value(compensate, f"{pointer}/compensate", scope | {node["id"]})
            self.check_credentials(compensate, f"{pointer}/compensate")
        static: set[int] = set()
        static_container_ids(config, static)
        timeout = node.get("timeout", ntype.default_timeout)
        return CompiledNode(
            id=node["id"], type=ntype.type, node_type=ntype, title=node.get("name") or ntype.title or node["id"],
            config=dict(config), run=node.get("run", "normal"),
            retry=RetryPolicy.from_config(node.get("retry", ntype.default_retry)) if ntype.retries else None,
            timeout=timeout,
            on_error=node.get("on_error", "fail"), compensate=compensate, pointer=pointer,
            static_ids=static, inline=ntype.inline and timeout is None, body=body)

    def check_value(self, value: Any, pointer: str, scope: set[str]) -> None:
        if isinstance(value, str):
            self.check_string(value, pointer, scope)
        elif isinstance(value, Mapping):
            for k, v in value.items():
                self.check_value(v, f"{pointer}/{_escape(str(k))}", scope)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check_value(v, f"{pointer}/{i}", scope)

    def expand_for_check(self, text: str, pointer: str) -> str | None:
        for name in param_names(text):
            if name not in self.known_params:
                self.err(pointer, f"unknown parameter ${{{name}}}")
                return None
        if "${" in text:
            from workflows.engine.params import substitute_params
            text = substitute_params(text, self.param_values)
        if "$[" in text or "{{{" in text:
            from datetime import datetime
            try:
                text = expand_macros(text, datetime(2024, 2, 29, 12, 0, 0))
            except MacroError as exc:
                self.err(pointer, str(exc))
                return None
        return text

    def check_string(self, text: str, pointer: str, scope: set[str] | None) -> None:
        if "$" not in text and "{{" not in text:
            return
        expanded = self.expand_for_check(text, pointer)
        if expanded is None or scope is None or "{{" not in expanded:
            return
        try:
            exprs = template_exprs(expanded)
        except CelError as exc:
            self.err(pointer, str(exc))
            return
        for expr in exprs:
            self.check_names(expr.names, pointer, scope)

    def check_expr(self, source: str | None, pointer: str, scope: set[str]) -> None:
        if source is None:
            return
        try:
            expr = compile_expr(source)
        except CelError as exc:
            self.err(pointer, str(exc))
            return
        self.check_names(expr.names, pointer, scope)

    def check_names(self, names: tuple[str, ...], pointer: str, scope: set[str]) -> None:
        for name in names:
            if name in scope:
                continue
            if name in self.all_ids or name in ("item", "index", "error"):
                self.err(pointer, f"{name!r} is not in scope here (only upstream nodes, inputs, params, run"
                         + (", item, index inside a loop body" if name in ("item", "index") else "")
                         + (", error on an error branch" if name == "error" else "") + ")")
            else:
                self.err(pointer, f"unknown name {name!r}")

    def check_credentials(self, value: Any, pointer: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                if k == "auth" and isinstance(v, Mapping) and isinstance(v.get("credential"), str):
                    if v["credential"] not in self.credentials:
                        self.err(f"{pointer}/auth/credential", f"unknown credential {v['credential']!r}")
                else:
                    self.check_credentials(v, f"{pointer}/{_escape(str(k))}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check_credentials(v, f"{pointer}/{i}")


def _branches(topo: Topology, children: dict[str, list[str]]) -> dict[tuple[str, str | None], list[tuple[str, frozenset[str]]]]:
    """For each fan-out, the nodes of each branch up to (excluding) where branches meet."""
    descendants: dict[str, frozenset[str]] = {}
    for n in reversed(topo.order):
        acc = {n}
        for c in children[n]:
            acc |= descendants[c]
        descendants[n] = frozenset(acc)
    out: dict[tuple[str, str | None], list[tuple[str, frozenset[str]]]] = {}
    for src, ports in topo.succ.items():
        for port, targets in ports.items():
            if len(targets) < 2:
                continue
            branches = []
            for t in targets:
                others: set[str] = set()
                for o in targets:
                    if o != t:
                        others |= descendants[o]
                branches.append((t, frozenset(descendants[t] - others)))
            out[(src, port)] = branches
    return out


def _decl_schema(decl: Mapping[str, Any]) -> dict[str, Any]:
    kind = decl.get("type", "string")
    schema: dict[str, Any] = (
        {"type": ["string", "object"], "x-weft-type": "file"} if kind == "file" else {"type": kind}
    )
    for key in ("description", "enum", "default"):
        if key in decl:
            schema[key] = decl[key]
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


def _node_types() -> Mapping[str, NodeType]:
    from workflows.engine.nodes.registry import NODE_TYPES

    return NODE_TYPES


def validate_graph(graph: Any, *, global_params: Mapping[str, Any] | None = None,
                   credential_names: set[str] | None = None,
                   node_types: Mapping[str, NodeType] | None = None) -> list[dict[str, str]]:
    """Every problem of ``graph`` as ``[{"path", "message"}]`` (empty: valid)."""
    checker = _Checker(graph, global_params or {}, credential_names or set(), node_types or _node_types())
    checker.check()
    return checker.errors


def compile_graph(graph: Any, *, global_params: Mapping[str, Any] | None = None,
                  credential_names: set[str] | None = None,
                  node_types: Mapping[str, NodeType] | None = None) -> CompiledGraph:
    """The compiled graph; raises GraphInvalid with every problem."""
    checker = _Checker(graph, global_params or {}, credential_names or set(), node_types or _node_types())
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
    schema = _decls_schema(compiled.inputs)
    errors = _schema_errors(schema, inputs, "/inputs")
    if errors:
        raise InputInvalid(errors)
    return inputs
