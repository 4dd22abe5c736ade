"""Helpers for the durable-execution tests: graphs, waiting, worker clusters as real processes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_q.tasks import async_task

from runs.models import Run
from tests.support.processes import qcluster, stop

# Short leases and ticks so that crash recovery happens in seconds, not minutes.
FAST_ENV = {"WEFT_LEASE_SECONDS": "2", "WEFT_TICK_SECONDS": "1", "WEFT_MAX_CLAIMS": "3",
            "WEFT_HTTP_ALLOW_NETWORKS": "127.0.0.1/32", "WEFT_Q_LOG_LEVEL": "ERROR", "WEFT_LOG_LEVEL": "ERROR"}


def wait_for(predicate: Any, timeout: float = 20.0, step: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} not reached in {timeout} s")


def delay_graph(seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": seconds}},
                  {"id": "end", "type": "end", "config": {"outputs": {"done": True}}}],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
        **extra,
    }


def echo_graph(**extra: Any) -> dict[str, Any]:
    """Outputs ``{"n": inputs.n}``; a condition sends odd ``n`` to a failing transform."""
    return {
        "inputs": {"n": {"type": "number", "required": True}}, "outputs": {},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "end", "type": "end", "config": {"outputs": {"n": "{{ inputs.n }}"}}}],
        "edges": [{"from": "start", "to": "end"}],
        **extra,
    }


@contextmanager
def cluster(workers: int = 2, **env: str) -> Iterator[subprocess.Popen[Any]]:
    """A django-q2 cluster (``manage.py qcluster``) on the test database; killed with SIGKILL after."""
    proc = qcluster(workers, **{**FAST_ENV, **env})
    try:
        yield proc
    finally:
        stop(proc, kill=True)  # SIGKILL the cluster and its workers: a crash, nothing cleaned up


def runs_bulk(workflow: Any, count: int, inputs: dict | None = None) -> list[Any]:
    """``count`` pending async runs written in one statement, each queued for a worker."""
    now = timezone.now()
    rows = [Run(team=workflow.team, app=workflow.app, workflow=workflow, version=workflow.active_version,
                mode="async", inputs=inputs or {}, business_time=now, deadline=now + timedelta(hours=1))
            for _ in range(count)]
    Run.objects.bulk_create(rows, batch_size=500)
    for run in rows:
        async_task("runs.tasks.run_task", str(run.pk))
    return [r.pk for r in rows]
