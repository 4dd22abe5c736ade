"""The ``start`` node: exactly one per graph; its output is the run's validated inputs."""

from __future__ import annotations

from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeResult, NodeType


class StartNode(NodeType):
    type: ClassVar[str] = "start"
    title: ClassVar[str] = "Start"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    inline: ClassVar[bool] = True
    # its output is the run's inputs, which the request-body budget (WEFT_MAX_BODY_BYTES) bounds
    output_budget: ClassVar[bool] = False

    def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=ctx.scope["inputs"])
