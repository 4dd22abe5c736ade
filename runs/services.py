"""Writes for runs below the lifecycle: validate and record a run, the concurrency limits, events
appended outside an executor, the ``run_finished`` event's data.

A run row is written ``pending`` with its inputs, version, mode and deadline before anything
executes (``run_create``); starting, stopping and finishing runs is ``runs.lifecycle``'s, and the
lease fields (``worker``, ``claim_count``, ``lease_expires_at``, ...) are the executor's alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import ApiToken, Team
from config.errors import AppUnavailable, BudgetExceeded, InvalidInput, RateLimited, team_owned
from config.hotsql import RowInserter
from runs.files import file_inputs_resolve
from runs.models import ACTIVE_STATUSES, Run, RunEvent, RunMode
from runs.versions import compiled_version
from workflows.engine.graph import InputInvalid, validate_inputs
from workflows.models import App, Workflow, WorkflowVersion

# Blocking and streaming runs hold a server thread for their whole life: they count against the
# concurrency limits; async runs queue for the workers instead.
INTERACTIVE_MODES = (RunMode.BLOCKING, RunMode.STREAMING)

RUN_INSERT = RowInserter(Run)

MODE_TIMEOUTS = {
    RunMode.BLOCKING: lambda: settings.WEFT_BLOCKING_TIMEOUT,
    RunMode.STREAMING: lambda: settings.WEFT_STREAMING_TIMEOUT,
    RunMode.ASYNC: lambda: settings.WEFT_ASYNC_TIMEOUT,
}


def event_payload(seq: int, type_: str, data: Any, created_at: datetime) -> dict[str, Any]:
    """A logged event as readers get it (SSE, websockets, the channel layer)."""
    return {"seq": seq, "type": type_, "data": data, "createdAt": created_at.isoformat()}


def event_dict(event: RunEvent) -> dict[str, Any]:
    return event_payload(event.seq, event.type, event.data, event.created_at)


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
    draft: bool = False,
    prepare: Callable[[Run], None] | None = None,
) -> Run:
    """Validate the inputs and write a ``pending`` run (the record step of ``runs.lifecycle.run_start``,
    which is how code starts runs). Raises before writing anything on bad input. ``draft``: a test
    run of the saved draft (also when the version is a draft snapshot). ``prepare`` may set fields
    on the unsaved row (the lifecycle: the executor's claim, a retry's wake time).

    A child run (``parent_run``) records its parent chain (``root_run``, ``depth``): past
    ``WEFT_MAX_WORKFLOW_DEPTH`` levels it is refused (``BudgetExceeded``), and it counts against
    the team's concurrency limit like a blocking run, whatever its mode (it executes at once, in
    its parent's executor, never queued): over it, ``RateLimited``."""
    team_owned(team, workflow, "Workflow")
    depth = parent_run.depth + 1 if parent_run is not None else 0
    max_depth = int(settings.WEFT_MAX_WORKFLOW_DEPTH)
    if max_depth and depth > max_depth:
        raise BudgetExceeded(f"The sub-workflow would run {depth} levels deep; the limit is {max_depth} "
                             "(WEFT_MAX_WORKFLOW_DEPTH).", errors=[{"path": "/workflow", "message": "too deep"}])
    app: App = workflow.app
    if not app.enabled:
        raise AppUnavailable("The app is disabled.")
    version = version or workflow.active_version
    clean = file_inputs_resolve(team=team, version=version, inputs=run_inputs_validate(version=version, inputs=inputs))
    now = timezone.now()
    seconds = deadline_seconds if deadline_seconds is not None else MODE_TIMEOUTS[RunMode(mode)]()
    run = Run(
        team=team, app=app, workflow=workflow, version=version, mode=mode, dialect=dialect,
        trigger=trigger, user=(user or "")[:255], token=token, created_by=created_by, inputs=clean,
        business_time=business_time or now, deadline=now + timedelta(seconds=seconds), parent_run=parent_run,
        root_run_id=(parent_run.root_run_id or parent_run.pk) if parent_run is not None else None, depth=depth,
        replay_of=replay_of, draft=draft or version.draft,
    )
    if prepare is not None:
        prepare(run)
    insert = RUN_INSERT.prepare([run])  # built before the transaction: only the statements run inside it
    with transaction.atomic():
        if parent_run is not None:
            concurrency_check(team=team, token=None)
        elif mode in INTERACTIVE_MODES:
            concurrency_check(team=team, token=token)
        insert.execute()
    run._state.adding, run._state.db = False, insert.alias
    return run


def concurrency_check(*, team: Team, token: ApiToken | None) -> None:
    """Refuse a new blocking, streaming or child run when the team (``WEFT_MAX_CONCURRENT_RUNS``) or
    the token (``WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN``) already has that many active ones (0: no
    limit); child runs of any mode count (they execute at once, in their parent's executor).

    Call inside the transaction that inserts the run. The team row is locked first (``FOR UPDATE``
    on PostgreSQL; SQLite's ``IMMEDIATE`` transactions already serialise writers), so the count and
    the insert are atomic: N+k simultaneous requests over a limit of N get exactly k refusals.
    Async runs are never refused here: they queue for the workers, whose number bounds them.
    """
    team_limit = int(settings.WEFT_MAX_CONCURRENT_RUNS)
    token_limit = int(settings.WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN) if token is not None else 0
    if not team_limit and not token_limit:
        return
    team_count, token_count = active_run_counts(team_id=team.pk, token_id=token.pk if token is not None else None)
    if team_limit and team_count >= team_limit:
        raise RateLimited(f"Too many concurrent runs for this team (limit {team_limit}).", retry_after=1)
    if token_limit and token_count >= token_limit:
        raise RateLimited(f"Too many concurrent runs for this token (limit {token_limit}).", retry_after=1)


@functools.cache
def _active_counts_sql(vendor: str) -> tuple[str, str]:
    """The team lock and the count of ``concurrency_check``, written once per backend: the ORM
    compiled this aggregate for every blocking run (about a sixth of a web process's CPU per run)."""
    qn = connection.ops.quote_name
    run, team = qn(Run._meta.db_table), qn(Team._meta.db_table)
    col = {name: qn(Run._meta.get_field(name).column) for name in ("team", "token", "status", "mode", "parent_run")}
    lock = f"SELECT 1 FROM {team} WHERE {qn(Team._meta.pk.column)} = %s FOR UPDATE"
    statuses = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    modes = ", ".join(["%s"] * len(INTERACTIVE_MODES))
    count = (f"SELECT COUNT(*), COUNT(CASE WHEN {col['token']} = %s THEN 1 END) FROM {run} "
             f"WHERE {col['team']} = %s AND {col['status']} IN ({statuses}) "
             f"AND ({col['mode']} IN ({modes}) OR {col['parent_run']} IS NOT NULL)")
    return lock, count


def active_run_counts(*, team_id: Any, token_id: Any) -> tuple[int, int]:
    """Active blocking, streaming and child runs of the team, and of those the token's (0 without
    one). Inside a transaction, the team row is locked first on backends that can (see
    ``concurrency_check``)."""
    lock, count = _active_counts_sql(connection.vendor)
    team_key = Run._meta.get_field("team").get_db_prep_value(team_id, connection)
    token_key = Run._meta.get_field("token").get_db_prep_value(token_id, connection) if token_id is not None else None
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(lock, [team_key])
        cursor.execute(count, [token_key, team_key, *sorted(str(s) for s in ACTIVE_STATUSES),
                               *(str(m) for m in INTERACTIVE_MODES)])
        team_count, token_count = cursor.fetchone()
    return int(team_count), int(token_count or 0)


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
