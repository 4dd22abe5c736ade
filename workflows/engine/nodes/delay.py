"""The ``delay`` node: waits through ``ctx.wait`` (stoppable; parks in async runs).

``{"mode": "fixed", "seconds": s}``, ``{"mode": "random", "min", "max"}`` or
``{"mode": "exponential", "base", "factor", "attempt", "max"}`` (``base * factor ** attempt``,
capped by ``max``). The target time is saved as state, so a resumed run waits only what is left.
Data flows through: the output is the upstream data unchanged; the planned seconds are the node
run's ``process_data`` (``{"seconds"}``).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeError, NodeResult, NodeType

_NUM = {"type": ["number", "string"]}


class DelayNode(NodeType):
    type: ClassVar[str] = "delay"
    title: ClassVar[str] = "Delay"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["fixed", "random", "exponential"]},
            "seconds": _NUM, "min": _NUM, "max": _NUM, "base": _NUM, "factor": _NUM,
            "attempt": {"type": ["integer", "string"]},
        },
        "additionalProperties": False,
    }

    def run(self, ctx: NodeContext) -> NodeResult:
        if ctx.state and "until" in ctx.state:
            until, seconds = ctx.state["until"], ctx.state["seconds"]
        else:
            config = ctx.resolve(ctx.config)
            try:
                seconds = self.seconds(config)
            except (TypeError, ValueError) as exc:
                raise NodeError(f"nodes.{ctx.node_id}.config: {exc}", code="bad_config") from None
            until = ctx.now() + seconds
        remaining = until - ctx.now()
        if remaining > 0:
            ctx.wait(remaining, {"until": until, "seconds": seconds})
        return NodeResult(output=ctx.upstream, process_data={"seconds": seconds})

    @staticmethod
    def seconds(config: dict[str, Any]) -> float:
        mode = config.get("mode", "fixed")
        if mode == "random":
            return random.uniform(float(config.get("min", 0)), float(config["max"]))
        if mode == "exponential":
            value = float(config.get("base", 1)) * float(config.get("factor", 2)) ** int(config.get("attempt", 0))
            return min(value, float(config["max"])) if "max" in config else value
        return float(config.get("seconds", 0))
