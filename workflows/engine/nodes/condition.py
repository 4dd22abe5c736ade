"""The ``condition`` node: ``{"cases": [{"id", "when": CEL}]}``; the first true case's id is the
port taken, else ``else``. Data flows through: its output is its upstream data unchanged, so a
JSONPath ``$...`` in the next node reads what it would read without the condition; the case taken
is the node run's port and its ``process_data`` (``{"case": port}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.nodes.base import NodeContext, NodeError, NodeResult, NodeType

ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_\\-]{0,63}$"


class ConditionNode(NodeType):
    type: ClassVar[str] = "condition"
    title: ClassVar[str] = "Condition"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["cases"],
        "properties": {
            "cases": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "when"],
                    "properties": {"id": {"type": "string", "pattern": ID_PATTERN},
                                   "when": {"type": "string", "minLength": 1}},
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    }
    inline: ClassVar[bool] = True

    def ports(self, config: Mapping[str, Any]) -> list[str]:
        cases = config.get("cases") if isinstance(config, Mapping) else None
        ids = [c["id"] for c in (cases if isinstance(cases, list) else []) if isinstance(c, Mapping) and isinstance(c.get("id"), str)]
        return [*ids, "else"]

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = []
        seen: set[str] = set()
        cases = config.get("cases")
        for i, case in enumerate(cases if isinstance(cases, list) else []):
            case_id = case.get("id") if isinstance(case, Mapping) else None
            if not isinstance(case_id, str):
                continue  # the config schema reports it
            if case_id == "else" or case_id == "error":
                errors.append({"path": f"{path}/cases/{i}/id", "message": f"case id {case_id!r} is reserved"})
            elif case_id in seen:
                errors.append({"path": f"{path}/cases/{i}/id", "message": f"duplicate case id {case_id!r}"})
            seen.add(case_id)
        return errors

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[list[Any], str]]:
        cases = config.get("cases")
        return [(["cases", i, "when"], c["when"]) for i, c in enumerate(cases if isinstance(cases, list) else [])
                if isinstance(c, Mapping) and isinstance(c.get("when"), str)]

    def run(self, ctx: NodeContext) -> NodeResult:
        for i, case in enumerate(ctx.config["cases"]):
            try:
                value = ctx.evaluate(case["when"], {})
            except NodeError as exc:
                raise NodeError(f"nodes.{ctx.node_id}.config.cases[{i}].when: {exc.message}",
                                code=exc.code) from None
            if not isinstance(value, bool):
                raise NodeError(f"nodes.{ctx.node_id}.config.cases[{i}].when: must be a boolean, "
                                f"got {value!r}", code="expression_error")
            if value:
                return NodeResult(output=ctx.upstream, port=case["id"], process_data={"case": case["id"]})
        return NodeResult(output=ctx.upstream, port="else", process_data={"case": "else"})
