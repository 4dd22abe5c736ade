"""1,000 async runs parked on a one-minute delay with a single worker: all finish, and none held
the worker while it waited (a real ``manage.py qcluster`` on the test database).

In its own module so that the parallel test run can give its minute of waiting a worker of its own.
"""

from __future__ import annotations

import time

import pytest

from runs.models import Run, RunEvent
from tests.conftest import published_make
from tests.durable.helpers import cluster, delay_graph, runs_bulk, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_1000_runs_parked_on_a_one_minute_delay_finish_on_one_worker_without_holding_it(team_a):
    """With one worker, 1,000 one-minute waits would take 1,000 minutes if a wait held the worker."""
    workflow = published_make(team_a, delay_graph(60))
    ids = runs_bulk(workflow, 1000)
    started = time.monotonic()
    with cluster(workers=1):
        # Every run parks within the first minute (each takes a few milliseconds of the worker).
        wait_for(lambda: RunEvent.objects.filter(run_id__in=ids, type="run_waiting").count() == 1000, timeout=120,
                 step=0.5, what="all parked")
        # Parked runs hold nothing: at most one run (the one on the only worker) is running.
        assert Run.objects.filter(pk__in=ids, status="running").count() <= 1
        wait_for(lambda: Run.objects.filter(pk__in=ids, status="succeeded").count() == 1000, timeout=240,
                 step=0.5, what="all finished")
    wall = time.monotonic() - started
    # Each run waited its minute off the worker: the waits add up to 1,000 minutes in < 3 minutes.
    parked, resumed = {}, {}
    for run_id, type_, created in RunEvent.objects.filter(run_id__in=ids, type__in=["run_waiting", "run_resumed"]) \
            .values_list("run_id", "type", "created_at"):
        (parked if type_ == "run_waiting" else resumed)[run_id] = created
    waits = [(resumed[i] - parked[i]).total_seconds() for i in ids]
    assert min(waits) >= 59.0
    assert sum(waits) > 100 * wall  # impossible if waits held the single worker
    assert set(Run.objects.filter(pk__in=ids).values_list("claim_count", flat=True)) == {2}
