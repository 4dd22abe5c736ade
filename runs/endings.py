"""After an unattended run ends: workflow-level retry, the dead-letter list, batch progress.

Workflow-level retry policy: the graph's top-level ``retry`` object,
``{"count": n, "interval": seconds, "backoff": "fixed|exponential", "max_interval": seconds}``
(on top of node retries, which happen inside a run). An async run that ends ``failed`` or
``timeout`` is attempted again as a new run (``trigger="retry"``, ``replay_of`` = the failed
attempt, same version, inputs and business time), parked ``waiting`` until its backoff is over:
the engine's ``RetryPolicy`` (``workflows.engine.retry``, the one node retries use; here the
backoff defaults to exponential: ``interval * 2^(attempt-1)``, capped by ``max_interval``). After ``count`` retries
the last attempt goes on the dead-letter list. Runs that lost their worker ``WEFT_MAX_CLAIMS``
times go there at once (retrying a run that kills its worker would only do it again).

Only unattended runs (``mode=async``: API async, webhooks, schedules, batches, retries, replays)
are retried and dead-lettered; a blocking or streaming caller sees its failure, a child run's
failure is its parent's node failure. ``run_ended`` is idempotent: the worker that executed the run
calls it, and the reaper calls it again for endings a dead worker could not handle.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from runs.models import DeadLetter, Run, RunMode, RunStatus
from workflows.engine.retry import Backoff, RetryPolicy

logger = logging.getLogger(__name__)

RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT})


def retry_policy(run: Run) -> RetryPolicy | None:
    """The version's workflow-level policy (the engine's ``RetryPolicy``; backoff defaults to exponential)."""
    policy = (run.version.graph or {}).get("retry") if run.version_id else None
    return RetryPolicy.from_config(policy, default_backoff=Backoff.EXPONENTIAL) if isinstance(policy, dict) else None


def run_attempt(run: Run) -> int:
    """1 for a first attempt, 2 for its first retry, ..."""
    attempt, current = 1, run
    while current.trigger == "retry" and current.replay_of_id is not None and attempt < 1000:
        attempt += 1
        current = Run.objects.only("trigger", "replay_of_id").get(pk=current.replay_of_id)
    return attempt


def run_retry_create(*, run: Run, delay: float) -> Run:
    from runs.scheduling import run_wake_schedule
    from runs.services import run_create

    retry = run_create(
        team=run.team, workflow=run.workflow, inputs=run.inputs, mode=RunMode.ASYNC, dialect=run.dialect,
        trigger="retry", user=run.user, token=run.token, business_time=run.business_time, replay_of=run,
        version=run.version,
    )
    wake_at = timezone.now() + timedelta(seconds=delay)
    Run.objects.filter(pk=retry.pk).update(status=RunStatus.WAITING, wake_at=wake_at)
    run_wake_schedule(run_id=retry.pk, wake_at=wake_at)
    return retry


def run_ended(*, run: Run, reason: str | None = None) -> Run | None:
    """Handle an ended run: retry it, dead-letter it, advance its batch. Returns the retry run, if any."""
    from runs.batches import batch_item_ended
    from runs.deadletters import dead_letter_add

    retry = None
    if run.mode == RunMode.ASYNC and run.parent_run_id is None and run.status in RETRYABLE:
        with transaction.atomic():
            # Serialise concurrent handlers of this run (row lock on PostgreSQL; SQLite writes queue).
            locked = Run.objects.select_for_update(of=("self",)).select_related("version", "team", "workflow").get(pk=run.pk)
            already = Run.objects.filter(replay_of=locked, trigger="retry").first()
            if already is not None:
                retry = already
            elif not DeadLetter.objects.filter(run=locked).exists():
                policy = retry_policy(locked)
                attempt = run_attempt(locked)
                code = (locked.error or {}).get("code")
                if reason != "max_claims" and code != "max_claims" and policy is not None and policy.allows(attempt):
                    retry = run_retry_create(run=locked, delay=policy.delay(attempt))
                else:
                    why = "max_claims" if "max_claims" in (reason, code) else (
                        "timeout" if locked.status == RunStatus.TIMEOUT else "retries_exhausted")
                    dead_letter_add(run=locked, reason=why, attempts=attempt)
    batch_item_ended(run=run, retry=retry)
    return retry
