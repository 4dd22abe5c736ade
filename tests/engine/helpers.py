"""Test helpers for the engine: a fake host journaling in memory, graph builders, a counting node, and
what a run left behind (``Ran``)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from workflows.engine.graph import CompiledGraph, compile_graph, validate_inputs
from workflows.engine.nodes.base import NodeContext, NodeError, NodeResult, NodeType
from workflows.engine.nodes.registry import NODE_TYPES
from workflows.engine.ports import EngineEvent, NodeRecord, RunContext, RunOutcome
from workflows.engine.scheduler import run_graph

BUSINESS_TIME = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


class FakeHost:
    """Keeps the latest record per key and every event; can fail at commit number ``fail_at``."""

    def __init__(self, records: dict[str, NodeRecord] | None = None, fail_at: int | None = None,
                 persist_before_fail: bool = False) -> None:
        self.records: dict[str, NodeRecord] = dict(records or {})
        self.events: list[EngineEvent] = []
        self.commits = 0
        self.fail_at = fail_at
        self.persist_before_fail = persist_before_fail
        self.thread_ids: set[int] = set()

    def load(self) -> list[NodeRecord]:
        return list(self.records.values())

    def commit(self, records: list[NodeRecord], events: list[EngineEvent], *, last: bool = False) -> None:
        self.thread_ids.add(threading.get_ident())
        self.commits += 1
        if self.commits == self.fail_at and not self.persist_before_fail:
            raise RuntimeError("lease lost")
        for record in records:
            self.records[record.key] = record
        self.events.extend(events)
        if self.commits == self.fail_at:
            raise RuntimeError("lease lost")

    def status(self, key: str) -> str:
        return self.records[key].status

    def event_types(self, node_id: str | None = None) -> list[str]:
        return [e.type for e in self.events if node_id is None or e.data.get("node_id") == node_id]


EXECUTIONS: Counter[str] = Counter()
EXEC_LOCK = threading.Lock()


class CountNode(NodeType):
    """Test-only: counts executions by key, returns ``config.value`` (resolved) or fails on demand."""

    type: ClassVar[str] = "count"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    inline: ClassVar[bool] = True

    def run(self, ctx: NodeContext) -> NodeResult:
        with EXEC_LOCK:
            EXECUTIONS[ctx.key] += 1
        config = ctx.resolve(ctx.config)
        if config.get("fail"):
            raise NodeError(config["fail"], retryable=bool(config.get("retryable")))
        return NodeResult(output=config.get("value", ctx.key))


class SlowNode(NodeType):
    """Test-only pool node: sleeps through ctx.wait, counts executions, may fail a number of times."""

    type: ClassVar[str] = "slow"
    config_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    compensations: ClassVar[list[str]] = []

    def run(self, ctx: NodeContext) -> NodeResult:
        with EXEC_LOCK:
            EXECUTIONS[ctx.key] += 1
            count = EXECUTIONS[ctx.key]
        config = ctx.resolve(ctx.config)
        if config.get("secret"):
            ctx.secrets.append(config["secret"])
        ctx.wait(float(config.get("seconds", 0)), None)
        if count <= int(config.get("fail_times", 0)):
            raise NodeError(f"failure {count}", retryable=bool(config.get("retryable", True)),
                            retry_after=config.get("retry_after"))
        if config.get("fail"):
            raise NodeError(config["fail"])
        return NodeResult(output=config.get("value", {"attempt": ctx.attempt, "token": ctx.receipt_token}))

    def compensate(self, ctx: NodeContext, output: Any) -> None:
        SlowNode.compensations.append(ctx.node_id)


TEST_TYPES: dict[str, NodeType] = {**NODE_TYPES, "count": CountNode(), "slow": SlowNode()}


def compile_test(graph: dict[str, Any], **kwargs: Any) -> CompiledGraph:
    return compile_graph(graph, node_types=TEST_TYPES, global_params=kwargs.pop("global_params", {}),
                         credential_names=kwargs.pop("credential_names", set()))


def chain(*nodes: dict[str, Any], edges: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A graph start -> nodes... -> end (unless ``edges`` given)."""
    all_nodes = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end",
                 "config": extra.pop("end_config", {"outputs": {}})}]
    if edges is None:
        edges = [{"from": a["id"], "to": b["id"]} for a, b in zip(all_nodes, all_nodes[1:], strict=False)]
    return {"nodes": all_nodes, "edges": edges, **extra}


def run(graph: dict[str, Any] | CompiledGraph, inputs: dict[str, Any] | None = None,
        host: FakeHost | None = None, **ctx_kwargs: Any) -> tuple[RunOutcome, FakeHost]:
    compiled = graph if isinstance(graph, CompiledGraph) else compile_test(graph)
    host = host or FakeHost()
    ctx = RunContext(run_id=ctx_kwargs.pop("run_id", "run-1"), inputs=validate_inputs(compiled, inputs or {}),
                     business_time=ctx_kwargs.pop("business_time", BUSINESS_TIME), host=host,
                     token_secret=b"secret", **ctx_kwargs)
    return run_graph(compiled, ctx), host


@dataclass
class Ran:
    """One run's outcome and the host it committed to."""

    outcome: RunOutcome
    host: FakeHost

    def record(self, key: str) -> NodeRecord:
        return self.host.records[key]

    def events(self, key: str) -> list[tuple[str, str | None]]:
        """``(event type, status)`` of the events about the node execution ``key``, in order."""
        return [(str(e.type), e.data.get("status")) for e in self.host.events if e.data.get("key") == key]

    def keys(self, status: str) -> list[str]:
        """The node execution keys recorded with ``status``, in the order they were first run."""
        return [r.key for r in sorted(self.host.records.values(), key=lambda r: r.index) if r.status == status]


# What the fixtures of ``tests/engine/nodes/conftest.py`` hand a test.
RunFn = Callable[..., Ran]
Build = Callable[..., dict[str, Any]]
Problems = Callable[..., list[tuple[str, str]]]
