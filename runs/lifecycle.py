"""A run's life in one place: ``run_start`` (validate, record, dispatch) and ``run_finish`` (the
end-of-run work, exactly once). Every way a run starts calls ``run_start``; every way a run ends
calls ``run_finish``. See docs/engine.md ("Run lifecycle") for the whole path.

Start (``run_start``)
- validate: the workflow belongs to the team, its app is enabled, the version is published and
  the inputs match its declaration; nothing is written on failure;
- record: one ``pending`` run row (``runs.services.run_create``; blocking, streaming and child
  runs are written already claimed by this process: one round trip less);
- dispatch by mode: ``blocking`` executes now and returns the ended run; ``streaming`` is handed
  over and returns at once (read the run's events); ``async`` is queued for a django-q2 worker
  after commit (``not_before``: parked ``waiting`` until then, as workflow retries are); a child
  run (``parent_run``) executes now, in the parent's thread, whatever its mode.

Blocking and streaming execution is handed over through one seam, ``runs.execution.run_dispatch``,
installed at start-up (``execution_install``, called by ``runs.apps``): this module sits below the
execution layer and never imports it.

Finish (``run_finish``), whoever ended the run (its executor, the reaper, a stop of a run nobody
executed): claims ``Run.finish_handled_at`` with a conditional update and, in the same
transaction, does the work: workflow-level retry or the dead-letter list (unattended runs only),
the batch item's progress (and the job's next items), the waiting parent of a child run. A crash
in between rolls the claim back and the reaper's safety net (``runs.reaper``) calls it again.

Workflow-level retry policy: the graph's top-level ``retry`` object,
``{"count": n, "interval": seconds, "backoff": "fixed|exponential|random", "max_interval": s}``
(the engine's ``RetryPolicy``; the backoff defaults to exponential here).
An async run that ends ``failed`` or ``timeout`` is attempted again as a new run
(``trigger="retry"``, ``replay_of`` = the failed attempt, same version, inputs and business time),
parked until its backoff is over; after ``count`` retries the last attempt is dead-lettered. Runs
that lost their worker ``WEFT_MAX_CLAIMS`` times are dead-lettered at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import ApiToken, Team
from config.errors import Conflict, DomainError, team_owned
from runs.callbacks import run_wake_if_waiting
from runs.deadletters import dead_letter_add
from runs.idempotency import IdempotencyRequest, idempotency_bind, idempotency_claim, idempotency_release
from runs.live import events_publish
from runs.models import (
    ACTIVE_STATUSES,
    BATCH_ITEM_FAILED_STATUSES,
    FINAL_STATUSES,
    BatchItem,
    BatchJob,
    BatchStatus,
    DeadLetter,
    Run,
    RunMode,
    RunStatus,
)
from runs.services import run_create, run_events_append, run_finished_data
from runs.taskqueue import run_enqueue, task_enqueue_at
from workflows.engine.retry import Backoff, RetryPolicy
from workflows.models import Workflow, WorkflowVersion

logger = logging.getLogger(__name__)

RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT})
BATCH_CALLBACK_TASK = "runs.tasks.batch_callback_task"


class Origin(NamedTuple):
    """Where a run comes from: the API dialect it answers in and what triggered it."""

    dialect: str  # native | dify | coze | ui
    trigger: str  # api | webhook | schedule | queue | batch | replay | retry | ui | child

    @classmethod
    def following(cls, run: Run, trigger: str) -> Origin:
        """A run started because of ``run`` (its replay, retry or child) keeps its dialect."""
        return cls(run.dialect, trigger)


NATIVE = Origin("native", "api")
NATIVE_WEBHOOK = Origin("native", "webhook")  # POST /api/v1/workflows/{id}/trigger and /hooks/{key}
DIFY = Origin("dify", "api")
COZE = Origin("coze", "api")
TEST_PANEL = Origin("ui", "ui")
SCHEDULE = Origin("native", "schedule")
BATCH = Origin("native", "batch")
QUEUE = Origin("native", "queue")  # queue triggers (manage.py weftconsumers)


# The execution seam --------------------------------------------------------------------------

class Execution(Protocol):
    """What the lifecycle needs from the execution layer (``runs.execution`` implements it)."""

    def run_claim_new(self, run: Run) -> None:
        """Mark an unsaved run as claimed by this process (it is executed right after the insert)."""

    def run_dispatch(self, run: Run, *, stop: threading.Event | None = None) -> Run | None:
        """Execute a recorded run: blocking and child runs here, returning the run as it ended (None
        when it could not be claimed); streaming runs are handed over and None returns at once."""

    def stop_signal_local(self, run_id: Any) -> None:
        """Set the stop event of the run if this process executes it (an immediate stop)."""


_execution: Execution | None = None


def execution_install(execution: Execution) -> None:
    """Install the execution layer (``runs.apps`` does, at start-up)."""
    global _execution
    _execution = execution


def execution() -> Execution:
    if _execution is None:
        raise RuntimeError("No execution layer installed (runs.apps.RunsConfig.ready installs it).")
    return _execution


# Start --------------------------------------------------------------------------------------

def run_start(
    *,
    team: Team,
    workflow: Workflow,
    inputs: Any,
    mode: str,
    origin: Origin,
    version: WorkflowVersion | None = None,
    token: ApiToken | None = None,
    user: str | None = None,
    created_by: Any = None,
    business_time: datetime | None = None,
    parent_run: Run | None = None,
    replay_of: Run | None = None,
    deadline_seconds: float | None = None,
    not_before: datetime | None = None,
    stop: threading.Event | None = None,
    draft: bool = False,
    idempotency: IdempotencyRequest | None = None,
    run_id: uuid.UUID | None = None,
    on_recorded: Callable[[Run], None] | None = None,
) -> Run:
    """Validate, record and dispatch a run; the only way any code starts one.

    Returns the ended run for ``blocking`` and child runs, the just-started run for ``streaming``
    (follow its events), the recorded run for ``async``. ``draft``: a test run of the saved draft
    (``version`` is then its draft snapshot; left out of Dify's logs). Raises a ``DomainError``
    before writing anything on bad input: unknown workflow ``NotFound``, bad inputs
    ``InvalidInput``, disabled app or no published version ``AppUnavailable``, over a concurrency
    limit ``RateLimited``. ``idempotency``: the request's ``Idempotency-Key`` (``runs.idempotency``):
    a key seen before answers its first run (a blocking one once it has ended) and starts nothing;
    the same key with a different request is a ``Conflict``. ``run_id``: the new run's id and task
    id, chosen by the client (Coze's ``x-run-id``); one already taken is a ``Conflict``.
    ``on_recorded``: called with the new run once it is recorded, before it is dispatched (a stream
    subscribes to its events there, so that every one reaches it live); not called when a repeated
    idempotency key answers an earlier run.
    """
    team_owned(team, workflow, "Workflow")
    mode = RunMode(mode)
    claim = None
    if idempotency is not None:
        first, claim = idempotency_claim(team=team, scope=str(workflow.app_id), request=idempotency)
        if first is not None:
            return _idempotent_answer(first)
    here = parent_run is not None or mode in (RunMode.BLOCKING, RunMode.STREAMING)
    executor = execution() if here else None

    def prepare(run: Run) -> None:
        if run_id is not None:
            run.pk = run.task_id = run_id
        if executor is not None:
            executor.run_claim_new(run)
        elif not_before is not None:
            run.status, run.wake_at = RunStatus.WAITING, not_before

    try:
        if run_id is not None and Run.objects.filter(Q(pk=run_id) | Q(task_id=run_id)).exists():
            raise Conflict(f"The run id {run_id} is already taken.",
                           errors=[{"path": "/x-run-id", "message": "already taken by another run"}])
        run = run_create(
            team=team, workflow=workflow, inputs=inputs, mode=mode, dialect=origin.dialect, trigger=origin.trigger,
            user=user or "", token=token, created_by=created_by, business_time=business_time, parent_run=parent_run,
            replay_of=replay_of, deadline_seconds=deadline_seconds, version=version, draft=draft, prepare=prepare,
        )
    except BaseException:
        if claim is not None:
            idempotency_release(claim)  # nothing started: a corrected retry with the key may run
        raise
    if claim is not None:
        idempotency_bind(claim, run)
    if on_recorded is not None:
        on_recorded(run)
    if executor is None:
        run_enqueue(run.pk, at=not_before)
        return run
    ended = executor.run_dispatch(run, stop=stop)
    if ended is not None:
        return ended
    if mode == RunMode.STREAMING and parent_run is None:
        return run
    return Run.objects.select_related("workflow", "app", "version").get(pk=run.pk)


def _idempotent_answer(run: Run) -> Run:
    """The first run of a repeated key; a blocking one once it has ended (its deadline bounds the wait)."""
    if run.mode != RunMode.BLOCKING:
        return run
    while not run.is_final and timezone.now() < run.deadline + timedelta(seconds=5):
        time.sleep(0.1)
        run = Run.objects.select_related("workflow", "app", "version").get(pk=run.pk)
    return run


def run_replay(*, team: Team, run: Run, token: ApiToken | None = None, created_by: Any = None,
               idempotency: IdempotencyRequest | None = None) -> Run:
    """A new async run of the same published version with the same inputs, linked to the original."""
    team_owned(team, run, "Run")
    if run.status not in FINAL_STATUSES:
        raise Conflict("Only a finished run can be replayed.", errors=[{"path": "/status", "message": run.status}])
    return run_start(
        team=team, workflow=run.workflow, inputs=run.inputs, mode=RunMode.ASYNC,
        origin=Origin.following(run, "replay"), user=run.user, token=token, created_by=created_by,
        replay_of=run, version=run.version, idempotency=idempotency,
    )


def dead_letter_replay(*, team: Team, dead_letter: DeadLetter, token: ApiToken | None = None,
                       created_by: Any = None) -> Run:
    """Replay once: a new async run linked to the dead one. A second replay is a 409."""
    team_owned(team, dead_letter, "Dead letter")
    if dead_letter.replayed_run_id is not None:
        raise Conflict("This dead letter was already replayed.",
                       errors=[{"path": "/replayedRunId", "message": str(dead_letter.replayed_run_id)}])
    with transaction.atomic():
        run = run_replay(team=team, run=dead_letter.run, token=token, created_by=created_by)
        claimed = DeadLetter.objects.filter(pk=dead_letter.pk, replayed_run__isnull=True).update(
            replayed_run=run, replayed_at=timezone.now()
        )
        if not claimed:
            transaction.set_rollback(True)
            raise Conflict("This dead letter was already replayed.")
    dead_letter.refresh_from_db()
    return run


# Stop ---------------------------------------------------------------------------------------

def run_stop(*, team: Team, run: Run) -> Run:
    """Request a stop. A running run is ended by its executor within a second; a pending or waiting
    run nobody executes is ended here (and finished). Stopping a finished run changes nothing."""
    team_owned(team, run, "Run")
    now = timezone.now()
    Run.objects.filter(pk=run.pk, stop_requested_at__isnull=True, status__in=ACTIVE_STATUSES).update(
        stop_requested_at=now
    )
    if _execution is not None:
        _execution.stop_signal_local(run.pk)
    published: list[dict[str, Any]] = []
    with transaction.atomic():
        ended = Run.objects.filter(
            pk=run.pk, status__in=[RunStatus.PENDING, RunStatus.WAITING]
        ).update(status=RunStatus.STOPPED, finished_at=now, error={"code": "stopped", "message": "stopped by request"},
                 wake_at=None)
        if ended:
            run.refresh_from_db()
            published = run_events_append(run=run, events=[("run_finished", run_finished_data(run))])
            run_finish(run)
    if published:
        transaction.on_commit(
            lambda: events_publish(run_id=run.pk, team_id=run.team_id, events=published, status=RunStatus.STOPPED)
        )
    run.refresh_from_db()
    return run


# Finish -------------------------------------------------------------------------------------

def run_finish_expected(run: Run, status: str) -> bool:
    """Whether a run ending with ``status`` has end-of-run work. When not, its executor marks it
    handled in the same write that ends it (blocking and streaming runs: no extra transaction)."""
    if run.parent_run_id is not None:
        return True
    if run.mode != RunMode.ASYNC:
        return False
    return status in RETRYABLE or run.trigger in ("batch", "retry")


def run_finish(run: Run, *, reason: str | None = None) -> Run | None:
    """Do the end-of-run work of an ended run, exactly once whoever calls it (a later call, or a
    concurrent one, changes nothing). Returns the retry run, if one was started."""
    if run.finish_handled_at is not None:
        return None
    now = timezone.now()
    with transaction.atomic():
        claimed = Run.objects.filter(pk=run.pk, status__in=FINAL_STATUSES, finish_handled_at__isnull=True).update(
            finish_handled_at=now)
        if not claimed:
            return None
        run = Run.objects.select_related("version", "team", "workflow", "token").get(pk=run.pk)
        retry = None
        if run.mode == RunMode.ASYNC and run.parent_run_id is None and run.status in RETRYABLE:
            retry = _retry_or_dead_letter(run, reason=reason)
        _batch_item_ended(run, retry=retry)
        if run.parent_run_id is not None:
            run_wake_if_waiting(run_id=run.parent_run_id)
    return retry


def retry_policy(run: Run) -> RetryPolicy | None:
    """The version's workflow-level policy (the engine's ``RetryPolicy``, the one node retries and
    batch callbacks use; here the backoff defaults to exponential)."""
    policy = (run.version.graph or {}).get("retry") if run.version_id else None
    return RetryPolicy.from_config(policy, default_backoff=Backoff.EXPONENTIAL) if isinstance(policy, dict) else None


def run_attempt(run: Run) -> int:
    """1 for a first attempt, 2 for its first retry, ..."""
    attempt, current = 1, run
    while current.trigger == "retry" and current.replay_of_id is not None and attempt < 1000:
        attempt += 1
        current = Run.objects.only("trigger", "replay_of_id").get(pk=current.replay_of_id)
    return attempt


def _retry_or_dead_letter(run: Run, *, reason: str | None) -> Run | None:
    policy = retry_policy(run)
    attempt = run_attempt(run)
    code = (run.error or {}).get("code")
    # Never retried: a run that lost its worker too often, crashed its executor process or overran
    # its executor's limits (runs.pool) would only do it again.
    lost = next((c for c in (reason, code) if c in ("max_claims", "executor_crashed", "limit_exceeded")), None)
    if not lost and policy is not None and policy.allows(attempt):
        try:
            with transaction.atomic():
                return run_start(
                    team=run.team, workflow=run.workflow, inputs=run.inputs, mode=RunMode.ASYNC,
                    origin=Origin.following(run, "retry"), token=run.token, user=run.user,
                    business_time=run.business_time, replay_of=run, version=run.version,
                    not_before=timezone.now() + timedelta(seconds=policy.delay(attempt)),
                )
        except DomainError as exc:  # app disabled, version no longer valid: nothing left to retry
            logger.warning("run %s: retry refused (%s); dead-lettered", run.pk, exc.detail)
    why = lost if lost else "timeout" if run.status == RunStatus.TIMEOUT else "retries_exhausted"
    dead_letter_add(run=run, reason=why, attempts=attempt)
    return None


# Batch items: the end-of-run work of batch runs ---------------------------------------------

def _batch_item_ended(run: Run, *, retry: Run | None) -> None:
    """The item's run ended: follow a retry, or record the item's final status and progress the job."""
    item = BatchItem.objects.filter(run_id=run.pk).select_related("job").first()
    if item is None:
        return
    if retry is not None:
        BatchItem.objects.filter(pk=item.pk, run_id=run.pk).update(run=retry)
        return
    BatchItem.objects.filter(pk=item.pk, run_id=run.pk, status=RunStatus.RUNNING).update(status=run.status)
    batch_progress(job=item.job)


def batch_dispatch(*, job: BatchJob) -> int:
    """Start runs for pending items while the job has fewer than ``concurrency`` active. An item
    whose run cannot start (the app was disabled, the version is no longer valid) fails. Returns
    how many runs started."""
    started = refused = 0
    with transaction.atomic():
        job = BatchJob.objects.select_for_update(of=("self",)).select_related(
            "workflow", "version", "team", "token").get(pk=job.pk)
        if job.status not in (BatchStatus.PENDING, BatchStatus.RUNNING):
            return 0
        slots = job.concurrency - BatchItem.objects.filter(job=job, status=RunStatus.RUNNING).count()
        while slots > 0:
            items = list(BatchItem.objects.filter(job=job, status=RunStatus.PENDING).order_by("index")[:slots])
            if not items:
                break
            for item in items:
                try:
                    with transaction.atomic():
                        item.run = run_start(team=job.team, workflow=job.workflow, inputs=item.inputs,
                                             mode=RunMode.ASYNC, origin=BATCH, user=f"batch:{job.job_id}"[:255],
                                             token=job.token, version=job.version)
                    item.status = RunStatus.RUNNING
                    started += 1
                    slots -= 1
                except DomainError as exc:
                    logger.warning("batch %s item %s: run refused: %s", job.pk, item.index, exc.detail)
                    item.status = RunStatus.FAILED
                    refused += 1
            BatchItem.objects.bulk_update(items, ["run", "status"])
        if job.status == BatchStatus.PENDING:
            BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.RUNNING)
    if refused:
        batch_progress(job=job)  # the refused items ended: count them (and finish the job if that was all)
    return started


def batch_progress(*, job: BatchJob) -> BatchJob:
    """Recount the job; finish it when every item ended (once: a conditional update), else dispatch."""
    counts = dict(BatchItem.objects.filter(job=job).values_list("status").annotate(n=Count("id"))
                  .values_list("status", "n"))
    succeeded = counts.get(RunStatus.SUCCEEDED, 0)
    failed = sum(counts.get(s, 0) for s in BATCH_ITEM_FAILED_STATUSES)
    BatchJob.objects.filter(pk=job.pk).update(succeeded=succeeded, failed=failed)
    if succeeded + failed < job.total:
        batch_dispatch(job=job)
        job.refresh_from_db()
        return job
    final = BatchStatus.SUCCEEDED if failed == 0 else BatchStatus.FAILED if succeeded == 0 else BatchStatus.PARTIAL
    now = timezone.now()
    finished = BatchJob.objects.filter(pk=job.pk, status__in=[BatchStatus.PENDING, BatchStatus.RUNNING]).update(
        status=final, finished_at=now, callback_next_at=now if job.callback_url else None,
    )
    if finished and job.callback_url:
        job_pk = str(job.pk)
        transaction.on_commit(lambda: task_enqueue_at(BATCH_CALLBACK_TASK, job_pk, at=None))
    job.refresh_from_db()
    return job
