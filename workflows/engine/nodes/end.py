"""The ``end`` node: ``{"outputs": {name: value}}``; its output is the resolved outputs object.

The run's outputs are the union of the outputs of every end node reached.
"""

from __future__ import annotations

from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeResult, NodeType


class EndNode(NodeType):
    type: ClassVar[str] = "end"
    title: ClassVar[str] = "End"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"outputs": {"type": "object"}},
        "additionalProperties": False,
    }
    inline: ClassVar[bool] = True

    def run(self, ctx: NodeContext) -> NodeResult:
        outputs = ctx.config.get("outputs") or {}
        return NodeResult(output=ctx.resolve(outputs))
