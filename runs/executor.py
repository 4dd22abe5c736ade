"""The executor: drives the engine for one run, durably.

- Claim: a conditional UPDATE moves the run to ``running`` with this worker, ``claim_count + 1``
  and a lease; two processes can never both win it.
- A heartbeat thread renews the lease and watches for a stop request (stop ends the run within a
  second); every write the run makes checks the lease (worker and claim number) in the same
  transaction, so a worker that lost its lease can never overwrite the new owner's work.
- The engine commits each scheduler step through ``RunHost.commit``: node runs upserted, events
  appended, in one transaction (a handful of queries per step, not per field); live delivery
  happens after commit.
- Resume: the engine loads the finished node runs and continues from the frontier.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from accounts.selectors import parameters_get
from config.hotsql import RowInserter, RowReader, update_where
from runs.callbacks import run_wake_if_waiting
from runs.lifecycle import run_finish, run_finish_expected
from runs.live import events_publish
from runs.models import FINAL_STATUSES, NodeCallback, NodeRun, Run, RunEvent, RunStatus
from runs.runtime import RunServices
from runs.services import event_payload, run_events_append, run_finished_data
from runs.taskqueue import run_enqueue
from runs.versions import compiled_version
from workflows.budgets import engine_limits
from workflows.engine.ports import EngineEvent, NodeRecord, NodeStatus, OutcomeStatus, RunContext, RunOutcome
from workflows.engine.scheduler import run_graph

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _worker_id_after_fork() -> None:
    # django-q2 forks its workers from the qcluster process, which imported this module (system
    # checks load the URLconf): without this, every worker of a cluster had the parent's id.
    global WORKER_ID
    WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


os.register_at_fork(after_in_child=_worker_id_after_fork)

_local_stops: dict[str, threading.Event] = {}
_local_lock = threading.Lock()
_stop_forwarders: list[Callable[[Any], None]] = []


class LeaseLost(Exception):
    """Another worker owns the run now; this executor must stop writing."""


def stop_signal_local(run_id: Any) -> None:
    """Set the stop event of a run executing in this process, or in an executor process of this
    process's pool (immediate stop, no DB round trip; the executor polls the flag as well)."""
    with _local_lock:
        event = _local_stops.get(str(run_id))
    if event is not None:
        event.set()
    for forward in list(_stop_forwarders):
        forward(run_id)


def stop_forwarder_add(forward: Callable[[Any], None]) -> None:
    """``runs.pool`` forwards stops to its executor processes."""
    if forward not in _stop_forwarders:
        _stop_forwarders.append(forward)


def _dt(value: float | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, tz=UTC)


NODE_FIELDS = [
    "node_id", "node_type", "title", "index", "predecessor_node_id", "iteration_id", "iteration_index", "status",
    "attempt", "port", "inputs", "outputs", "process_data", "error", "receipt_token", "state", "wake_at",
    "started_at", "finished_at", "elapsed",
]
# The step's writes, their SQL compiled once (config.hotsql): node runs upserted by (run, key).
NODE_RUN_UPSERT = RowInserter(NodeRun, unique_fields=["run", "key"], update_fields=NODE_FIELDS)
EVENT_INSERT = RowInserter(RunEvent)


def noderun_values(run: Run, record: NodeRecord) -> dict[str, Any]:
    """The node run row of ``record``, by field (``NODE_RUN_UPSERT.prepare_values``; others: defaults)."""
    return {
        "team_id": run.team_id, "run_id": run.pk, "key": record.key, "node_id": record.node_id,
        "node_type": record.node_type, "title": record.title or "", "index": record.index or 0,
        "predecessor_node_id": record.predecessor_node_id or "", "iteration_id": record.loop_key or "",
        "iteration_index": record.iteration_index, "status": record.status, "attempt": record.attempt or 1,
        "port": record.port or "", "inputs": record.inputs, "outputs": record.output,
        "process_data": record.process_data, "error": record.error, "receipt_token": record.receipt_token or "",
        "state": record.state, "wake_at": _dt(record.wake_at), "started_at": _dt(record.started_at),
        "finished_at": _dt(record.finished_at), "elapsed": record.elapsed or 0.0,
    }


