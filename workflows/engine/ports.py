"""The interfaces between the engine and its host (the Django executor, or a test).

``RunContext`` is what a host hands to ``run_graph``; ``Host`` is how the engine reads the journal
of an interrupted run and commits node records and events (once per scheduler step, always from
the thread that called ``run_graph``); ``RunOutcome`` is what ``run_graph`` returns.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

NODE_STATUSES = ("running", "succeeded", "failed", "skipped", "stopped", "waiting")
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "skipped"})
EVENT_TYPES = ("node_started", "node_finished", "node_retry", "iteration_started", "iteration_next",
               "iteration_completed", "parallel_branch_started", "parallel_branch_finished")


@dataclass(slots=True)
class NodeRecord:
    """One node execution (a ``NodeRun`` row). ``key`` is unique per execution within a run:
    the node id, or ``loop[3].node`` for body nodes (nested: ``outer[0].inner[2].node``).
    A host upserts by key; the engine sends a fresh record object on every change."""

    key: str
    node_id: str
    node_type: str
    title: str
    status: str
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


@dataclass(slots=True)
class EngineEvent:
    """``type`` is one of EVENT_TYPES; ``data`` is JSON-able (see docs/engine.md)."""

    type: str
    data: dict[str, Any]


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
    """Real time; tests may pass a subclass. ``now`` is epoch seconds."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


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
    services: Any = None
    can_park: bool = False
    park_threshold: float = 5.0
    max_workers: int = 8
    token_secret: bytes = b""
    clock: Clock = field(default_factory=Clock)
    started_at: datetime | None = None


@dataclass
class RunOutcome:
    status: str  # succeeded | failed | stopped | timeout | waiting
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    wake_at: float | None = None
    total_steps: int = 0
    output_problems: list[dict[str, str]] = field(default_factory=list)
