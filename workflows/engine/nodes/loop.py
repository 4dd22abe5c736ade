"""The ``loop`` node: runs its ``body`` sub-graph once per item of ``items``.

``{"items": value, "parallelism": N, "body": {"nodes", "edges"}, "output": value,
"on_item_error": "fail"|"continue"}``. Inside the body ``item`` and ``index`` are in scope, and so
are the loop's own ancestors. ``output`` is resolved in the body's scope once an item's body
finished (default: the output of the body's only sink, or ``{sink_id: output}``). The node's
output is the list of per-item outputs, in item order.

A container type: the scheduler calls ``body_start`` and, as each item's body ends, ``body_done``
(``nodes.base.BodyHost``); items are frames of the same scheduler, so body node executions are
journaled with keys like ``loop[3].node``. At most ``parallelism`` items run at once; the first
failed item (``on_item_error: fail``) lets the running ones end and launches no more, and the loop
fails ``loop_item_failed`` naming the item (``detail``: the item's error with its ``index``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from workflows.engine.errors import LimitExceeded, NodeError
from workflows.engine.events import IterationCompleted, IterationNext, IterationStarted
from workflows.engine.nodes.base import BodyHost, BodyResult, ConfigChecker, NodeContext, NodeResult, NodeType
from workflows.engine.ports import NodeStatus

if TYPE_CHECKING:
    from workflows.engine.graph import Topology


@dataclass
class _Items:
    """A loop execution's progress (the ``BodyHost.state`` of a loop)."""

    items: list[Any]
    parallelism: int
    on_item_error: str
    results: list[Any] = field(default_factory=list)
    next: int = 0
    active: int = 0
    failed: dict[str, Any] | None = None


class LoopNode(NodeType):
    type: ClassVar[str] = "loop"
    title: ClassVar[str] = "Loop"
    retries: ClassVar[bool] = False
    container: ClassVar[bool] = True
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

    def body_start(self, host: BodyHost) -> None:
        try:
            items = host.resolve(host.config.get("items"), ["items"])
        except NodeError as err:
            host.fail(err)
            return
        if not isinstance(items, list):
            host.fail(NodeError(f"nodes.{host.node_id}.config.items: must be a list, got {type(items).__name__}",
                                code="expression_error"))
            return
        limit = host.limits.loop_items
        if len(items) > limit:
            host.fail(LimitExceeded(f"nodes.{host.node_id}.config.items: {len(items)} items; the limit is {limit} "
                                    f"(WEFT_MAX_LOOP_ITEMS)", detail={"items": len(items), "limit": limit}))
            return
        host.started({"items": items})
        host.state = state = _Items(items, int(host.config.get("parallelism", 1)),
                                    host.config.get("on_item_error", "fail"), [None] * len(items))
        host.node_event(IterationStarted, status=NodeStatus.RUNNING)
        if not items:
            self._finish(host, state)
            return
        while state.active < state.parallelism and state.next < len(items):
            self._launch(host, state)

    def body_done(self, host: BodyHost, result: BodyResult) -> None:
        state: _Items = host.state
        if result.failed is not None:
            self._item_failed(state, result.index, result.failed)
        else:
            try:
                if "output" in host.config:
                    state.results[result.index] = host.resolve_in_body(result, host.config["output"], ["output"])
                else:
                    sinks = result.sinks
                    state.results[result.index] = next(iter(sinks.values())) if len(sinks) == 1 else sinks
            except NodeError as err:
                self._item_failed(state, result.index, {"code": err.code, "message": err.message})
        state.active -= 1
        if state.failed is None and state.next < len(state.items):
            self._launch(host, state)
        elif state.active == 0 and (state.failed is not None or state.next >= len(state.items)):
            self._finish(host, state)

    @staticmethod
    def _item_failed(state: _Items, index: int, error: dict[str, Any]) -> None:
        if state.on_item_error == "continue":
            state.results[index] = {"error": error}
        elif state.failed is None:
            state.failed = {**error, "index": index}

    @staticmethod
    def _launch(host: BodyHost, state: _Items) -> None:
        index = state.next
        state.next += 1
        state.active += 1
        host.emit(IterationNext(host.info(), index))
        host.launch(index, {"item": state.items[index], "index": index})

    @staticmethod
    def _finish(host: BodyHost, state: _Items) -> None:
        if state.failed is not None:
            host.node_event(IterationCompleted, status=NodeStatus.FAILED, error=state.failed)
            host.fail(NodeError(f"loop item {state.failed['index']} failed: {state.failed.get('message')}",
                                code="loop_item_failed", detail=state.failed))
            return
        host.node_event(IterationCompleted, status=NodeStatus.SUCCEEDED, outputs=state.results)
        host.succeed(state.results)

    def run(self, ctx: NodeContext) -> NodeResult:  # pragma: no cover - containers are run through body_start
        raise NotImplementedError("loops are run through body_start")