def record_from_noderun(row: NodeRun) -> NodeRecord:
    return NodeRecord(
        key=row.key, node_id=row.node_id, node_type=row.node_type, title=row.title, index=row.index,
        predecessor_node_id=row.predecessor_node_id or None, loop_key=row.iteration_id or None,
        iteration_index=row.iteration_index, status=row.status, attempt=row.attempt, port=row.port or None,
        inputs=row.inputs, output=row.outputs, process_data=row.process_data, error=row.error,
        receipt_token=row.receipt_token, state=row.state,
        wake_at=row.wake_at.timestamp() if row.wake_at else None, started_at=row.started_at,
        finished_at=row.finished_at, elapsed=row.elapsed,
    )


FINISHED_NODE_STATUSES = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.STOPPED})


def finished_count(records: Any) -> int:
    return sum(1 for r in records if r.status in FINISHED_NODE_STATUSES)


class RunHost:
    """The engine's host for one claimed run: loads and commits node records under the lease."""

    def __init__(self, run: Run, claim: int) -> None:
        self.run = run
        self.claim = claim
        # The lease's owner: the process that claimed the run (this one, or the web process or
        # django-q2 worker that handed the claimed run to this executor process: ``runs.pool``).
        self.worker = run.worker or WORKER_ID
        self.seq = run.event_seq
        self.steps = run.total_steps
        # Events waiting for the next write (run_started rides with the first step: one transaction less).
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.pending_status: str | None = None
        # The engine's last step (pure nodes only), written with the run's end: one transaction less.
        self.pending_records: list[NodeRecord] = []
        # The run's last events (``run_finished``) reach readers once its end-of-run work is done.
        self.final_publish: Callable[[], None] | None = None

    def _lease_where(self) -> dict[str, Any]:
        return {"pk": self.run.pk, "worker": self.worker, "claim_count": self.claim, "status": RunStatus.RUNNING}

    def load(self) -> list[NodeRecord]:
        if self.claim == 1 and self.seq == 0:
            return []  # never written to (every write appends an event): nothing to resume
        return [record_from_noderun(r) for r in NodeRun.objects.filter(run_id=self.run.pk).order_by("index")]

    def commit(self, records: list[NodeRecord], events: list[EngineEvent], *, last: bool = False) -> None:
        if last:
            self.pending_records.extend(records)
            self.pending.extend((e.type, e.data) for e in events)
            return
        self.write(records=records, events=[(e.type, e.data) for e in events])

    def write(self, *, records: list[NodeRecord] = (), events: list[tuple[str, dict[str, Any]]] = (),
              run_fields: dict[str, Any] | None = None, status_change: str | None = None) -> None:
        """One transaction: lease check (+ run fields), node runs upserted, events appended."""
        if self.pending or self.pending_records:
            events = [*self.pending, *events]
            records = [*self.pending_records, *records]
            status_change = status_change or self.pending_status
            self.pending, self.pending_status, self.pending_records = [], None, []
        now = timezone.now()
        finished = finished_count(records)
        fields = {"event_seq": self.seq + len(events), "total_steps": self.steps + finished,
                  "heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=settings.WEFT_LEASE_SECONDS)}
        fields.update(run_fields or {})
        # One row per node execution: a node started and finished within the step is upserted once
        # (PostgreSQL refuses to update the same row twice in one INSERT ... ON CONFLICT).
        rows = [noderun_values(self.run, r) for r in {r.key: r for r in records}.values()]
        event_rows = [{"team_id": self.run.team_id, "run_id": self.run.pk, "seq": self.seq + i + 1, "type": t,
                       "data": d, "created_at": now} for i, (t, d) in enumerate(events)]
        lease, nodes, appended = (update_where(Run, self._lease_where(), fields), NODE_RUN_UPSERT.prepare_values(rows),
                                  EVENT_INSERT.prepare_values(event_rows))
        with transaction.atomic():
            if not lease.execute():
                raise LeaseLost(str(self.run.pk))
            nodes.execute()
            appended.execute()
        self.seq += len(events)
        self.steps = fields["total_steps"]
        if event_rows:  # the payloads are built only if someone reads them (runs.live)
            def publish() -> None:
                events_publish(run_id=self.run.pk, team_id=self.run.team_id,
                               events=lambda: [event_payload(e["seq"], e["type"], e["data"], now) for e in event_rows],
                               status=status_change)

            if status_change in FINAL_STATUSES:
                self.final_publish = publish  # after the end-of-run work (run_execute)
            else:
                publish()


class Heartbeats:
    """One thread per process renews the leases of every run this process executes and turns stop
    requests made in any process into the runs' stop events.

    Every ``POLL`` seconds it reads the stop flag, worker and claim of all its runs in one query; a
    run whose worker or claim changed lost its lease (its own writes would fail anyway) and is
    stopped. Leases are renewed in one UPDATE every third of the lease. Runs younger than one poll
    are not read at all: most blocking runs end before the thread ever looks at them.
    """

    POLL = 0.4

    def __init__(self) -> None:
        self.runs: dict[str, tuple[int, str, threading.Event, float]] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.last_renew = 0.0

    def add(self, run_id: Any, claim: int, stop: threading.Event, worker: str = "") -> None:
        with self.lock:
            self.runs[str(run_id)] = (claim, worker or WORKER_ID, stop, time.monotonic())
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.loop, name="weft-heartbeats", daemon=True)
                self.thread.start()

    def remove(self, run_id: Any) -> None:
        with self.lock:
            self.runs.pop(str(run_id), None)

    def loop(self) -> None:
        while True:
            time.sleep(self.POLL)
            try:
                self.beat()
            except Exception:
                logger.exception("heartbeat failed")
                connection.close()

    def beat(self) -> None:
        now_mono = time.monotonic()
        with self.lock:
            watched = {k: v for k, v in self.runs.items() if now_mono - v[3] >= self.POLL}
        if not watched:
            return
        rows = Run.objects.filter(pk__in=list(watched)).values_list("pk", "stop_requested_at", "worker", "claim_count")
        owned: dict[str, list[Any]] = {}
        for pk, stop_requested_at, worker, claim_count in rows:
            claim, owner, stop, _ = watched[str(pk)]
            if worker != owner or claim_count != claim:
                stop.set()  # lease lost: another worker has the run
            elif stop_requested_at is not None:
                stop.set()
            else:
                owned.setdefault(owner, []).append(pk)
        if owned and now_mono - self.last_renew >= max(1.0, settings.WEFT_LEASE_SECONDS / 3):
            now = timezone.now()
            for owner, pks in owned.items():
                Run.objects.filter(pk__in=pks, worker=owner).update(
                    heartbeat_at=now, lease_expires_at=now + timedelta(seconds=settings.WEFT_LEASE_SECONDS)
                )
            self.last_renew = now_mono


