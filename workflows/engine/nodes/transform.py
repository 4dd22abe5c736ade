"""The ``transform`` node: ``{"source": value, "mapping": {key: value}}``.

A mapping value is a literal, a ``{{ }}`` template, a JSONPath string starting with ``$``
(evaluated on ``source``, default: the upstream output; aggregates allowed), or a nested
object/array of these. ``${...}`` and ``$[...]`` time macros are not JSONPath.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.jsonpaths import JsonPathError, compile_path, evaluate_path
from workflows.engine.macros import is_macro_at_start
from workflows.engine.nodes.base import NodeContext, NodeError, NodeResult, NodeType, pointer_part
from workflows.engine.values import format_path


def is_jsonpath(text: str) -> bool:
    return text.startswith("$") and not text.startswith("${") and not is_macro_at_start(text)


class TransformNode(NodeType):
    type: ClassVar[str] = "transform"
    title: ClassVar[str] = "Transform"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["mapping"],
        "properties": {"source": {}, "mapping": {"type": "object"}},
        "additionalProperties": False,
    }
    inline: ClassVar[bool] = True

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = []

        def walk(value: Any, pointer: str) -> None:
            if isinstance(value, str) and is_jsonpath(value):
                try:
                    compile_path(value)
                except JsonPathError as exc:
                    errors.append({"path": pointer, "message": str(exc)})
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{pointer}/{pointer_part(k)}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{pointer}/{i}")

        walk(config.get("mapping"), f"{path}/mapping")
        return errors

    def run(self, ctx: NodeContext) -> NodeResult:
        config = ctx.config
        source = ctx.resolve(config["source"], ["source"]) if "source" in config else ctx.upstream

        def walk(value: Any, path: list[Any]) -> Any:
            if isinstance(value, str):
                if is_jsonpath(value):
                    try:
                        return evaluate_path(value, source, ctx.limits)
                    except JsonPathError as exc:
                        raise NodeError(f"nodes.{ctx.node_id}.config.{format_path(path)}: {exc}",
                                        code=exc.code) from None
                return ctx.resolve(value, path)
            if isinstance(value, dict):
                return {k: walk(v, [*path, k]) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, [*path, i]) for i, v in enumerate(value)]
            return value

        return NodeResult(output=walk(config["mapping"], ["mapping"]))
