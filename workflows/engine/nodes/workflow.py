"""The ``workflow`` node: ``{"workflow": id, "inputs": {...}}`` runs a published workflow of the
same team as a child run through ``services.run_child_workflow``; the child's outputs are this
node's output (a child failure is raised by the service as a NodeError)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeResult, NodeType, Reference


class WorkflowNode(NodeType):
    type: ClassVar[str] = "workflow"
    title: ClassVar[str] = "Sub-workflow"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["workflow"],
        "properties": {"workflow": {"type": ["string", "integer"]}, "inputs": {"type": "object"}},
        "additionalProperties": False,
    }

    def references(self, config: Mapping[str, Any]) -> list[Reference]:
        return [Reference("/workflow", "workflow", config["workflow"])] if "workflow" in config else []

    def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.resolve(ctx.config.get("inputs") or {}, ["inputs"])
        outputs = ctx.services.run_child_workflow(workflow_id=ctx.config["workflow"], inputs=inputs,
                            parent_run_id=ctx.run_id, node_key=ctx.key)
        return NodeResult(output=outputs)
