"""django-q2 tasks: execute async runs (and resume parked ones), the periodic durable pass, batch
callbacks. Thin: they call the executor and the services. Tasks are queued by their dotted path
(``runs.taskqueue``)."""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections

from runs.batches import batch_callback_deliver
from runs.idempotency import idempotency_sweep
from runs.pool import run_in_worker
from runs.scheduling import durable_tick as durable_pass_tick


def run_task(run_id: Any) -> str | None:
    """Claim a run in this worker and execute it in the worker's own executor process (the same
    limits and crash handling as the web tier's pool: ``runs.pool.run_in_worker``); its ending is
    handled by the executor (workflow retry, dead letter, batch progress). A run another worker
    holds, or one already ended, is left alone."""
    close_old_connections()
    run = run_in_worker(run_id)
    return None if run is None else run.status


def durable_tick() -> bool:
    """The periodic pass (``runs.scheduling.durable_tick``): reaper, schedule triggers, batches."""
    close_old_connections()
    return durable_pass_tick()


def idempotency_sweep_task() -> int:
    """Hourly (``runs.scheduling.schedules_ensure``): delete expired idempotency keys."""
    close_old_connections()
    return idempotency_sweep()


def batch_callback_task(job_pk: Any) -> str:
    """Deliver (or retry) a finished batch's signed callback."""
    close_old_connections()
    return batch_callback_deliver(job_pk=job_pk)
