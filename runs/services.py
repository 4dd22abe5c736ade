"""Writes for runs: create (inputs validated first, nothing written on failure), stop, replay.

A run row is written ``pending`` with its inputs, version, mode and deadline before anything
executes; the executor (``runs.executor``) claims it. Events are appended to the run's log with
per-run sequence numbers and published after commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.models import ApiToken, Team
from config.errors import AppUnavailable, Conflict, InvalidInput, RateLimited
from runs.live import events_publish
from runs.models import ACTIVE_STATUSES, FINAL_STATUSES, Run, RunEvent, RunMode, RunStatus
from runs.versions import compiled_version
from workflows.engine.graph import InputInvalid, validate_inputs
from workflows.models import App, Workflow, WorkflowVersion

# Blocking and streaming runs hold a server thread for their whole life: they count against the
# concurrency limits; async runs queue for the workers instead.
INTERACTIVE_MODES = (RunMode.BLOCKING, RunMode.STREAMING)

MODE_TIMEOUTS = {
    RunMode.BLOCKING: lambda: settings.WEFT_BLOCKING_TIMEOUT,
    RunMode.STREAMING: lambda: settings.WEFT_STREAMING_TIMEOUT,
    RunMode.ASYNC: lambda: settings.WEFT_ASYNC_TIMEOUT,
}


def event_dict(event: RunEvent) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "data": event.data, "createdAt": event.created_at.isoformat()}


def run_inputs_validate(*, version: WorkflowVersion | None, inputs: Any) -> dict[str, Any]:
    """The validated inputs (defaults applied) for a published version, or ``InvalidInput``."""
    if version is None:
        raise AppUnavailable("The workflow has no published version.")
    if not isinstance(inputs, dict):
        raise InvalidInput("Inputs must be an object.", errors=[{"path": "/inputs", "message": "must be an object"}])
    compiled = compiled_version(version=version)
    try:
        return validate_inputs(compiled, inputs)
    except InputInvalid as exc:
        raise InvalidInput(
            "; ".join(f"{e['path']}: {e['message']}" for e in exc.errors), errors=exc.errors
        ) from None


def run_create(
    *,
    team: Team,
    workflow: Workflow,
    inputs: Any,
    mode: str = RunMode.BLOCKING,
    dialect: str = "native",
    trigger: str = "api",
    user: str = "",
    token: ApiToken | None = None,
    created_by: Any = None,
    business_time: datetime | None = None,
    parent_run: Run | None = None,
    replay_of: Run | None = None,
    deadline_seconds: float | None = None,
    version: WorkflowVersion | None = None,
    claim: bool = False,
    draft: bool = False,
) -> Run:
    """Validate the inputs and write a ``pending`` run. Raises before writing anything on bad input."""
    if workflow.team_id != team.id:
        raise InvalidInput("Unknown workflow.", errors=[{"path": "/workflowId", "message": "no such workflow"}])
    app: App = workflow.app
    if not app.enabled:
        raise AppUnavailable("The app is disabled.")
    version = version or workflow.active_version
    clean = run_inputs_validate(version=version, inputs=inputs)
    now = timezone.now()
    seconds = deadline_seconds if deadline_seconds is not None else MODE_TIMEOUTS[RunMode(mode)]()
    claimed: dict[str, Any] = {}
    if claim:
        # The caller executes the run right away in this process (blocking and streaming runs): the row
        # is written already claimed, saving the claim round trip. If this process dies first, the
        # lease runs out and the reaper hands the run to a worker.
        from runs.executor import WORKER_ID

        claimed = {"status": RunStatus.RUNNING, "worker": WORKER_ID, "claim_count": 1, "started_at": now,
                   "heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=settings.WEFT_LEASE_SECONDS)}
    with transaction.atomic():
        if mode in INTERACTIVE_MODES and parent_run is None:
            concurrency_check(team=team, token=token)
        return Run.objects.create(
            team=team, app=app, workflow=workflow, version=version, mode=mode, dialect=dialect,
            trigger=trigger, user=(user or "")[:255], token=token, created_by=created_by, inputs=clean,
            business_time=business_time or now, deadline=now + timedelta(seconds=seconds), parent_run=parent_run,
            replay_of=replay_of, draft=draft or version.draft, **claimed,
        )


def concurrency_check(*, team: Team, token: ApiToken | None) -> None:
    """Refuse a new blocking or streaming run when the team (``WEFT_MAX_CONCURRENT_RUNS``) or the
    token (``WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN``) already has that many active ones (0: no limit).

    Call inside the transaction that inserts the run. The team row is locked first (``FOR UPDATE``
    on PostgreSQL; SQLite's ``IMMEDIATE`` transactions already serialise writers), so the count and
    the insert are atomic: N+k simultaneous requests over a limit of N get exactly k refusals.
    Async runs are never refused here: they queue for the workers, whose number bounds them.
    """
    team_limit = int(settings.WEFT_MAX_CONCURRENT_RUNS)
    token_limit = int(settings.WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN) if token is not None else 0
    if not team_limit and not token_limit:
        return
    if connection.features.has_select_for_update:
        Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()
    counts = Run.objects.filter(team=team, status__in=ACTIVE_STATUSES, mode__in=INTERACTIVE_MODES).aggregate(
        team=Count("pk"), token=Count("pk", filter=Q(token=token)))
    if team_limit and counts["team"] >= team_limit:
        raise RateLimited(f"Too many concurrent runs for this team (limit {team_limit}).", retry_after=1)
    if token_limit and counts["token"] >= token_limit:
        raise RateLimited(f"Too many concurrent runs for this token (limit {token_limit}).", retry_after=1)


def run_events_append(*, run: Run, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Append events outside the executor (stop of a run nobody is executing). Call in a transaction."""
    Run.objects.filter(pk=run.pk).update(event_seq=F("event_seq") + len(events))
    last = Run.objects.filter(pk=run.pk).values_list("event_seq", flat=True).get()
    now = timezone.now()
    rows = [
        RunEvent(team_id=run.team_id, run=run, seq=last - len(events) + i + 1, type=t, data=d, created_at=now)
        for i, (t, d) in enumerate(events)
    ]
    RunEvent.objects.bulk_create(rows)
    return [event_dict(r) for r in rows]


def run_finished_data(run: Run) -> dict[str, Any]:
    elapsed = (run.finished_at - (run.started_at or run.created_at)).total_seconds() if run.finished_at else 0.0
    return {
        "status": run.status,
        "outputs": run.outputs,
        "error": run.error,
        "elapsedTime": elapsed,
        "totalSteps": run.total_steps,
        "createdAt": run.created_at.isoformat(),
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
    }


def run_stop(*, team: Team, run: Run) -> Run:
    """Request a stop. A running run is ended by its executor within a second; a pending or waiting
    run nobody executes is ended here. Stopping a finished run changes nothing."""
    if run.team_id != team.id:
        raise InvalidInput("Unknown run.")
    now = timezone.now()
    Run.objects.filter(pk=run.pk, stop_requested_at__isnull=True, status__in=ACTIVE_STATUSES).update(
        stop_requested_at=now
    )
    from runs.executor import stop_signal_local  # local import: the executor imports this module

    stop_signal_local(run.pk)
    published: list[dict[str, Any]] = []
    with transaction.atomic():
        ended = Run.objects.filter(
            pk=run.pk, status__in=[RunStatus.PENDING, RunStatus.WAITING]
        ).update(status=RunStatus.STOPPED, finished_at=now, error={"code": "stopped", "message": "stopped by request"},
                 wake_at=None, lease_expires_at=None)
        if ended:
            run.refresh_from_db()
            published = run_events_append(run=run, events=[("run_finished", run_finished_data(run))])
    if published:
        transaction.on_commit(
            lambda: events_publish(run_id=run.pk, team_id=run.team_id, events=published, status=RunStatus.STOPPED)
        )
    run.refresh_from_db()
    return run


def run_replay(*, team: Team, run: Run, token: ApiToken | None = None, created_by: Any = None) -> Run:
    """A new async run of the same published version with the same inputs, linked to the original."""
    if run.status not in FINAL_STATUSES:
        raise Conflict("Only a finished run can be replayed.", errors=[{"path": "/status", "message": run.status}])
    return run_create(
        team=team, workflow=run.workflow, inputs=run.inputs, mode=RunMode.ASYNC, dialect=run.dialect,
        trigger="replay", user=run.user, token=token, created_by=created_by, replay_of=run, version=run.version,
    )
