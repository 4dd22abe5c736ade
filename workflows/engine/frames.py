"""The scheduler's bookkeeping of one run: the frames it walks (the graph, and each run of a
container's body), the lazily resolved scope a node's templates see, one node execution in progress,
and the recorder of node records and events (``workflows.engine.scheduler`` drives them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from workflows.engine.events import EngineEvent, NodeEvent, NodeFinished, NodeInfo
from workflows.engine.graph import CompiledNode, Topology
from workflows.engine.nodes.base import NodeError
from workflows.engine.ports import Clock, NodeRecord, NodeStatus
from workflows.engine.redaction import redact
from workflows.engine.templates import SCOPE_MISSING
from workflows.engine.values import ValueError_, format_path

ANNOUNCED = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.STOPPED})


class Frame:
    """The state of one DAG being walked: the graph, or one run of a container's body (``body``,
    its ``index``, and the ``names`` it adds to the scope, e.g. a loop's ``item`` and ``index``)."""

    def __init__(self, topo: Topology, prefix: str, parent: Frame | None, body: Any = None,
                 index: int | None = None, names: Mapping[str, Any] | None = None) -> None:
        self.topo = topo
        self.prefix = prefix
        self.parent = parent
        self.body = body
        self.index = index
        self.names = names
        self.outputs: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        self.pending_in = {n: len(e) for n, e in topo.in_edges.items()}
        self.live_preds: dict[str, list[str]] = {n: [] for n in topo.nodes}
        self.remaining = len(topo.nodes)
        self.running = 0
        self.failed: dict[str, Any] | None = None
        self.closed = False
        self.branches: list[list[Any]] = []  # [parallel_id, start node, remaining set]
        self.branch_of: dict[str, list[list[Any]]] = {}  # node id -> the open branches it belongs to

    def lookup(self, name: str, node_id: str | None) -> Any:
        frame: Frame | None = self
        while frame is not None:
            if frame.names is not None and name in frame.names:
                return frame.names[name]
            if name in frame.outputs:
                return frame.outputs[name]
            if name in frame.topo.nodes:
                return None  # an ancestor that was skipped
            frame = frame.parent
        return SCOPE_MISSING


class Scope(Mapping[str, Any]):
    """What templates of one node see; resolved lazily, name by name."""

    __slots__ = ("run_scope", "frame", "node_id", "error", "extra")

    def __init__(self, run_scope: Mapping[str, Any], frame: Frame, node_id: str | None, error: Any = SCOPE_MISSING,
                 extra: Mapping[str, Any] | None = None) -> None:
        self.run_scope, self.frame, self.node_id, self.error, self.extra = run_scope, frame, node_id, error, extra

    def get(self, name: str, default: Any = None) -> Any:
        if self.extra and name in self.extra:
            return self.extra[name]
        if name in self.run_scope:
            return self.run_scope[name]
        if name == "error" and self.error is not SCOPE_MISSING:
            return self.error
        value = self.frame.lookup(name, self.node_id)
        return default if value is SCOPE_MISSING else value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, SCOPE_MISSING)
        if value is SCOPE_MISSING:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.run_scope)

    def __len__(self) -> int:
        return len(self.run_scope)


class Exec:
    """One node execution in progress."""

    __slots__ = ("frame", "node", "key", "attempt", "index", "token", "state", "upstream", "pred",
                 "started_at", "started_mono", "seq", "attempt_deadline", "inputs", "events", "secrets",
                 "scope", "resumed", "started_iso")

    def __init__(self, frame: Frame, node: CompiledNode, key: str) -> None:
        self.frame, self.node, self.key = frame, node, key
        self.attempt = 1
        self.seq = 0
        self.attempt_deadline: float | None = None
        self.state: dict[str, Any] | None = None
        self.inputs: Any = None
        self.events: list[EngineEvent] = []
        self.secrets: list[str] = []
        self.resumed = False
        self.upstream: Any = None
        self.pred: str | None = None
        self.index = 0
        self.token = ""
        self.started_at: datetime | None = None
        self.started_iso: str | None = None
        self.started_mono = 0.0
        self.scope: Scope | None = None


def value_error(node: CompiledNode, exc: ValueError_) -> NodeError:
    """A config value that failed to resolve, named by its place (``limit_exceeded`` past a budget)."""
    return NodeError(f"nodes.{node.id}.config.{format_path(exc.path)}: {exc.message}", code=exc.code)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Recorder:
    """What one step hands the host: node records and engine events, with every secret a node
    reported redacted from them (``***``)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: list[NodeRecord] = []
        self.events: list[EngineEvent] = []
        self.secrets: set[str] = set()

    def redact(self, value: Any) -> Any:
        return redact(value, self.secrets) if self.secrets else value

    def record(self, ex: Exec, status: NodeStatus, *, port: str | None = None, output: Any = None,
               error: dict[str, Any] | None = None, process_data: dict[str, Any] | None = None,
               state: dict[str, Any] | None = None, wake_at: float | None = None) -> None:
        frame = ex.frame
        final = status != NodeStatus.RUNNING
        finished = utc(self.clock.now()) if final else None
        elapsed = self.clock.monotonic() - ex.started_mono if final else 0.0
        inputs = self.redact(ex.inputs)
        self.records.append(NodeRecord(
            key=ex.key, node_id=ex.node.id, node_type=ex.node.type, title=ex.node.title, status=status,
            index=ex.index, attempt=ex.attempt, port=port, inputs=inputs, output=output, error=error,
            process_data=process_data, started_at=ex.started_at, finished_at=finished, elapsed=elapsed,
            predecessor_node_id=ex.pred,
            loop_key=frame.body.ex.key if frame.body else None, iteration_index=frame.index,
            receipt_token=ex.token, state=state, wake_at=wake_at))
        if status in ANNOUNCED or (status == NodeStatus.SKIPPED and ex.node.run == "skip"):
            # nodes skipped because no branch reached them are recorded but not announced
            self.event(NodeFinished, ex, status=status, outputs=output, error=error,
                       process_data=process_data, elapsed=elapsed, finished_at=finished, port=port)

    def node_info(self, ex: Exec) -> NodeInfo:
        frame = ex.frame
        branches = frame.branch_of.get(ex.node.id)
        branch = branches[0] if branches else None
        return NodeInfo(ex.key, ex.node.id, ex.node.type, ex.node.title, ex.index, ex.pred,
                        frame.body.ex.key if frame.body else None, frame.index,
                        branch[0] if branch else None, branch[1] if branch else None)

    def event(self, cls: type[NodeEvent], ex: Exec, *, status: str, outputs: Any = None, error: Any = None,
              process_data: Any = None, elapsed: float = 0.0, finished_at: datetime | None = None,
              port: str | None = None) -> None:
        self.events.append(cls(
            self.node_info(ex), status, inputs=self.redact(ex.inputs), outputs=self.redact(outputs),
            process_data=process_data, error=error, elapsed_time=elapsed, port=port, created_at=ex.started_iso,
            finished_at=finished_at.isoformat() if finished_at else None, attempt=ex.attempt))