heartbeats = Heartbeats()


_RUN_ROWS = RowReader(Run)
_TEAM_ROWS = RowReader(Team)
_claim_sql: dict[str, str] = {}


def _claim_statement(alias: str) -> str:
    """``UPDATE runs_run SET <claimed> WHERE id = %s AND <claimable> RETURNING <every column>``: the
    claim and the claimed row in one statement (PostgreSQL, and SQLite since 3.35), compiled once.
    Django's ``update()`` then ``get()`` took two statements and ~1.4 ms of CPU to compile them."""
    sql = _claim_sql.get(alias)
    if sql is None:
        qn = connections[alias].ops.quote_name
        status, wake, lease, stop = qn("status"), qn("wake_at"), qn("lease_expires_at"), qn("stop_requested_at")
        sql = (
            f"UPDATE {qn(Run._meta.db_table)} SET {status} = %s, {qn('worker')} = %s, "
            f"{qn('claim_count')} = {qn('claim_count')} + 1, {qn('heartbeat_at')} = %s, {lease} = %s, "
            f"{qn('started_at')} = COALESCE({qn('started_at')}, %s), {wake} = NULL, {qn('claim_fate')} = '' "
            f"WHERE {qn('id')} = %s AND ({status} = %s OR ({status} = %s AND {wake} <= %s) "
            f"OR ({status} = %s AND {wake} IS NULL AND {stop} IS NOT NULL) OR ({status} = %s AND {lease} < %s)) "
            f"RETURNING {_RUN_ROWS.columns(alias)}"
        )
        _claim_sql[alias] = sql
    return sql


