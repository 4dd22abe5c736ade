"""The reaper: runs nobody is taking care of any more, found by the periodic pass.

- A ``running`` run whose lease expired with a crashed claim (``claim_fate`` ``crashed`` or
  ``limit``: its executor process died under it and the owner died before ending it, see
  ``runs.pool``) ends ``failed`` (``executor_crashed`` / ``limit_exceeded``): never re-claimed.
- A ``running`` run whose lease expired lost its worker (killed, crashed, partitioned). Below
  ``WEFT_MAX_CLAIMS`` claims it is re-queued: back to ``pending`` (nobody executes it) and a task
  is queued; the next executor resumes it from its node runs, never re-running a finished node.
  At ``WEFT_MAX_CLAIMS`` it ends ``failed`` (``max_claims``) and goes on the dead-letter list.
- A run past its deadline that nobody executes (pending, waiting, or running with an expired
  lease) ends ``timeout`` here; a run being executed is ended by its own executor.
- Lost wake-ups: a waiting run overdue by ``WEFT_STALE_SECONDS`` and an async pending run idle that
  long get a task again (a duplicate task is harmless: claiming is a conditional update).
- Unfinished endings: a run that ended without its end-of-run work (its process died right after
  the run ended) gets it now (``runs.lifecycle.run_finish``, which does it exactly once).

Every change is a conditional UPDATE on the state the reaper saw, so several reapers (clusters)
never act twice on one run; the ``run_finished`` event is appended in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.executor import run_end_crashed
from runs.lifecycle import run_finish
from runs.live import events_publish
from runs.models import Run, RunMode, RunStatus
from runs.services import run_events_append, run_finished_data
from runs.taskqueue import run_enqueue

logger = logging.getLogger(__name__)

BATCH = 500
CRASH_FATES = {
    "crashed": {"code": "executor_crashed", "message": "the process executing the run died"},
    "limit": {"code": "limit_exceeded", "message": "the run exceeded its executor's limits"},
}


def run_end_unattended(*, run_id: Any, where: Q, status: str, error: dict[str, Any], now: datetime) -> Run | None:
    """End a run nobody executes, if it still matches ``where``; append and publish ``run_finished``."""
    with transaction.atomic():
        ended = Run.objects.filter(where, pk=run_id).update(
            status=status, error=error, finished_at=now, wake_at=None, lease_expires_at=None, worker=""
        )
        if not ended:
            return None
        run = Run.objects.select_related("version", "team").get(pk=run_id)
        published = run_events_append(run=run, events=[("run_finished", run_finished_data(run))])
        transaction.on_commit(
            lambda: events_publish(run_id=run.pk, team_id=run.team_id, events=published, status=status)
        )
    return run


def runs_timeout_past_deadline(*, now: datetime) -> list[Run]:
    unattended = Q(status__in=[RunStatus.PENDING, RunStatus.WAITING]) | Q(
        status=RunStatus.RUNNING, lease_expires_at__lt=now
    )
    ended = []
    for run_id in Run.objects.filter(unattended, deadline__lt=now).values_list("pk", flat=True)[:BATCH]:
        run = run_end_unattended(
            run_id=run_id, where=unattended & Q(deadline__lt=now), status=RunStatus.TIMEOUT, now=now,
            error={"code": "timeout", "message": "the run passed its deadline"},
        )
        if run is not None:
            ended.append(run)
    return ended


def runs_requeue_lost(*, now: datetime) -> tuple[list[Any], list[Run]]:
    """Re-queue runs whose lease expired; fail those at the claim limit. Returns (requeued ids, failed)."""
    requeued, failed = [], []
    rows = Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list(
        "pk", "claim_count", "claim_fate")
    for run_id, claims, fate in rows[:BATCH]:
        same = Q(status=RunStatus.RUNNING, lease_expires_at__lt=now, claim_count=claims)
        if fate in CRASH_FATES:
            # Its executor died under it and its owner died before ending it (runs.pool): a crashed
            # claim, not a lost lease. Handing it to another executor would crash that one too.
            run = run_end_crashed(run_id=run_id, where=same & Q(claim_fate=fate), error=CRASH_FATES[fate])
            if run is not None:
                failed.append(run)
            continue
        if claims >= settings.WEFT_MAX_CLAIMS:
            run = run_end_unattended(
                run_id=run_id, where=same, status=RunStatus.FAILED, now=now,
                error={"code": "max_claims", "message": f"the run's worker was lost {claims} times "
                                                        f"(limit {settings.WEFT_MAX_CLAIMS})"},
            )
            if run is not None:
                failed.append(run)
            continue
        if Run.objects.filter(same, pk=run_id).update(status=RunStatus.PENDING, worker="", lease_expires_at=None,
                                                      heartbeat_at=now, claim_fate="lost"):
            requeued.append(run_id)
            run_enqueue(run_id)
    return requeued, failed


def runs_wake_lost(*, now: datetime) -> int:
    """Queue again waiting runs long overdue and async pending runs idle for ``WEFT_STALE_SECONDS``."""
    stale = now - timedelta(seconds=settings.WEFT_STALE_SECONDS)
    count = 0
    overdue = Run.objects.filter(status=RunStatus.WAITING, wake_at__lt=stale).values_list("pk", "wake_at")
    for run_id, wake_at in overdue[:BATCH]:
        if Run.objects.filter(pk=run_id, status=RunStatus.WAITING, wake_at=wake_at).update(wake_at=now):
            run_enqueue(run_id)
            count += 1
    idle = (
        Run.objects.filter(status=RunStatus.PENDING, mode=RunMode.ASYNC)
        .annotate(seen=Coalesce("heartbeat_at", "created_at"))
        .filter(seen__lt=stale)
        .values_list("pk", "heartbeat_at")
    )
    for run_id, heartbeat in idle[:BATCH]:
        if Run.objects.filter(pk=run_id, status=RunStatus.PENDING, heartbeat_at=heartbeat).update(heartbeat_at=now):
            run_enqueue(run_id)
            count += 1
    return count


def runs_endings_unhandled(*, now: datetime) -> int:
    """Runs that ended in the last hour without their end-of-run work (``run_finish`` rolled back, or
    the process died in between): finish them. Settled first, so the executor finishing the run
    right now is not raced (and if it is, ``run_finish`` claims the work once)."""
    settle = now - timedelta(seconds=max(10, settings.WEFT_TICK_SECONDS * 5))
    rows = Run.objects.filter(finish_handled_at__isnull=True, finished_at__isnull=False, finished_at__lt=settle,
                              finished_at__gte=now - timedelta(hours=1))
    count = 0
    for run in rows[:BATCH]:
        try:
            run_finish(run)
            count += 1
        except Exception:
            logger.exception("reaper: ending of run %s failed", run.pk)
    return count


def runs_reap(*, now: datetime | None = None) -> dict[str, int]:
    """One reaper pass. Deadlines first: a lost run past its deadline times out rather than resumes."""
    now = now or timezone.now()
    timed_out = runs_timeout_past_deadline(now=now)
    requeued, failed = runs_requeue_lost(now=now)
    for run in [*timed_out, *failed]:
        try:
            run_finish(run, reason="max_claims" if run.error and run.error.get("code") == "max_claims" else None)
        except Exception:
            logger.exception("reaper: ending of run %s failed", run.pk)
    woken = runs_wake_lost(now=now)
    handled = runs_endings_unhandled(now=now)
    return {"timedOut": len(timed_out), "requeued": len(requeued), "failed": len(failed), "woken": woken,
            "endings": handled}
