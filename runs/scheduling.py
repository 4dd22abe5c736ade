"""The one periodic pass of durable execution (the reaper's tick). Delayed tasks (a parked run's
wake-up) are ``runs.taskqueue.task_enqueue_at``: a task no worker can pull before its time.

- ``durable_tick``: one short pass (``runs.reaper.runs_reap``: expired leases, deadlines, overdue
  wakes; ``workflows.triggers.triggers_fire_due``; ``runs.batches.batches_advance``) that re-queues
  itself ``WEFT_TICK_SECONDS`` later. The pass claims ``DurableTick.next_at`` with a conditional
  update first, so with several clusters (or a duplicated chain) one pass runs per interval and
  the losers end their chain. A django-q2 ``Schedule`` (every minute, ``weft:durable-tick``,
  registered idempotently by ``schedules_ensure``: ``manage.py weftschedules``, run by
  ``runweft`` before it starts the cluster) calls the same task, so a chain that died with its
  cluster is restarted within a minute.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule

from runs.batches import batches_advance
from runs.models import DurableTick
from runs.reaper import runs_reap
from runs.taskqueue import task_enqueue_at
from workflows.triggers import triggers_fire_due

logger = logging.getLogger(__name__)

TICK_NAME = "durable"
TICK_SCHEDULE_NAME = "weft:durable-tick"
TICK_FUNC = "runs.tasks.durable_tick"
IDEMPOTENCY_SCHEDULE_NAME = "weft:idempotency-sweep"
IDEMPOTENCY_SWEEP_FUNC = "runs.tasks.idempotency_sweep_task"


def durable_tick(*, chain: bool = True) -> bool:
    """One periodic pass, if this interval's pass is still unclaimed; then queue the next one.
    Returns whether this call ran the pass."""
    now = timezone.now()
    interval = timedelta(seconds=settings.WEFT_TICK_SECONDS)
    DurableTick.objects.get_or_create(name=TICK_NAME, defaults={"next_at": now})
    won = DurableTick.objects.filter(name=TICK_NAME, next_at__lte=now).update(next_at=now + interval, last_at=now)
    if not won:
        return False
    try:
        durable_pass(now=now)
    finally:
        if chain and not Conf.SYNC:
            task_enqueue_at(TICK_FUNC, at=now + interval, task_name="durable-tick")
    return True


def durable_pass(*, now: datetime | None = None) -> None:
    """Everything time-driven, each part isolated so one failure does not stop the others."""
    now = now or timezone.now()
    for part in (runs_reap, triggers_fire_due, batches_advance):
        try:
            part(now=now)
        except Exception:
            logger.exception("durable pass: %s failed", part.__name__)


def schedules_ensure() -> None:
    """Register the watchdog schedule that (re)starts the tick chain, and the hourly sweep of
    expired idempotency keys; idempotent."""
    Schedule.objects.update_or_create(
        name=TICK_SCHEDULE_NAME,
        defaults={"func": TICK_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    Schedule.objects.update_or_create(
        name=IDEMPOTENCY_SCHEDULE_NAME,
        defaults={"func": IDEMPOTENCY_SWEEP_FUNC, "schedule_type": Schedule.HOURLY, "repeats": -1},
    )


def tick_seed() -> None:
    """Queue a tick now. If the chain is alive the extra link loses the interval claim and ends."""
    if Conf.SYNC:
        return
    try:
        task_enqueue_at(TICK_FUNC, at=None, task_name="durable-tick")
    except Exception:  # a worker must start even when the database is briefly unavailable
        logger.exception("could not seed the durable tick")


def tick_on_worker_start(sender: Any, proc_name: str = "", **kwargs: Any) -> None:
    """django-q2 ``post_spawn``: a (re)started worker seeds the durable tick chain, so a chain whose
    link was lost with a killed cluster restarts as soon as any cluster starts, not only at the
    minute watchdog. A live chain makes the extra link a no-op (``durable_tick`` claims each
    interval once)."""
    tick_seed()