def run_claim(run_id: Any) -> Run | None:
    """Claim the run for this worker if it is claimable: pending, waiting and due (or waiting for
    nothing with a stop requested), or running with an expired lease. Returns the claimed run (its
    team loaded), or None when another worker has it or it is finished."""
    alias = router.db_for_write(Run)
    db = connections[alias]
    now = timezone.now()
    at = db.ops.adapt_datetimefield_value
    at_now, lease = at(now), at(now + timedelta(seconds=settings.WEFT_LEASE_SECONDS))
    params = [RunStatus.RUNNING, WORKER_ID, at_now, lease, at_now, Run._meta.pk.get_db_prep_value(run_id, db),
              RunStatus.PENDING, RunStatus.WAITING, at_now, RunStatus.WAITING, RunStatus.RUNNING, at_now]
    with db.cursor() as cursor:
        cursor.execute(_claim_statement(alias), params)
        row = cursor.fetchone()
    if row is None:
        return None
    run = _RUN_ROWS.instance(alias, row)
    run.team = _TEAM_ROWS.get(run.team_id)
    return run


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def run_claim_new(run: Run) -> None:
    """Mark an unsaved run as claimed by this process: it is written already ``running`` under this
    worker's lease and executed right after the insert (one claim round trip less). If this process
    dies first, the lease runs out and the reaper hands the run to a worker."""
    now = timezone.now()
    run.status, run.worker, run.claim_count = RunStatus.RUNNING, WORKER_ID, 1
    run.started_at = run.heartbeat_at = now
    run.lease_expires_at = now + timedelta(seconds=settings.WEFT_LEASE_SECONDS)


def run_execute(run_id: Any, *, stop_event: threading.Event | None = None, claimed: Run | None = None) -> Run | None:
    """Claim and execute (or resume) a run to its end or to a park, then finish it (its end-of-run
    work, ``runs.lifecycle.run_finish``). Returns the run, or None when it could not be claimed
    (another worker has it, or it already ended) or its lease was lost. ``claimed`` is a run this
    process recorded already claimed (``run_claim_new``)."""
    run = claimed if claimed is not None else run_claim(run_id)
    if run is None:
        return None
    ended: Run | None = None
    stop = stop_event or threading.Event()
    key = str(run.pk)
    with _local_lock:
        _local_stops[key] = stop
    host = RunHost(run, run.claim_count)
    try:
        first = run.claim_count == 1 and run.event_seq == 0
        start_type = "run_started" if first else "run_resumed"
        host.pending = [(start_type, {"inputs": run.inputs, "workflowId": str(run.workflow_id),
                                      "versionId": str(run.version_id), "createdAt": run.created_at.isoformat(),
                                      "claimCount": run.claim_count})]
        host.pending_status = RunStatus.RUNNING
        if run.stop_requested_at is not None:
            stop.set()
        heartbeats.add(run.pk, run.claim_count, stop, host.worker)
        compiled = compiled_version(version=run.version)
        services = RunServices(run=run, stop=stop)
        ctx = RunContext(
            run_id=key, inputs=run.inputs, business_time=run.business_time, tz=run.team.time_zone,
            params={**parameters_get(team=run.team), **(run.version.graph.get("params") or {})}, deadline=_epoch(run.deadline), stop=stop, host=host,
            services=services, can_park=run.mode == "async", token_secret=settings.SECRET_KEY.encode(),
            limits=engine_limits(),
        )
        try:
            outcome = run_graph(compiled, ctx)
        except LeaseLost:
            logger.warning("run %s: lease lost; another worker continues it", key)
            return None
        except Exception as exc:
            logger.exception("run %s: engine error", key)
            outcome = RunOutcome(status=OutcomeStatus.FAILED, outputs=None, error={"code": "internal_error", "message": str(exc)})
        ended = run_outcome_record(run, host, outcome)
    finally:
        heartbeats.remove(run.pk)
        with _local_lock:
            if _local_stops.get(key) is stop:
                del _local_stops[key]
    if ended is not None and ended.is_final:
        try:
            run_finish(ended)
        except Exception:  # rolled back: the reaper's safety net finishes it again
            logger.exception("run %s: end-of-run work failed", key)
    if host.final_publish is not None:
        host.final_publish()
    return ended


