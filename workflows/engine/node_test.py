"""The graph that runs one node on its own ("run this node" in the editor).

The node keeps its config; every node upstream of it is replaced by a ``transform`` that gives
back, as literals, the output that node had in an earlier run, so expressions naming them see the
same values without running them again (no HTTP call repeated). The start node stays (the run gets
the earlier run's inputs); an end after the node returns its output as ``output``. Direct
predecessors stay direct (a join stays a join), so the node's upstream data is the same too.
Pure: no Django.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workflows.engine.nodes.registry import NODE_TYPES

_ACTIVE = ("{{", "${", "$[")


class NodeTestUnavailable(ValueError):
    """The node cannot be run alone (a message for the person asking)."""


def literal(value: Any) -> Any:
    """``value`` written so that resolving it as a node config value gives ``value`` back."""
    if isinstance(value, str):
        if value.startswith("$") or any(mark in value for mark in _ACTIVE):
            # A CEL string literal: JSON escapes are CEL escapes; braces escaped so "}}" cannot end it.
            text = json.dumps(value).replace("{", "\\u007b").replace("}", "\\u007d")
            return "{{ " + text + " }}"
        return value
    if isinstance(value, Mapping):
        return {str(k): literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def _ancestors(edges: list[Mapping[str, Any]], node_id: str) -> list[str]:
    seen: list[str] = []
    stack = [node_id]
    while stack:
        cur = stack.pop()
        for e in edges:
            if e.get("to") == cur and e.get("from") not in seen:
                seen.append(e["from"])
                stack.append(e["from"])
    return [n for n in seen if n != node_id]


def single_node_graph(graph: Mapping[str, Any], node_id: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A graph running only ``node_id`` of ``graph``, its ancestors' outputs taken from ``outputs``."""
    nodes = {n.get("id"): n for n in graph.get("nodes") or [] if isinstance(n, Mapping)}
    node = nodes.get(node_id)
    if node is None:
        raise NodeTestUnavailable(f"There is no node '{node_id}' in the draft.")
    if node.get("type") in ("start", "end"):
        raise NodeTestUnavailable("Start and End nodes are run with the whole workflow.")
    edges = [e for e in graph.get("edges") or [] if isinstance(e, Mapping)]
    start = next((n for n in nodes.values() if n.get("type") == "start"), None)
    if start is None:
        raise NodeTestUnavailable("The draft has no Start node.")
    direct = list(dict.fromkeys(e["from"] for e in edges if e.get("to") == node_id and e.get("port") != "error"))
    ancestors = _ancestors(edges, node_id)
    stubs: list[dict[str, Any]] = []
    for aid in ancestors:
        if aid == start["id"] or aid not in nodes:
            continue
        out = outputs.get(aid)
        if out is None:
            out = {}
        if not isinstance(out, Mapping):
            raise NodeTestUnavailable(f"The output of '{aid}' in the last run is not an object; run the whole workflow instead.")
        stubs.append({"id": aid, "type": "transform", "name": f"{aid} (last run's output)", "config": {"mapping": literal(out)}})
    # Non-direct ancestors first, direct predecessors last, all in one chain after the start.
    stubs.sort(key=lambda s: s["id"] in direct)
    chain = [start["id"], *[s["id"] for s in stubs]]
    new_edges: list[dict[str, Any]] = [{"from": a, "to": b} for a, b in zip(chain, chain[1:], strict=False)]
    for pred in direct or [start["id"]]:
        if pred in chain:
            new_edges.append({"from": pred, "to": node_id})
    end_id = "end" if "end" not in chain and node_id != "end" else "end_test"
    node_type = NODE_TYPES.get(node.get("type"))
    ports: list[str | None] = list(node_type.ports(node.get("config") or {})) if node_type else []
    if not ports:
        ports = [None]
    if node.get("on_error") == "branch":
        ports.append("error")
    for port in ports:
        edge: dict[str, Any] = {"from": node_id, "to": end_id}
        if port:
            edge["port"] = port
        new_edges.append(edge)
    return {
        "inputs": graph.get("inputs") or {},
        "params": graph.get("params") or {},
        "nodes": [dict(start), *stubs, dict(node),
                  {"id": end_id, "type": "end", "config": {"outputs": {"output": "{{ " + node_id + " }}"}}}],
        "edges": new_edges,
    }
