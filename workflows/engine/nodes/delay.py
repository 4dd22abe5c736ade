"""The ``delay`` node: waits through ``ctx.wait`` (stoppable; parks in async runs).

``{"mode": "fixed", "seconds": s}``, ``{"mode": "random", "min", "max"}`` or
``{"mode": "exponential", "base", "factor", "attempt", "max"}`` (``base * factor ** attempt``,
capped by ``max``). The target time is saved as state, so a resumed run waits only what is left.
Data flows through: the output is the upstream data unchanged; the planned seconds are the node
run's ``process_data`` (``{"seconds"}``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.nodes.base import TEMPLATE_MARKERS, NodeContext, NodeError, NodeResult, NodeType

_NUM = {"type": ["number", "string"]}
# The fields each mode reads, with their defaults (None: required).
_FIELDS: dict[str, dict[str, float | None]] = {
    "fixed": {"seconds": 0.0},
    "random": {"min": 0.0, "max": None},
    "exponential": {"base": 1.0, "factor": 2.0, "attempt": 0.0},
}


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

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        """What the schema cannot say: ``max`` is required in ``random`` mode; a literal number
        (or a string that is no template) must be a finite number at least 0, ``attempt`` an
        integer; a literal ``min`` may not exceed ``max``."""
        mode = config.get("mode", "fixed")
        if not isinstance(mode, str) or mode not in _FIELDS:
            return []  # the schema reports it
        errors = [{"path": f"{path}/{name}", "message": f"required when mode is {mode!r}"}
                  for name, default in _FIELDS[mode].items() if default is None and name not in config]
        literal: dict[str, float] = {}
        for name in (*_FIELDS[mode], *(["max"] if mode == "exponential" else [])):
            if name not in config or isinstance(config[name], str) and TEMPLATE_MARKERS.search(config[name]):
                continue
            try:
                literal[name] = _number(config, name)
            except ValueError as exc:
                errors.append({"path": f"{path}/{name}", "message": str(exc).removeprefix(f"{name}: ")})
        if mode == "random" and literal.get("min", 0.0) > literal.get("max", math.inf):
            errors.append({"path": f"{path}/min", "message": "must not be greater than max"})
        return errors

    def run(self, ctx: NodeContext) -> NodeResult:
        if ctx.state and "until" in ctx.state:
            until, seconds = ctx.state["until"], ctx.state["seconds"]
        else:
            config = ctx.resolve(ctx.config)
            try:
                seconds = self.seconds(config)
            except ValueError as exc:
                raise NodeError(f"nodes.{ctx.node_id}.config.{exc}", code="bad_config") from None
            until = ctx.now() + seconds
        remaining = until - ctx.now()
        if remaining > 0:
            ctx.wait(remaining, {"until": until, "seconds": seconds})
        return NodeResult(output=ctx.upstream, process_data={"seconds": seconds})

    @staticmethod
    def seconds(config: Mapping[str, Any]) -> float:
        """The planned wait of a resolved config; ``ValueError("field: problem")`` when it has none."""
        mode = config.get("mode", "fixed")
        if not isinstance(mode, str) or mode not in _FIELDS:
            raise ValueError(f"mode: unknown mode {mode!r}")
        for name, default in _FIELDS[mode].items():
            if default is None and name not in config:
                raise ValueError(f"{name}: required when mode is {mode!r}")
        if mode == "random":
            low, high = _number(config, "min"), _number(config, "max")
            if low > high:
                raise ValueError(f"min: {low:g} is greater than max ({high:g})")
            return random.uniform(low, high)
        if mode == "exponential":
            try:
                value = _number(config, "base", 1.0) * _number(config, "factor", 2.0) ** _number(config, "attempt")
            except OverflowError:
                value = math.inf
            if "max" in config:
                return min(value, _number(config, "max"))
            if not math.isfinite(value):
                raise ValueError("base: base * factor ** attempt is too large; set max")
            return value
        return _number(config, "seconds")


def _number(config: Mapping[str, Any], name: str, default: float = 0.0) -> float:
    """Field ``name`` as a finite number of at least 0 (``attempt``: an integer);
    ``ValueError("name: problem")`` otherwise."""
    value = config.get(name, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(int(value) if name == "attempt" and not isinstance(value, float) else value)
    except (TypeError, ValueError):
        kind = "an integer" if name == "attempt" else "a number of seconds"
        raise ValueError(f"{name}: must be {kind}, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}: must be a finite number at least 0, got {value!r}")
    return number
