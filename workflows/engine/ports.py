"""The interfaces between the engine and its host (the Django executor, or a test).

``RunContext`` is what a host hands to ``run_graph``; ``Host`` is how the engine reads the journal
of an interrupted run and commits node records and events (once per scheduler step, always from
the thread that called ``run_graph``); ``RunOutcome`` is what ``run_graph`` returns. ``Services``
is everything node types ask of the platform (``NullServices``: a host without a platform, for
engine tests and benchmarks). ``Clock`` is the one source of time of a run: the scheduler, the
nodes (``NodeContext.clock``) and CEL's ``now()`` all read it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from workflows.engine.brokers import BrokerPolicy
from workflows.engine.databases import DatabasePolicy
from workflows.engine.errors import NodeError
from workflows.engine.events import EngineEvent, EventType
from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.outbound import OutboundPolicy

__all__ = ["NodeStatus", "OutcomeStatus", "NODE_STATUSES", "TERMINAL_STATUSES", "EVENT_TYPES", "NodeRecord",
           "Host", "Clock", "Services", "NullServices", "RunContext", "RunOutcome", "EngineEvent"]


class NodeStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"
    WAITING = "waiting"


class OutcomeStatus(StrEnum):
    """How ``run_graph`` ended (the run's status, except ``waiting``: parked, resumed later)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMEOUT = "timeout"
    WAITING = "waiting"


NODE_STATUSES = tuple(NodeStatus)
TERMINAL_STATUSES = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED})
EVENT_TYPES = tuple(EventType)


@dataclass(slots=True)
class NodeRecord:
    """One node execution (a ``NodeRun`` row). ``key`` is unique per execution within a run:
    the node id, or ``loop[3].node`` for body nodes (nested: ``outer[0].inner[2].node``).
    A host upserts by key; the engine sends a fresh record object on every change."""

    key: str
    node_id: str
    node_type: str
    title: str
    status: str  # a NodeStatus
    index: int
    attempt: int = 1
    port: str | None = None
    inputs: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    process_data: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    elapsed: float = 0.0
    predecessor_node_id: str | None = None
    loop_key: str | None = None  # key of the enclosing loop node execution
    iteration_index: int | None = None
    receipt_token: str = ""
    state: dict[str, Any] | None = None
    wake_at: float | None = None


class Host(Protocol):
    def load(self) -> list[NodeRecord]:
        """Records of an interrupted run (empty for a new run)."""
        ...

    def commit(self, records: list[NodeRecord], events: list[EngineEvent], *, last: bool = False) -> None:
        """Persist one step. May raise (lease lost): the engine stops and re-raises.

        ``last``: no step follows and the step holds only inline (pure) nodes, so the host may keep
        it and write it together with the run's end; a crash in between re-runs only pure nodes."""
        ...


class Clock:
    """Real time; tests may pass a subclass. ``now`` is epoch seconds, ``monotonic`` for intervals."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Services(Protocol):
    """What the platform provides to node types for one run (``NodeContext.services``).

    ``credential(name)``: the team credential as ``{"kind": "api_key", "key"}``, ``{"kind": "bearer",
    "token"}`` or ``{"kind": "basic", "username", "password"}``; raises ``KeyError`` when there is
    none. ``webhook_url``: the absolute URL of ``POST /api/v1/callbacks/{run}/{node}/{token}``.
    ``callback_result``: non-blocking read of the first callback stored for that receipt token
    (``{"content_type", "body"}``) or None. ``run_child_workflow``: runs a workflow of the same team
    as a child run and returns its outputs (a child failure is a ``NodeError``). ``http_policy``:
    allowed networks, response size cap, redirect limit of outbound requests. ``db_policy`` and
    ``broker_policy``: the address policy and budgets of ``db`` and ``queue`` nodes (credentials of
    kind ``database``/``broker`` are ``{"kind", "url"}``). ``team_key``: the team's id, which keys
    connection pools and SQLite directories. ``file_content``: the bytes of a ``file`` input's
    file object (an upload of the run's team, or a remote URL fetched under ``http_policy``) as
    ``(name, content, mime_type)``; a ``NodeError`` when it cannot be read.
    """

    http_policy: OutboundPolicy
    db_policy: DatabasePolicy
    broker_policy: BrokerPolicy
    team_key: str

    def credential(self, name: str) -> Mapping[str, str]: ...

    def webhook_url(self, *, run_id: str, node_id: str, receipt_token: str) -> str: ...

    def callback_result(self, *, run_id: str, node_id: str, receipt_token: str) -> Mapping[str, Any] | None: ...

    def run_child_workflow(self, *, workflow_id: str, inputs: dict[str, Any], parent_run_id: str | None = None,
                           node_key: str | None = None) -> Any: ...

    def file_content(self, file: Mapping[str, Any]) -> tuple[str, bytes, str]: ...


class NullServices:
    """A host without a platform: no credentials, no callbacks, no child workflows; public
    addresses only for HTTP. Engine tests subclass it to provide what they need."""

    def __init__(self, *, http_policy: OutboundPolicy | None = None, db_policy: DatabasePolicy | None = None,
                 broker_policy: BrokerPolicy | None = None, team_key: str = "default") -> None:
        self.http_policy = http_policy or OutboundPolicy()
        self.db_policy = db_policy or DatabasePolicy()
        self.broker_policy = broker_policy or BrokerPolicy()
        self.team_key = team_key

    def credential(self, name: str) -> Mapping[str, str]:
        raise KeyError(name)

    def webhook_url(self, *, run_id: str, node_id: str, receipt_token: str) -> str:
        raise NodeError("webhook mode is not available here", code="invalid_config")

    def callback_result(self, *, run_id: str, node_id: str, receipt_token: str) -> Mapping[str, Any] | None:
        raise NodeError("webhook mode is not available here", code="invalid_config")

    def run_child_workflow(self, *, workflow_id: str, inputs: dict[str, Any], parent_run_id: str | None = None,
                           node_key: str | None = None) -> Any:
        raise NodeError("sub-workflows are not available here", code="unsupported")

    def file_content(self, file: Mapping[str, Any]) -> tuple[str, bytes, str]:
        raise NodeError("files are not available here", code="unsupported")


@dataclass
class RunContext:
    run_id: str
    inputs: dict[str, Any]
    business_time: datetime  # aware
    host: Host
    tz: str = "UTC"
    params: dict[str, Any] = field(default_factory=dict)  # global params, workflow params merged over
    deadline: float | None = None  # epoch seconds (Clock.now)
    stop: threading.Event = field(default_factory=threading.Event)
    services: Services = field(default_factory=NullServices)
    can_park: bool = False  # async runs: long waits park the run instead of holding a worker
    park_threshold: float = 5.0
    max_workers: int = 8
    token_secret: bytes = b""
    clock: Clock = field(default_factory=Clock)
    started_at: datetime | None = None
    limits: Limits = DEFAULT_LIMITS  # budgets checked while running (loop items, output size, CPU, regexes)


@dataclass
class RunOutcome:
    status: str  # an OutcomeStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    wake_at: float | None = None
    total_steps: int = 0
    output_problems: list[dict[str, str]] = field(default_factory=list)
