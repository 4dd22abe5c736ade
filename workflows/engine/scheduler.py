"""The scheduler: walks a compiled graph for one run (``run_graph``).

One scheduler thread owns all state and every host call. Nodes of ``inline`` types without a
timeout (start, end, condition, transform) run on that thread; others run on a bounded pool and
report back through a queue. One *step* = start what is ready, collect what finished, then one
``host.commit``; successors of a node start only in a later step, after its result is committed,
except inline successors of inline nodes, which join the step (see ``begin_inline_successors``).
Bodies of container nodes (``loop``) are frames of the same scheduler (their node keys are
``loop[i].node``), so a resumed run replays finished body nodes from the journal like any other
node; the container's type drives them through a ``_Body`` (``nodes.base.BodyHost``).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import queue
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from workflows.engine.contexts import node_context
from workflows.engine.events import (
    EngineEvent,
    NodeEvent,
    NodeInfo,
    NodeRetry,
    NodeStarted,
    ParallelBranchFinished,
    ParallelBranchStarted,
)
from workflows.engine.frames import Exec, Frame, Recorder, Scope, utc, value_error
from workflows.engine.graph import CompiledGraph, CompiledNode, outputs_errors
from workflows.engine.limits import CpuBudget, json_size_over, output_scan, unstorable_errors
from workflows.engine.nodes.base import (
    BodyResult,
    LimitExceeded,
    NodeError,
    NodeResult,
    NodeTimeout,
    Park,
    RunDeadlineExceeded,
    RunStopped,
)
from workflows.engine.nodes.registry import NODE_TYPES
from workflows.engine.ports import (
    TERMINAL_STATUSES,
    NodeStatus,
    OutcomeStatus,
    RunContext,
    RunOutcome,
)
from workflows.engine.templates import SCOPE_MISSING
from workflows.engine.values import RunValues, ValueError_, resolve_value

__all__ = ["run_graph", "receipt_token"]

STOP_GRACE = 0.5  # seconds in-flight nodes get to notice a stop before they are recorded stopped
TICK = 0.1
INLINE_BATCH = 256  # at most this many node records before a step is committed anyway
ENDED = frozenset({OutcomeStatus.STOPPED, OutcomeStatus.TIMEOUT, OutcomeStatus.FAILED})
INTERRUPTED = frozenset({OutcomeStatus.STOPPED, OutcomeStatus.TIMEOUT})


def receipt_token(secret: bytes, run_id: str, key: str) -> str:
    """HMAC-SHA256(secret, run_id + key), hex: one value per node execution, stable across retries."""
    return hmac.new(secret, (run_id + key).encode(), hashlib.sha256).hexdigest()


class _Body:
    """The scheduler's side of one container execution (``nodes.base.BodyHost``): what the
    container's type may do while it runs its bodies."""

    def __init__(self, sched: _Scheduler, ex: Exec) -> None:
        self.sched, self.ex = sched, ex
        self.node_id = ex.node.id
        self.config = ex.node.config
        self.limits = sched.limits
        self.state: Any = None
        self.frames: dict[int, Frame] = {}
        sched.containers.append(self)  # open until it succeeds or fails

    def resolve(self, value: Any, path: list[Any]) -> Any:
        try:
            return resolve_value(value, self.ex.scope, self.sched.values, self.ex.node.static_ids, path)
        except ValueError_ as exc:
            raise value_error(self.ex.node, exc) from None

    def resolve_in_body(self, result: BodyResult, value: Any, path: list[Any]) -> Any:
        frame = self.frames[result.index]
        try:
            return resolve_value(value, Scope(self.sched.run_scope, frame, None), self.sched.values, self.ex.node.static_ids, path)
        except ValueError_ as exc:
            raise value_error(self.ex.node, exc) from None

    def started(self, inputs: Any) -> None:
        self.ex.inputs = inputs
        self.sched.rec.record(self.ex, NodeStatus.RUNNING)

    def node_event(self, cls: type[NodeEvent], *, status: str, outputs: Any = None, error: Any = None) -> None:
        self.sched.rec.event(cls, self.ex, status=status, outputs=outputs, error=error)

    def emit(self, event: EngineEvent) -> None:
        self.sched.rec.events.append(event)

    def info(self) -> NodeInfo:
        return self.sched.rec.node_info(self.ex)

    def launch(self, index: int, names: Mapping[str, Any]) -> None:
        body = self.ex.node.body
        assert body is not None
        frame = self.frames[index] = Frame(body, f"{self.ex.key}[{index}].", self.ex.frame, self, index, names)
        for entry in body.entries:
            self.sched.ready.append((frame, entry))

    def ended(self, frame: Frame) -> None:
        result = BodyResult(frame.index or 0, frame.failed, {s: frame.outputs.get(s) for s in frame.topo.sinks})
        self.ex.node.node_type.body_done(self, result)
        self.frames.pop(result.index, None)

    def succeed(self, output: Any) -> None:
        self.sched.containers.remove(self)
        self.sched.handle(self.ex, NodeResult(output=output))

    def fail(self, error: NodeError) -> None:
        self.sched.containers.remove(self)
        self.sched.on_failure(self.ex, error)