def run_outcome_record(run: Run, host: RunHost, outcome: RunOutcome) -> Run | None:
    """Write how the engine left the run: parked (``waiting``, its wake-up queued) or ended (with its
    ``run_finished`` event). Returns None when the lease was lost meanwhile."""
    now = timezone.now()
    if outcome.status == OutcomeStatus.WAITING:
        wake_at = _dt(outcome.wake_at)
        try:
            host.write(events=[("run_waiting", {"wakeAt": wake_at.isoformat() if wake_at else None})],
                       run_fields={"status": RunStatus.WAITING, "wake_at": wake_at, "worker": "",
                                   "lease_expires_at": None},
                       status_change=RunStatus.WAITING)
        except LeaseLost:
            return None
        if wake_at is not None:
            run_enqueue(run.pk, at=wake_at)
        # A callback that arrived while the run was parking found it still running: wake it now.
        waiting_tokens = NodeRun.objects.filter(run_id=run.pk, status=NodeStatus.WAITING).values("receipt_token")
        if NodeCallback.objects.filter(run_id=run.pk, receipt_token__in=waiting_tokens).exists():
            run_wake_if_waiting(run_id=run.pk)
    else:
        run.status = outcome.status
        run.outputs = outcome.outputs
        run.error = outcome.error
        run.finished_at = now
        run.total_steps = host.steps + finished_count(host.pending_records)
        run.lease_expires_at = None
        fields = {"status": outcome.status, "outputs": outcome.outputs, "error": outcome.error,
                  "finished_at": now, "lease_expires_at": None}
        if not run_finish_expected(run, outcome.status):
            # Nothing to do at the end of this run: marked handled in the same write (no extra transaction).
            fields["finish_handled_at"] = run.finish_handled_at = now
        try:
            host.write(events=[("run_finished", run_finished_data(run))], run_fields=fields,
                       status_change=outcome.status)
        except LeaseLost:
            return None
        run.event_seq, run.total_steps, run.heartbeat_at = host.seq, host.steps, now
        return run
    run.refresh_from_db()
    return run


def run_end_by_supervisor(*, run: Run, fate: str, error: dict[str, Any]) -> Run | None:
    """End a run whose executor process died under its lease (``runs.pool``): ``failed`` with
    ``error`` (``executor_crashed`` or ``limit_exceeded``), its unfinished node runs failed with it,
    ``run_finished`` appended and published. The claim's ``fate`` (``crashed`` or ``limit``) is
    written first, alone: if this process dies before the end is written, the reaper finds the
    lease expired with that fate and ends the run instead of handing it to another executor.
    Returns the ended run, or None when the lease had moved on (nothing written)."""
    lease = Q(pk=run.pk, worker=run.worker, claim_count=run.claim_count, status=RunStatus.RUNNING)
    if not Run.objects.filter(lease).update(claim_fate=fate):
        return None
    return run_end_crashed(run_id=run.pk, where=lease, error=error)


def run_end_crashed(*, run_id: Any, where: Q, error: dict[str, Any]) -> Run | None:
    """One transaction: the run (if it still matches ``where``) and its running node runs end failed."""
    now = timezone.now()
    with transaction.atomic():
        if not Run.objects.filter(where, pk=run_id).update(status=RunStatus.FAILED, error=error, finished_at=now,
                                                          lease_expires_at=None, wake_at=None):
            return None
        NodeRun.objects.filter(run_id=run_id, status__in=[NodeStatus.RUNNING, NodeStatus.WAITING]).update(
            status=NodeStatus.FAILED, error=error, finished_at=now)
        ended = Run.objects.select_related("version", "team").get(pk=run_id)
        published = run_events_append(run=ended, events=[("run_finished", run_finished_data(ended))])
    ended.event_seq = published[-1]["seq"]
    try:
        run_finish(ended)  # its end-of-run work (dead letter, batch progress, ...), exactly once
    except Exception:  # rolled back: the reaper's safety net finishes it again
        logger.exception("run %s: end-of-run work failed", run_id)
    # Readers learn of the end once its end-of-run work is done (as a blocking run's answer does).
    events_publish(run_id=ended.pk, team_id=ended.team_id, events=published, status=RunStatus.FAILED)
    # Child runs it was executing in the same executor died with it: they end the same way.
    for child_id in Run.objects.filter(parent_run_id=run_id, status=RunStatus.RUNNING).values_list("pk", flat=True):
        run_end_crashed(run_id=child_id, where=Q(status=RunStatus.RUNNING), error=error)
    return ended


def run_execute_in_thread(run_id: Any, *, claimed: Run | None = None) -> threading.Thread:
    """Execute a run on its own thread (blocking and streaming runs in the web process)."""

    def target() -> None:
        close_old_connections()
        try:
            run_execute(run_id, claimed=claimed)
        except Exception:
            logger.exception("run %s failed in its thread", run_id)
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=f"weft-run-{run_id}", daemon=True)
    thread.start()
    return thread


def new_worker_id() -> str:
    return f"{WORKER_ID}:{uuid.uuid4().hex[:6]}"
