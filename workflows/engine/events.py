"""Typed engine events: one class per event type the scheduler emits.

A host reads ``event.type`` (an ``EventType``, a ``str``) and ``event.data`` (the JSON-able
payload it stores as a ``RunEvent`` row and streams; the shape is the one the dialects map, see
docs/engine.md). Node events carry a ``NodeInfo`` (which execution) and the node's state at the
time; loop and fan-out events carry what they describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

__all__ = ["EventType", "EngineEvent", "NodeInfo", "NodeEvent", "NodeStarted", "NodeFinished", "NodeRetry",
           "IterationStarted", "IterationNext", "IterationCompleted", "ParallelBranchStarted",
           "ParallelBranchFinished"]


class EventType(StrEnum):
    NODE_STARTED = "node_started"
    NODE_FINISHED = "node_finished"
    NODE_RETRY = "node_retry"
    ITERATION_STARTED = "iteration_started"
    ITERATION_NEXT = "iteration_next"
    ITERATION_COMPLETED = "iteration_completed"
    PARALLEL_BRANCH_STARTED = "parallel_branch_started"
    PARALLEL_BRANCH_FINISHED = "parallel_branch_finished"


class EngineEvent:
    """Base class: ``type`` is the class's event type, ``data`` the payload a host stores."""

    __slots__ = ()
    type: ClassVar[EventType]

    @property
    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"


@dataclass(slots=True, frozen=True)
class NodeInfo:
    """Which node execution an event is about."""

    key: str
    node_id: str
    node_type: str
    title: str
    index: int
    predecessor_node_id: str | None
    iteration_id: str | None  # key of the enclosing loop execution
    iteration_index: int | None
    parallel_id: str | None
    parallel_start_node_id: str | None

    def data(self) -> dict[str, Any]:
        return {
            "id": self.key, "key": self.key, "node_id": self.node_id, "node_type": self.node_type,
            "title": self.title, "index": self.index, "predecessor_node_id": self.predecessor_node_id,
            "iteration_id": self.iteration_id, "iteration_index": self.iteration_index,
            "parallel_id": self.parallel_id, "parallel_start_node_id": self.parallel_start_node_id,
        }


@dataclass(slots=True, eq=False, repr=False)
class NodeEvent(EngineEvent):
    """A node execution's state: started, finished, retrying, or a loop's iteration start/end."""

    node: NodeInfo
    status: str
    inputs: Any = None
    outputs: Any = None
    process_data: Any = None
    error: Any = None
    elapsed_time: float = 0.0
    port: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    attempt: int = 1
    retry_index: int | None = None

    @property
    def data(self) -> dict[str, Any]:
        data = self.node.data()
        data.update({
            "inputs": self.inputs, "outputs": self.outputs, "process_data": self.process_data,
            "status": self.status, "error": self.error, "elapsed_time": self.elapsed_time, "port": self.port,
            "created_at": self.created_at, "finished_at": self.finished_at,
            "attempt": self.attempt, "retry_index": self.retry_index,
        })
        return data


class NodeStarted(NodeEvent):
    __slots__ = ()
    type = EventType.NODE_STARTED


class NodeFinished(NodeEvent):
    __slots__ = ()
    type = EventType.NODE_FINISHED


@dataclass(slots=True, eq=False, repr=False)
class NodeRetry(NodeEvent):
    type = EventType.NODE_RETRY
    retry_interval: float = 0.0

    @property
    def data(self) -> dict[str, Any]:
        data = NodeEvent.data.fget(self)  # type: ignore[attr-defined]
        data["retry_interval"] = self.retry_interval
        return data


class _LoopEvent(NodeEvent):
    """A loop's own start or end: ``iteration_id`` is the loop execution's key."""

    __slots__ = ()

    @property
    def data(self) -> dict[str, Any]:
        data = NodeEvent.data.fget(self)  # type: ignore[attr-defined]
        data["iteration_id"] = self.node.key
        return data


class IterationStarted(_LoopEvent):
    __slots__ = ()
    type = EventType.ITERATION_STARTED


class IterationCompleted(_LoopEvent):
    __slots__ = ()
    type = EventType.ITERATION_COMPLETED


@dataclass(slots=True, eq=False, repr=False)
class IterationNext(EngineEvent):
    """Item ``index`` of the loop execution ``node`` starts."""

    type = EventType.ITERATION_NEXT
    node: NodeInfo
    index: int

    @property
    def data(self) -> dict[str, Any]:
        data = self.node.data()
        data.update({"iteration_id": self.node.key, "iteration_index": self.index, "index": self.index})
        return data


@dataclass(slots=True, eq=False, repr=False)
class ParallelBranchStarted(EngineEvent):
    type = EventType.PARALLEL_BRANCH_STARTED
    parallel_id: str
    parallel_start_node_id: str
    created_at: str
    parent_parallel_id: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        return {"parallel_id": self.parallel_id, "parallel_start_node_id": self.parallel_start_node_id,
                "parent_parallel_id": self.parent_parallel_id, "created_at": self.created_at}


@dataclass(slots=True, eq=False, repr=False)
class ParallelBranchFinished(EngineEvent):
    type = EventType.PARALLEL_BRANCH_FINISHED
    parallel_id: str
    parallel_start_node_id: str
    status: str
    finished_at: str

    @property
    def data(self) -> dict[str, Any]:
        return {"parallel_id": self.parallel_id, "parallel_start_node_id": self.parallel_start_node_id,
                "status": self.status, "finished_at": self.finished_at}
