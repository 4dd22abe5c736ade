"""django-q2 tasks: execute async runs (and resume parked ones), the periodic durable pass, batch
callbacks. Thin: they call the executor and the services."""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections, transaction


def run_task(run_id: Any) -> str | None:
    """Claim and execute a run in a worker. A run another worker holds is left alone. A run that
    ended here gets its ending handled (workflow retry, dead letter, batch progress)."""
    from runs.endings import run_ended
    from runs.executor import run_execute

    close_old_connections()
    run = run_execute(run_id)
    if run is None:
        return None
    if run.is_final:
        run_ended(run=run)
    return run.status


def run_enqueue_now(run_id: Any) -> None:
    """Queue ``run_task`` for a run once the current transaction (if any) commits."""
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("runs.tasks.run_task", str(run_id), task_name=f"run:{run_id}"[:100]))


def durable_tick() -> bool:
    """The periodic pass (``runs.scheduling.durable_tick``): reaper, schedule triggers, batches."""
    from runs.scheduling import durable_tick as tick

    close_old_connections()
    return tick()


def batch_callback_task(job_pk: Any) -> str:
    """Deliver (or retry) a finished batch's signed callback."""
    from runs.batches import batch_callback_deliver

    close_old_connections()
    return batch_callback_deliver(job_pk=job_pk)
