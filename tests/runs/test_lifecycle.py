"""The run lifecycle (``runs.lifecycle``): one way to start a run, one way to end it.

- ``run_finish`` does a run's end-of-run work exactly once whoever ends the run and however many
  callers race (the worker that executed it, the reaper's safety net, a second reaper);
- a run ended by somebody other than an executor (a stop of a pending batch run) still gets it;
- a blocking run, which has nothing to do at its end, is marked handled in its final write;
- dispatch by mode: blocking returns the ended run, async queues it, a child executes in its
  parent's thread.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from runs.lifecycle import NATIVE, run_finish, run_start
from runs.models import BatchItem, DeadLetter, Run
from runs.reaper import runs_reap
from runs.tasks import run_task
from tests.conftest import client_with_session, published_make

# Loopback is refused by the outbound policy (WEFT_HTTP_ALLOW_NETWORKS=[]): a permanent node failure.
FAILING = {"inputs": {}, "outputs": {}, "nodes": [
    {"id": "start", "type": "start"},
    {"id": "call", "type": "http", "config": {"method": "GET", "url": "http://127.0.0.1:9/"}},
    {"id": "end", "type": "end", "config": {"outputs": {}}}],
    "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}],
    "retry": {"count": 1, "interval": 3600, "backoff": "fixed"}}


def _race(*calls: Any) -> list[BaseException]:
    """Run the calls on threads released together; the errors they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def target(call: Any) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:  # noqa: BLE001 (reported to the test)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


@pytest.mark.django_db(transaction=True)
def test_a_web_ui_replay_is_finished_exactly_once_with_the_reaper_racing(team_a: Any, editor_a: Any,
                                                                         settings: Any) -> None:
    settings.WEFT_HTTP_ALLOW_NETWORKS = []
    workflow = published_make(team_a, FAILING)
    original = run_start(team=team_a, workflow=workflow, inputs={}, mode="blocking", origin=NATIVE)
    assert original.status == "failed"
    # A blocking run has no end-of-run work (no retry, no dead letter): handled in its final write.
    assert Run.objects.get(pk=original.pk).finish_handled_at is not None
    assert not Run.objects.filter(replay_of=original).exists() and not DeadLetter.objects.exists()

    web = client_with_session(editor_a)
    response = web.post(f"/runs/{original.pk}/replay")
    replay = Run.objects.get(replay_of=original, trigger="replay")
    assert response.status_code == 302 and response["Location"] == f"/runs/{replay.pk}/"
    assert (replay.mode, replay.status) == ("async", "pending")  # queued for the workers like every replay

    assert run_task(replay.pk) == "failed"  # the worker executes it; its executor finishes it
    retry = Run.objects.get(replay_of=replay, trigger="retry")
    assert retry.status == "waiting" and retry.wake_at > timezone.now() + timedelta(minutes=59)
    assert Run.objects.get(pk=replay.pk).finish_handled_at is not None

    # The reaper's safety net, run now and later, and a late second call find nothing left to do.
    later = timezone.now() + timedelta(minutes=5)
    assert runs_reap(now=later)["endings"] == 0
    assert run_finish(Run.objects.get(pk=replay.pk)) is None
    assert Run.objects.filter(replay_of=replay).count() == 1 and not DeadLetter.objects.exists()

    # A process that died between the final write and the end-of-run work leaves the run ended and
    # unhandled (and no retry); then the reapers of two clusters and a late worker race for it.
    Run.objects.filter(pk=retry.pk).delete()
    Run.objects.filter(pk=replay.pk).update(finish_handled_at=None, finished_at=timezone.now() - timedelta(minutes=1))
    ended = Run.objects.get(pk=replay.pk)
    errors = _race(lambda: runs_reap(now=timezone.now()), lambda: runs_reap(now=timezone.now()),
                   lambda: run_finish(ended), lambda: run_finish(ended))
    assert errors == []
    retry = Run.objects.get(replay_of=replay, trigger="retry")  # exactly one
    assert Run.objects.get(pk=replay.pk).finish_handled_at is not None

    # The retry's attempt fails too: retries used up, the dead-letter list, once.
    Run.objects.filter(pk=retry.pk).update(wake_at=timezone.now())
    assert run_task(retry.pk) == "failed"
    assert run_finish(Run.objects.get(pk=retry.pk)) is None
    letter = DeadLetter.objects.get()
    assert (letter.run_id, letter.reason, letter.attempts) == (retry.pk, "retries_exhausted", 2)
    assert not Run.objects.filter(replay_of=retry).exists()


@pytest.mark.django_db(transaction=True)
def test_stopping_a_pending_batch_run_finishes_it_and_starts_the_next_item(client_a: Any, team_a: Any) -> None:
    workflow = published_make(team_a)
    submitted = client_a.post("/api/v1/offline/submit", {
        "jobId": "stop-1", "workflowId": str(workflow.pk), "items": [{"name": "a"}, {"name": "b"}],
        "concurrency": 1}, format="json")
    assert submitted.status_code == 202
    first, second = BatchItem.objects.filter(job__job_id="stop-1").order_by("index")
    assert first.status == "running" and first.run is not None and second.run is None
    # No worker has taken the first run yet: the stop ends it here, and its ending is handled here.
    assert client_a.post(f"/api/v1/runs/{first.run_id}/stop").json()["status"] == "stopped"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "stopped"
    assert second.status == "running" and second.run is not None and second.run.trigger == "batch"
    assert Run.objects.get(pk=first.run_id).finish_handled_at is not None


@pytest.mark.django_db(transaction=True)
def test_an_async_run_is_recorded_and_queued_not_executed(team_a: Any) -> None:
    workflow = published_make(team_a)
    run = run_start(team=team_a, workflow=workflow, inputs={"name": "q"}, mode="async", origin=NATIVE)
    assert run.status == "pending" and run.claim_count == 0 and run.worker == ""
    assert OrmQ.objects.count() == 1
    assert run_task(run.pk) == "succeeded"
    assert Run.objects.get(pk=run.pk).finish_handled_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_child_run_executes_in_its_parent_and_is_finished(team_a: Any) -> None:
    child = published_make(team_a)
    parent = published_make(team_a, {
        "inputs": {}, "outputs": {"greeting": {"type": "string"}},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "sub", "type": "workflow", "config": {"workflow": str(child.pk), "inputs": {"name": "kid"}}},
                  {"id": "end", "type": "end", "config": {"outputs": {"greeting": "{{ sub.greeting }}"}}}],
        "edges": [{"from": "start", "to": "sub"}, {"from": "sub", "to": "end"}]}, app=child.app)
    ended = run_start(team=team_a, workflow=parent, inputs={}, mode="blocking", origin=NATIVE)
    assert ended.status == "succeeded", ended.error
    kid = Run.objects.get(parent_run=ended)
    assert (kid.status, kid.trigger, kid.mode, kid.claim_count) == ("succeeded", "child", "blocking", 1)
    assert kid.finish_handled_at is not None
