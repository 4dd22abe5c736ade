"""Timed work for durable execution: delayed tasks and the one periodic pass (the reaper's tick).

Why not one django-q2 ``Schedule`` per parked run: django-q2's scheduler looks at its table
every 30 s under ``select_for_update`` and its finest interval is a minute, so thousands of
ONCE schedules are scanned and locked every cycle and still fire up to 30 s late. Instead:

- ``task_enqueue_at``: a django-q2 task that no worker can pull before ``at``. The ORM broker
  already keeps a ``lock`` time per queued task and dequeues only tasks whose lock is past
  (``django_q.brokers.orm``); we enqueue through a broker whose ``enqueue`` writes that lock in the
  future. A parked run is one such row: no worker, no thread, no schedule scan, woken on time.
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
from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

logger = logging.getLogger(__name__)

TICK_NAME = "durable"
TICK_SCHEDULE_NAME = "weft:durable-tick"
TICK_FUNC = "runs.tasks.durable_tick"


class DelayedOrmBroker(ORM):
    """The ORM broker, enqueueing a task that stays invisible to ``dequeue`` until ``visible_at``."""

    def __init__(self, visible_at: datetime) -> None:
        super().__init__(list_key=Conf.CLUSTER_NAME)
        self.visible_at = visible_at

    def enqueue(self, task: str) -> Any:
        package = self.get_connection().create(key=self.list_key, payload=task, lock=self.visible_at)
        return package.pk


def task_enqueue_at(func: str, *args: Any, at: datetime | None, task_name: str | None = None) -> None:
    """Queue ``func(*args)`` for a worker, not before ``at`` (now when None or past)."""
    from django_q.tasks import async_task

    kwargs: dict[str, Any] = {}
    if task_name:
        kwargs["task_name"] = task_name[:100]
    if at is not None and at > timezone.now() and not Conf.SYNC:
        kwargs["broker"] = DelayedOrmBroker(at)
    async_task(func, *args, **kwargs)


def run_wake_schedule(*, run_id: Any, wake_at: datetime | None) -> None:
    """Queue the parked run's wake-up for ``wake_at`` (a run waiting only for its callback has none:
    ``runs.callbacks`` wakes it). Runs after the surrounding transaction commits."""
    if wake_at is None:
        return
    transaction.on_commit(
        lambda: task_enqueue_at("runs.tasks.run_task", str(run_id), at=wake_at, task_name=f"wake:{run_id}")
    )


def durable_tick(*, chain: bool = True) -> bool:
    """One periodic pass, if this interval's pass is still unclaimed; then queue the next one.
    Returns whether this call ran the pass."""
    from runs.models import DurableTick

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
    from runs.batches import batches_advance
    from runs.reaper import runs_reap
    from workflows.triggers import triggers_fire_due

    now = now or timezone.now()
    for part in (runs_reap, triggers_fire_due, batches_advance):
        try:
            part(now=now)
        except Exception:
            logger.exception("durable pass: %s failed", part.__name__)


def schedules_ensure() -> None:
    """Register the watchdog schedule that (re)starts the tick chain; idempotent."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=TICK_SCHEDULE_NAME,
        defaults={"func": TICK_FUNC, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


def tick_seed() -> None:
    """Queue a tick now. If the chain is alive the extra link loses the interval claim and ends."""
    if Conf.SYNC:
        return
    try:
        task_enqueue_at(TICK_FUNC, at=None, task_name="durable-tick")
    except Exception:  # a worker must start even when the database is briefly unavailable
        logger.exception("could not seed the durable tick")
