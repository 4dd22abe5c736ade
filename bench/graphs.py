"""The workflow graphs the benchmarks run (plain dicts, the published graph format).

- ``chain(n)``: start -> n transforms -> end. Each transform reads the upstream value with a
  JSONPath and one input with a CEL template, so it does the kind of work real transforms do.
- ``fanout(width)``: start -> ``width`` parallel transforms -> one join transform -> end.
- ``passthrough()``: start -> transform -> end carrying ``inputs.data`` (input-size growth).
- ``demo_like()``: start -> transform -> end on order inputs (the end-to-end workflow).
- ``parking(seconds)``: start -> delay -> end (an async run parks on the delay).
"""

from __future__ import annotations

from typing import Any


def _transform(node_id: str, step: int) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "name": f"Step {step}",
            "config": {"mapping": {"value": "$.value", "step": step, "label": "{{ inputs.label }}"}}}


def chain(n: int) -> dict[str, Any]:
    """``n`` transforms in a row (``n + 2`` nodes with start and end)."""
    ids = [f"t{i}" for i in range(1, n + 1)]
    nodes = [{"id": "start", "type": "start"}, {"id": "first", "type": "transform",
             "config": {"mapping": {"value": "{{ inputs.value }}", "step": 0, "label": "{{ inputs.label }}"}}}]
    nodes += [_transform(node_id, i) for i, node_id in enumerate(ids[1:], start=1)]
    ids[0] = "first"
    nodes.append({"id": "end", "type": "end", "config": {"outputs": {"value": "{{ " + ids[-1] + ".value }}"}}})
    order = ["start", *ids, "end"]
    edges = [{"from": a, "to": b} for a, b in zip(order, order[1:], strict=False)]
    return {"inputs": {"value": {"type": "number", "default": 1}, "label": {"type": "string", "default": "bench"}},
            "outputs": {"value": {"type": "number"}}, "nodes": nodes, "edges": edges}


def fanout(width: int) -> dict[str, Any]:
    """start -> ``width`` transforms in parallel -> a join -> end (``width + 3`` nodes)."""
    ids = [f"b{i}" for i in range(width)]
    nodes = [{"id": "start", "type": "start"}]
    nodes += [{"id": node_id, "type": "transform",
               "config": {"mapping": {"value": "$.value", "branch": i, "label": "{{ inputs.label }}"}}}
              for i, node_id in enumerate(ids)]
    nodes.append({"id": "join", "type": "transform", "config": {"mapping": {"count": "{{ size(b0) }}", "first": "$.b0.value"}}})
    nodes.append({"id": "end", "type": "end", "config": {"outputs": {"count": "{{ join.count }}"}}})
    edges = [{"from": "start", "to": b} for b in ids] + [{"from": b, "to": "join"} for b in ids]
    edges.append({"from": "join", "to": "end"})
    return {"inputs": {"value": {"type": "number", "default": 1}, "label": {"type": "string", "default": "bench"}},
            "nodes": nodes, "edges": edges}


def passthrough() -> dict[str, Any]:
    return {
        "inputs": {"data": {"type": "string", "required": True}},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "copy", "type": "transform", "config": {"mapping": {"data": "$.data", "size": "{{ size(inputs.data) }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"size": "{{ copy.size }}"}}},
        ],
        "edges": [{"from": "start", "to": "copy"}, {"from": "copy", "to": "end"}],
    }


def demo_like() -> dict[str, Any]:
    return {
        "inputs": {"order_id": {"type": "string", "required": True}, "amount": {"type": "number", "default": 0}},
        "outputs": {"route": {"type": "string"}, "order": {"type": "string"}},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "shape", "type": "transform", "name": "Shape the order",
             "config": {"mapping": {"order": "$.order_id", "route": "{{ double(inputs.amount) > 1000.0 ? 'review' : 'standard' }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"route": "{{ shape.route }}", "order": "{{ shape.order }}"}}},
        ],
        "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "end"}],
    }


def parking(seconds: int) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": seconds}},
            {"id": "end", "type": "end", "config": {"outputs": {}}},
        ],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
    }
