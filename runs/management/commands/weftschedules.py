"""``manage.py weftschedules``: register the django-q2 schedule that keeps the durable tick running
(reaper, schedule triggers, batches; see ``runs.scheduling``) and start the tick chain. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from runs.scheduling import TICK_FUNC, schedules_ensure
from runs.taskqueue import task_enqueue_at


class Command(BaseCommand):
    help = "Register Weft's periodic durable tick with django-q2 (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        schedules_ensure()
        task_enqueue_at(TICK_FUNC, at=None, task_name="durable-tick")
        self.stdout.write("durable tick scheduled")
