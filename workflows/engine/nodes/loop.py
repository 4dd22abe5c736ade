"""The ``loop`` node: runs its ``body`` sub-graph once per item of ``items``.

``{"items": value, "parallelism": N, "body": {"nodes", "edges"}, "output": value,
"on_item_error": "fail"|"continue"}``. Inside the body ``item`` and ``index`` are in scope, and so
are the loop's own ancestors. ``output`` is resolved in the body's scope once an item's body
finished (default: the output of the body's only sink, or ``{sink_id: output}``). The node's
output is the list of per-item outputs, in item order.

The scheduler runs bodies itself (items are frames of the same scheduler, so body node
executions are journaled with keys like ``loop[3].node``); ``run`` is never called.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from workflows.engine.nodes.base import ConfigChecker, NodeContext, NodeResult, NodeType

if TYPE_CHECKING:
    from workflows.engine.graph import Topology


class LoopNode(NodeType):
    type: ClassVar[str] = "loop"
    title: ClassVar[str] = "Loop"
    retries: ClassVar[bool] = False
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["items", "body"],
        "properties": {
            "items": {},
            "parallelism": {"type": "integer", "minimum": 1, "maximum": 64},
            "body": {
                "type": "object",
                "required": ["nodes"],
                "properties": {"nodes": {"type": "array", "minItems": 1}, "edges": {"type": "array"}},
                "additionalProperties": False,
            },
            "output": {},
            "on_item_error": {"enum": ["fail", "continue"]},
        },
        "additionalProperties": False,
    }

    def bodies(self, config: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return [("body", config.get("body"))]

    def check_config(self, checker: ConfigChecker, config: Mapping[str, Any], pointer: str,
                     scope: Container[str]) -> Topology | None:
        """``items`` in the loop's scope; the body a DAG of its own that also sees ``item`` and
        ``index``; ``output`` in the body's scope plus the body's nodes."""
        if "items" in config:
            checker.check_value(config["items"], f"{pointer}/items", scope)
        body = config.get("body")
        if not isinstance(body, Mapping) or not isinstance(body.get("nodes"), list):
            return None  # the config schema reports it
        edges = body.get("edges") or []
        topo, body_scope = checker.check_body(body["nodes"], edges if isinstance(edges, list) else [],
                                              f"{pointer}/body", scope, ("item", "index"))
        if "output" in config and topo is not None:
            checker.check_value(config["output"], f"{pointer}/output", checker.with_names(body_scope, topo.nodes))
        return topo

    def run(self, ctx: NodeContext) -> NodeResult:  # pragma: no cover - the scheduler runs loops
        raise NotImplementedError("loops are run by the scheduler")