class _Scheduler:
    def __init__(self, graph: CompiledGraph, ctx: RunContext) -> None:
        self.graph, self.ctx, self.clock = graph, ctx, ctx.clock
        self.values = RunValues(ctx.params, ctx.business_time, ctx.tz, self.clock, ctx.limits)
        self.limits = ctx.limits
        self.budget = CpuBudget(ctx.limits.run_cpu_seconds)
        started = ctx.started_at or utc(self.clock.now())
        self.run_scope = {
            "inputs": ctx.inputs,
            "params": self.values.cel_params,
            "run": {"id": ctx.run_id, "business_time": ctx.business_time.isoformat(),
                    "started_at": started.isoformat()},
        }
        self.journal = {r.key: r for r in ctx.host.load()}
        self.next_index = max((r.index for r in self.journal.values()), default=-1) + 1
        self.rec = Recorder(self.clock)
        self.ready: list[tuple[Frame, str]] = []
        self.done_q: queue.SimpleQueue[tuple[Exec, int, Future[Any], float]] = queue.SimpleQueue()
        self.inflight: dict[Exec, int] = {}
        self.timers: list[tuple[float, int, Exec]] = []
        self.timer_seq = 0
        self.pool: ThreadPoolExecutor | None = None
        self.halt: OutcomeStatus | None = None  # failed | stopped | timeout | waiting
        self.halt_mono = 0.0
        self.error: dict[str, Any] | None = None
        self.rollback = False
        self.completed: list[tuple[Exec, Any]] = []
        self.wakes: list[float | None] = []
        self.steps = 0
        self.top = Frame(graph, "", None)
        self.containers: list[_Body] = []  # container executions not ended yet

    # -- main loop -------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        for entry in self.graph.entries:
            self.ready.append((self.top, entry))
        try:
            while True:
                self.check_halt()
                progressed = False
                if self.halt is None:
                    batch, self.ready = self.ready, []
                    for frame, node_id in batch:
                        if frame.failed is None:
                            self.begin(frame, node_id)
                            progressed = True
                    self.begin_inline_successors()
                    if self.rec.records or self.rec.events:
                        progressed = True
                progressed = self.drain(block=not progressed) or progressed
                self.fire_timers()
                if self.halt in INTERRUPTED and self.inflight and \
                        self.clock.monotonic() - self.halt_mono > STOP_GRACE:
                    for ex in list(self.inflight):
                        self.finish_stopped(ex)
                done = not self.inflight and not self.timers and (self.halt is not None or not self.ready)
                if done and self.halt in ENDED:
                    self.stop_containers()
                if self.rec.records or self.rec.events:
                    self.commit(last=done and not (self.halt == OutcomeStatus.FAILED and self.rollback))
                if done:
                    break
            if self.halt == OutcomeStatus.FAILED and self.rollback:
                self.run_rollback()
                if self.rec.records or self.rec.events:
                    self.commit()
            return self.outcome()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=False, cancel_futures=True)

    def begin_inline_successors(self) -> None:
        """Run ready inline nodes (start, end, condition, transform: pure, fast, no side effects) in
        the step that made them ready, so a chain of them costs one commit instead of one each.
        Nodes with effects (http, delay, loop, workflow, ...) still start only after the results they
        depend on are committed; a crash before this step's commit re-runs only pure nodes, which
        compute the same result again."""
        while (self.ready and self.halt is None and len(self.rec.records) < INLINE_BATCH
               and all(frame.topo.nodes[node_id].inline for frame, node_id in self.ready)):
            batch, self.ready = self.ready, []
            for frame, node_id in batch:
                if frame.failed is None:
                    self.begin(frame, node_id)

    def stop_containers(self) -> None:
        """A run that ended (stopped, timed out, or failed elsewhere) while a container was still
        running its bodies: the container is recorded ``stopped`` (with the run's error when the run
        was stopped or timed out), not left ``running`` in a finished run."""
        error = self.error if self.halt in INTERRUPTED else {
            "code": "stopped", "message": "the run failed before this node finished"}
        for body in reversed(self.containers):  # innermost first
            self.rec.record(body.ex, NodeStatus.STOPPED, error=error)
        self.containers.clear()

    def commit(self, last: bool = False) -> None:
        """Hand the step to the host. ``last`` (no step follows and every node in it is inline, so
        re-running it after a crash has no effect) lets the host write it with the run's end."""
        records, events = self.rec.records, self.rec.events
        self.rec.records, self.rec.events = [], []
        self.steps += 1
        last = last and all(getattr(NODE_TYPES.get(r.node_type), "inline", False) for r in records)
        self.ctx.host.commit(records, events, last=last)

    def check_halt(self) -> None:
        if self.halt in ENDED:
            return
        if self.ctx.stop.is_set():
            self.set_halt(OutcomeStatus.STOPPED, {"code": "stopped", "message": "the run was stopped"})
        elif self.ctx.deadline is not None and self.clock.now() >= self.ctx.deadline:
            self.set_halt(OutcomeStatus.TIMEOUT, {"code": "timeout", "message": "the run passed its deadline"})

    def set_halt(self, status: OutcomeStatus, error: dict[str, Any] | None) -> None:
        if self.halt in ENDED:
            return
        self.halt, self.error, self.halt_mono = status, error, self.clock.monotonic()
        if status in INTERRUPTED:
            for _, _, ex in self.timers:
                self.rec.record(ex, NodeStatus.STOPPED, error=error)
            self.timers.clear()

    def drain(self, block: bool) -> bool:
        got = False
        if block and self.inflight:
            timeout = TICK
            now = self.clock.monotonic()
            if self.timers:
                timeout = min(timeout, max(0.0, self.timers[0][0] - now))
            try:
                item = self.done_q.get(timeout=timeout)
                self.collect(*item)
                got = True
            except queue.Empty:
                pass
        elif block and self.timers:
            delay = min(TICK, max(0.0, self.timers[0][0] - self.clock.monotonic()))
            self.ctx.stop.wait(delay)
        while True:
            try:
                item = self.done_q.get_nowait()
            except queue.Empty:
                break
            self.collect(*item)
            got = True
        now = self.clock.monotonic()
        for ex in [e for e in self.inflight if e.attempt_deadline is not None and now >= e.attempt_deadline]:
            self.inflight.pop(ex)
            ex.seq += 1  # the late result of the abandoned attempt is ignored
            ex.frame.running -= 1
            self.on_failure(ex, NodeTimeout(f"attempt {ex.attempt} timed out after {ex.node.timeout:g} s"))
            got = True
        return got

    def collect(self, ex: Exec, seq: int, fut: Future[Any], finished: float) -> None:
        if self.inflight.get(ex) != seq or ex.seq != seq:
            return
        del self.inflight[ex]
        ex.frame.running -= 1
        if ex.attempt_deadline is not None and finished > ex.attempt_deadline:
            # It finished past its timeout (e.g. native code that held the GIL, so the scheduler
            # could not see the deadline pass): the result comes too late and is not used.
            self.on_failure(ex, NodeTimeout(f"attempt {ex.attempt} timed out after {ex.node.timeout:g} s"))
            return
        exc = fut.exception()
        self.handle(ex, fut.result() if exc is None else exc)

    def fire_timers(self) -> None:
        now = self.clock.monotonic()
        while self.timers and self.timers[0][0] <= now and self.halt is None:
            _, _, ex = heapq.heappop(self.timers)
            ex.frame.running -= 1
            ex.attempt += 1
            self.attempt(ex)

    # -- starting nodes ---------------------------------------------------------------------------
    def begin(self, frame: Frame, node_id: str) -> None:
        node = frame.topo.nodes[node_id]
        key = frame.prefix + node_id
        preds = list(dict.fromkeys(frame.live_preds[node_id]))
        journaled = self.journal.get(key)
        if journaled is not None and journaled.status in TERMINAL_STATUSES:
            if journaled.status == NodeStatus.SKIPPED and node.run != "skip":
                self.complete(frame, node_id, None, None, skipped=True)
                return
            if journaled.status == NodeStatus.SUCCEEDED and node.compensate is not None:
                ex = Exec(frame, node, key)
                ex.index = journaled.index
                self.completed.append((ex, journaled.output))
            if journaled.port == "error":
                frame.errors[node_id] = (journaled.output or {}).get("error")
            if journaled.status == NodeStatus.FAILED and journaled.port is None and node.on_error not in ("continue",):
                self.fail(frame, journaled.error or {"code": "node_error", "message": "failed"}, node)
                return
            self.complete(frame, node_id, journaled.port, journaled.output)
            return
        ex = Exec(frame, node, key)
        ex.pred = preds[0] if preds else None
        if len(frame.topo.preds[node_id]) > 1:
            ex.upstream = {p: frame.outputs.get(p) for p in preds}
        else:
            ex.upstream = frame.outputs.get(preds[0]) if preds else None
        # Inline nodes (pure, never called back) need no receipt token: one HMAC less per node.
        ex.token = "" if node.inline else receipt_token(self.ctx.token_secret, self.ctx.run_id, key)
        self.started(ex)
        if journaled is not None:
            ex.index, ex.attempt = journaled.index, journaled.attempt
            if journaled.status == NodeStatus.WAITING:
                ex.resumed = True
                state = journaled.state or {}
                if "_retry_attempt" in state:
                    ex.attempt = state["_retry_attempt"]
                else:
                    ex.state = state
        else:
            ex.index = self.next_index
            self.next_index += 1
        ex.scope = Scope(self.run_scope, frame, node_id, self.error_for(frame, node_id))
        if node.run == "skip":
            self.rec.record(ex, NodeStatus.SKIPPED)
            self.complete(frame, node_id, None, None)
            return
        if not ex.resumed:
            self.rec.event(NodeStarted, ex, status=NodeStatus.RUNNING)
        if node.node_type.container:
            node.node_type.body_start(_Body(self, ex))
            return
        self.attempt(ex)

    def started(self, ex: Exec) -> None:
        ex.started_at, ex.started_mono = utc(self.clock.now()), self.clock.monotonic()
        ex.started_iso = ex.started_at.isoformat()

    def error_for(self, frame: Frame, node_id: str) -> Any:
        for src in frame.topo.error_sources.get(node_id, ()):
            if src in frame.errors:
                return frame.errors[src]
        return SCOPE_MISSING

    def attempt(self, ex: Exec) -> None:
        node = ex.node
        timed = node.timeout and not node.node_type.self_timed
        began = self.clock.monotonic() if timed else 0.0
        try:
            ex.inputs = resolve_value(node.config, ex.scope, self.values, node.static_ids)
        except ValueError_ as exc:
            self.on_failure(ex, value_error(node, exc))
            return
        if timed and self.clock.monotonic() - began > node.timeout:
            # resolving the config is part of the attempt (it cannot be interrupted: it is refused after)
            self.on_failure(ex, NodeTimeout(f"attempt {ex.attempt} timed out after {node.timeout:g} s"))
            return
        ctx = node_context(ex, self.ctx, self.values, self.run_scope, lambda: self.halt)
        if node.inline:
            try:
                result: Any = node.node_type.run(ctx)
            except Exception as exc:  # every failure becomes a node outcome
                result = exc
            self.handle(ex, result)
            return
        if ex.attempt == 1 or ex.resumed:
            self.rec.record(ex, NodeStatus.RUNNING)
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=self.ctx.max_workers, thread_name_prefix="weft-node")
        ex.seq += 1
        seq = ex.seq
        self.inflight[ex] = seq
        ex.frame.running += 1
        ex.attempt_deadline = began + node.timeout if timed else None
        fut = self.pool.submit(self.budget.timed, node.node_type.run, ctx)
        fut.add_done_callback(lambda f, ex=ex, seq=seq: self.done_q.put((ex, seq, f, self.clock.monotonic())))

    # -- outcomes ---------------------------------------------------------------------------------
    def handle(self, ex: Exec, result: Any) -> None:
        if ex.secrets:
            self.rec.secrets.update(s for s in ex.secrets if s)
        if isinstance(result, NodeResult):
            size, suspect = output_scan(result.output,
                                        self.limits.output_bytes if ex.node.node_type.output_budget else 0)
            over = self.over_budget(ex, size) or (self.unstorable(ex, result) if suspect else None)
            if over is not None:
                self.on_failure(ex, over)
                return
            self.rec.events.extend(ex.events)
            ex.events = []
            output = self.rec.redact(result.output)
            self.rec.record(ex, NodeStatus.SUCCEEDED, port=result.port, output=output, process_data=result.process_data)
            if ex.node.compensate is not None:
                self.completed.append((ex, result.output))
            self.complete(ex.frame, ex.node.id, result.port, result.output)
        elif isinstance(result, Park):
            if not self.ctx.can_park:
                self.on_failure(ex, NodeError("this run cannot wait durably", code="cannot_park"))
                return
            wake_at = self.wake_bound(result.wake_at)
            self.rec.record(ex, NodeStatus.WAITING, state=result.state, wake_at=wake_at)
            self.wakes.append(wake_at)
            if self.halt is None:
                self.halt = OutcomeStatus.WAITING
        elif isinstance(result, RunStopped):
            self.rec.record(ex, NodeStatus.STOPPED, error={"code": "stopped", "message": "the run was stopped"})
            self.set_halt(OutcomeStatus.STOPPED, {"code": "stopped", "message": "the run was stopped"})
        elif isinstance(result, RunDeadlineExceeded):
            err = {"code": "timeout", "message": "the run passed its deadline"}
            self.rec.record(ex, NodeStatus.STOPPED, error=err)
            self.set_halt(OutcomeStatus.TIMEOUT, err)
        elif isinstance(result, NodeError):
            self.on_failure(ex, result)
        else:
            self.on_failure(ex, NodeError(f"{type(result).__name__}: {result}", code="internal_error"))

    def over_budget(self, ex: Exec, size: int | None) -> LimitExceeded | None:
        """A result that would cross a budget: an output of ``size`` bytes, larger than ``output_bytes``
        (the node fails and nothing of it is stored: not in the record, not in events), or the run's
        CPU time."""
        if size is not None:
            if json_size_over(ex.inputs, self.limits.output_bytes) is not None:
                ex.inputs = {"omitted": "larger than WEFT_NODE_MAX_OUTPUT_BYTES"}
            return LimitExceeded(f"nodes.{ex.node.id}: the output is {size} bytes; the limit is "
                                 f"{self.limits.output_bytes} (WEFT_NODE_MAX_OUTPUT_BYTES)",
                                 detail={"bytes": size, "limit": self.limits.output_bytes})
        if self.budget.exceeded():
            return LimitExceeded(f"nodes.{ex.node.id}: {self.budget.message()}")
        return None

    def unstorable(self, ex: Exec, result: NodeResult) -> NodeError | None:
        """An output holding what no database stores (a NUL, a lone surrogate: a service's response,
        a database row) fails the node, permanently and naming the places, on every database alike."""
        errors = unstorable_errors(result.output, prefix=("output",))
        if not errors:
            return None
        return NodeError(f"nodes.{ex.node.id}: the output cannot be stored: "
                         + "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5]),
                         code="invalid_output", detail={"errors": errors})

    def finish_stopped(self, ex: Exec) -> None:
        self.inflight.pop(ex, None)
        ex.seq += 1
        ex.frame.running -= 1
        self.rec.record(ex, NodeStatus.STOPPED, error=self.error)

    def retry_delay(self, ex: Exec, err: NodeError) -> float | None:
        policy = ex.node.retry
        if policy is None or not err.retryable or not policy.allows(ex.attempt):
            return None
        interval = policy.delay(ex.attempt)
        if err.retry_after is not None and err.retry_after > interval:
            interval = float(err.retry_after)
        return interval

    def wake_bound(self, wake_at: float | None) -> float | None:
        """A parked node wakes at the run's deadline at the latest: waking later is pointless (the
        run times out then), and a wait of years or an infinite one (a delay's huge ``seconds``, a
        retry ``interval`` of 1e308) must not reach the host as a time it cannot represent."""
        if wake_at is None or self.ctx.deadline is None:
            return wake_at
        return min(wake_at, self.ctx.deadline)

    def on_failure(self, ex: Exec, err: NodeError) -> None:
        self.rec.events.extend(ex.events)
        ex.events = []
        error = self.rec.redact(err.as_dict())
        delay = self.retry_delay(ex, err)
        if delay is not None and self.halt in (None, OutcomeStatus.WAITING):
            self.rec.events.append(NodeRetry(self.rec.node_info(ex), "retry", inputs=self.rec.redact(ex.inputs), error=error,
                                         created_at=ex.started_iso, attempt=ex.attempt, retry_index=ex.attempt,
                                         retry_interval=delay))
            if self.ctx.can_park and (delay > self.ctx.park_threshold or self.halt == OutcomeStatus.WAITING):
                wake = self.wake_bound(self.clock.now() + delay)
                self.rec.record(ex, NodeStatus.WAITING, error=error, state={"_retry_attempt": ex.attempt + 1}, wake_at=wake)
                self.wakes.append(wake)
                self.halt = self.halt or OutcomeStatus.WAITING
                return
            self.timer_seq += 1
            heapq.heappush(self.timers, (self.clock.monotonic() + delay, self.timer_seq, ex))
            ex.frame.running += 1
            return
        mode = ex.node.on_error
        if mode in ("continue", "branch"):
            port = "error" if mode == "branch" else None
            output = {"error": error}
            self.rec.record(ex, NodeStatus.FAILED, port=port, output=output, error=error)
            if mode == "branch":
                ex.frame.errors[ex.node.id] = error
            self.complete(ex.frame, ex.node.id, port, output)
            return
        self.rec.record(ex, NodeStatus.FAILED, error=error)
        if mode == "rollback" and ex.frame is self.top:
            self.rollback = True
        self.fail(ex.frame, error, ex.node)

    def fail(self, frame: Frame, error: dict[str, Any], node: CompiledNode) -> None:
        if frame is self.top:
            if node.on_error == "rollback":
                self.rollback = True
            self.set_halt(OutcomeStatus.FAILED, {**error, "node_id": node.id})
            return
        if frame.failed is None:
            frame.failed = {**error, "node_id": node.id}
        self.maybe_frame_done(frame)

    def complete(self, frame: Frame, node_id: str, port: str | None, output: Any, skipped: bool = False) -> None:
        if not skipped:
            frame.outputs[node_id] = output
        frame.remaining -= 1
        topo = frame.topo
        for eport, targets in topo.succ[node_id].items():
            live = not skipped and eport == port
            if live and len(targets) > 1 and (node_id, eport) in topo.branches:
                parallel_id = frame.prefix + node_id
                for target, members in topo.branches[(node_id, eport)]:
                    branch = [parallel_id, target, set(members)]
                    frame.branches.append(branch)
                    for member in members:
                        frame.branch_of.setdefault(member, []).append(branch)
                    self.rec.events.append(ParallelBranchStarted(parallel_id, target, utc(self.clock.now()).isoformat()))
            for target in targets:
                frame.pending_in[target] -= 1
                if live:
                    frame.live_preds[target].append(node_id)
                if frame.pending_in[target] == 0:
                    if frame.live_preds[target]:
                        self.ready.append((frame, target))
                    else:
                        self.skip(frame, target)
        if frame.branches:
            for branch in frame.branch_of.pop(node_id, ()):
                branch[2].discard(node_id)
                if not branch[2]:
                    frame.branches.remove(branch)
                    self.rec.events.append(ParallelBranchFinished(branch[0], branch[1], NodeStatus.SUCCEEDED,
                                                              utc(self.clock.now()).isoformat()))
        self.maybe_frame_done(frame)

    def skip(self, frame: Frame, node_id: str) -> None:
        key = frame.prefix + node_id
        if key not in self.journal:
            node = frame.topo.nodes[node_id]
            ex = Exec(frame, node, key)
            ex.index, ex.pred = self.next_index, None
            self.next_index += 1
            ex.token = receipt_token(self.ctx.token_secret, self.ctx.run_id, key)
            self.started(ex)
            self.rec.record(ex, NodeStatus.SKIPPED)
        self.complete(frame, node_id, None, None, skipped=True)

    def maybe_frame_done(self, frame: Frame) -> None:
        if frame.closed or frame.body is None:
            return
        if frame.remaining == 0 or (frame.failed is not None and frame.running == 0 and
                                    not any(f is frame for f, _ in self.inflight_frames())):
            frame.closed = True
            frame.body.ended(frame)

    def inflight_frames(self) -> list[tuple[Frame, Exec]]:
        return [(ex.frame, ex) for ex in self.inflight]

    # -- rollback ---------------------------------------------------------------------------------
    def run_rollback(self) -> None:
        done = []
        for ex, output in sorted(self.completed, key=lambda c: c[0].index, reverse=True):
            key = ex.key + "#compensate"
            comp = Exec(ex.frame, ex.node, key)
            comp.index, comp.pred, comp.attempt = self.next_index, ex.node.id, 1
            self.next_index += 1
            comp.token = receipt_token(self.ctx.token_secret, self.ctx.run_id, key)
            self.started(comp)
            comp.scope = Scope(self.run_scope, ex.frame, ex.node.id, SCOPE_MISSING, {ex.node.id: output})
            try:
                comp.inputs = resolve_value(ex.node.compensate, comp.scope, self.values)
                nctx = node_context(comp, self.ctx, self.values, self.run_scope, lambda: self.halt,
                                    config=ex.node.compensate)
                ex.node.node_type.compensate(nctx, output)
                self.rec.record(comp, NodeStatus.SUCCEEDED, process_data={"compensation_of": ex.key})
                done.append(ex.node.id)
            except Exception as exc:  # a failed compensation is recorded; the others still run
                err = exc.as_dict() if isinstance(exc, NodeError) else {"code": "internal_error", "message": str(exc)}
                self.rec.record(comp, NodeStatus.FAILED, error=self.rec.redact(err), process_data={"compensation_of": ex.key})
        if self.error is not None:
            self.error = {**self.error, "compensated": done}

    def outcome(self) -> RunOutcome:
        outputs: dict[str, Any] = {}
        for end_id in self.graph.end_ids:
            value = self.top.outputs.get(end_id)
            if isinstance(value, dict):
                outputs.update(value)
        outputs = self.rec.redact(outputs)
        status = self.halt or OutcomeStatus.SUCCEEDED
        if status == OutcomeStatus.WAITING:
            wakes = [w for w in self.wakes if w is not None]
            return RunOutcome(OutcomeStatus.WAITING, {}, None, min(wakes) if wakes else None, self.steps)
        problems: list[dict[str, str]] = []
        if status == OutcomeStatus.SUCCEEDED and self.graph.outputs:
            problems = outputs_errors(self.graph.outputs, outputs)
        error = self.error if status != OutcomeStatus.SUCCEEDED else None
        return RunOutcome(status, outputs, error, None, self.steps, problems)


def run_graph(compiled: CompiledGraph, ctx: RunContext) -> RunOutcome:
    """Runs (or resumes, from ``ctx.host.load()``) one run of ``compiled``."""
    return _Scheduler(compiled, ctx).run()
