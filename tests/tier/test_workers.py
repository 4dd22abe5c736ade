"""The execution tier in django-q2 workers (a real ``manage.py qcluster``): each worker executes its
runs in an executor process of its own, so a run that segfaults or burns CPU ends ``failed`` with
``executor_crashed`` / ``limit_exceeded`` while the worker lives on, and the reaper never hands it
to another worker. And the reaper's side, in process: a crashed claim is not a lost lease.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from runs.models import Run, RunEvent
from runs.reaper import runs_reap
from runs.services import run_create
from runs.taskqueue import run_enqueue
from tests.conftest import published_make
from tests.durable.helpers import cluster, wait_for
from tests.tier.test_attacks import assert_records_complete, graph_with

WORKER_ENV = {"WEFT_EXTRA_NODE_MODULES": "tests.support.hostile_nodes", "WEFT_EXECUTOR_CPU_SECONDS": "2",
              "WEFT_LOG_LEVEL": "WARNING", "WEFT_Q_LOG_LEVEL": "WARNING"}
FINAL = ("succeeded", "failed", "cancelled", "timeout")


def ended(proc: Any, run: Run, timeout: float, what: str) -> Run:
    """Wait for the run to end; when it does not, fail with its state and the cluster's log."""
    try:
        wait_for(lambda: Run.objects.get(pk=run.pk).status in FINAL, timeout=timeout, what=what)
    except AssertionError:
        state = Run.objects.filter(pk=run.pk).values("status", "worker", "claim_count", "claim_fate", "error").first()
        raise AssertionError(f"{what}: not ended in {timeout} s; run {state}; cluster log:\n{proc.log_tail()}") from None
    run.refresh_from_db()
    return run


def async_run(workflow: Any) -> Run:
    """A pending async run written directly: this process does not know the hostile node types
    (only the cluster does), so it cannot validate the run's version through ``run_create``."""
    now = timezone.now()
    return Run.objects.create(team=workflow.team, app=workflow.app, workflow=workflow, version=workflow.active_version,
                              mode="async", inputs={}, business_time=now, deadline=now + timedelta(hours=1))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_that_crash_or_overrun_their_executor_end_once_and_the_worker_lives_on(team_a: Any) -> None:
    crash = published_make(team_a, graph_with({"id": "crash", "type": "test_segfault"}))
    burn = published_make(team_a, graph_with({"id": "burn", "type": "test_burn", "config": {"size": 40}}))
    fine = published_make(team_a, graph_with({"id": "pid", "type": "test_pid"}))
    with cluster(workers=1, **WORKER_ENV) as proc:
        crashed = async_run(crash)
        burnt = async_run(burn)
        run_enqueue(crashed.pk)
        run_enqueue(burnt.pk)
        wait_for(lambda: Run.objects.filter(pk__in=[crashed.pk, burnt.pk], status="failed").count() == 2,
                 timeout=90, what="both attacks ended")
        crashed.refresh_from_db()
        burnt.refresh_from_db()
        worker_pid = int(crashed.worker.rsplit(":", 1)[1])
        assert alive(worker_pid)  # the worker that claimed it was not taken down
        # Several reaper passes (lease 2 s, tick 1 s): neither run is claimed again.
        after = async_run(fine)
        run_enqueue(after.pk)
        done = ended(proc, after, 180, "a run after them")
        assert done.status == "succeeded", (done.error, proc.log_tail())
        time.sleep(5)
    for run, code in ((crashed, "executor_crashed"), (burnt, "limit_exceeded")):
        run.refresh_from_db()
        assert_records_complete(run, code)
        assert RunEvent.objects.filter(run=run, type="run_started").count() == 1
        assert not RunEvent.objects.filter(run=run, type="run_resumed").exists()
    assert crashed.claim_fate == "crashed" and burnt.claim_fate == "limit"
    assert Run.objects.get(pk=after.pk).worker == crashed.worker  # the same worker, still serving


@pytest.mark.django_db
def test_the_reaper_ends_a_crashed_claim_and_requeues_a_lost_lease(team_a: Any) -> None:
    workflow = published_make(team_a)
    past = timezone.now() - timedelta(seconds=5)
    crashed = run_create(team=team_a, workflow=workflow, inputs={"name": "x"}, mode="async")
    lost = run_create(team=team_a, workflow=workflow, inputs={"name": "y"}, mode="async")
    Run.objects.filter(pk__in=[crashed.pk, lost.pk]).update(status="running", worker="gone:1", claim_count=1,
                                                            lease_expires_at=past, started_at=past)
    Run.objects.filter(pk=crashed.pk).update(claim_fate="crashed")  # its owner died before ending it
    runs_reap()
    crashed.refresh_from_db()
    lost.refresh_from_db()
    assert crashed.status == "failed" and crashed.error["code"] == "executor_crashed" and crashed.claim_count == 1
    assert list(RunEvent.objects.filter(run=crashed).values_list("type", flat=True)) == ["run_finished"]
    assert (lost.status, lost.claim_fate, lost.worker) == ("pending", "lost", "")
