"""Work for django-q2 workers, queued now or not before a given time: the one way to enqueue.

Why not one django-q2 ``Schedule`` per parked run: django-q2's scheduler looks at its table every
30 s under ``select_for_update`` and its finest interval is a minute, so thousands of ONCE
schedules are scanned and locked every cycle and still fire up to 30 s late. Instead a task that
no worker can pull before ``at``: the ORM broker already keeps a ``lock`` time per queued task and
dequeues only tasks whose lock is past (``django_q.brokers.orm``); ``DelayedOrmBroker`` writes that
lock in the future. A parked run is one such row: no worker, no thread, no schedule scan.

Tasks are named by their dotted path (``runs.tasks.run_task``), so this module imports no task
module: the layers stay one-way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.tasks import async_task

RUN_TASK = "runs.tasks.run_task"


class DelayedOrmBroker(ORM):
    """The ORM broker, enqueueing a task that stays invisible to ``dequeue`` until ``visible_at``."""

    def __init__(self, visible_at: datetime) -> None:
        super().__init__(list_key=Conf.CLUSTER_NAME)
        self.visible_at = visible_at

    def enqueue(self, task: str) -> Any:
        package = self.get_connection().create(key=self.list_key, payload=task, lock=self.visible_at)
        return package.pk


def task_enqueue_at(func: str, *args: Any, at: datetime | None, task_name: str | None = None) -> None:
    """Queue ``func(*args)`` for a worker, not before ``at`` (now when None or past). Immediately:
    call it from ``transaction.on_commit`` when the task reads rows of the current transaction."""
    kwargs: dict[str, Any] = {}
    if task_name:
        kwargs["task_name"] = task_name[:100]
    if at is not None and at > timezone.now() and not Conf.SYNC:
        kwargs["broker"] = DelayedOrmBroker(at)
    async_task(func, *args, **kwargs)


def run_enqueue(run_id: Any, *, at: datetime | None = None) -> None:
    """Queue ``runs.tasks.run_task`` for a run (not before ``at``) once the current transaction, if
    any, commits: the worker must find the row it was woken for."""
    name = f"{'wake' if at is not None else 'run'}:{run_id}"
    transaction.on_commit(lambda: task_enqueue_at(RUN_TASK, str(run_id), at=at, task_name=name))
