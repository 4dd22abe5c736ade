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

from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeResult, NodeType


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

    def run(self, ctx: NodeContext) -> NodeResult:  # pragma: no cover - the scheduler runs loops
        raise NotImplementedError("loops are run by the scheduler")
