"""Durable execution with real worker clusters (``manage.py qcluster`` subprocesses on the test
database): kill -9 and resume, a run whose worker never comes back, two clusters sharing 2,000
runs, a schedule after downtime, a 500-item batch (1,000 parked runs: ``test_parking.py``).

Leases are 2 s and the durable tick 1 s here (``FAST_ENV``), so recovery takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Count
from django.utils import timezone
from standardwebhooks import Webhook

from runs.models import DeadLetter, NodeRun, Run, RunEvent
from runs.scheduling import schedules_ensure
from runs.services import run_create
from runs.taskqueue import run_enqueue
from tests.conftest import published_make
from tests.durable.helpers import cluster, runs_bulk, wait_for
from tests.engine.http_servers import Reply, scripted_server
from tests.support.processes import stop
from workflows.models import Trigger

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def http_graph(server: Any) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "first", "type": "http", "config": {"method": "POST", "url": server.url("/first")}},
            {"id": "second", "type": "http", "config": {"method": "POST", "url": server.url("/second")}, "timeout": 60},
            {"id": "end", "type": "end", "config": {"outputs": {"a": "{{ first.body.ok }}", "b": "{{ second.body.ok }}"}}},
        ],
        "edges": [{"from": "start", "to": "first"}, {"from": "first", "to": "second"}, {"from": "second", "to": "end"}],
    }


def test_kill9_of_a_cluster_mid_run_then_another_cluster_completes_it_exactly_once(team_a):
    with scripted_server() as server:
        server.route("/first", Reply(200, {"ok": 1}))
        calls = {"n": 0}

        def second(request: Any) -> Reply:
            calls["n"] += 1
            return Reply(200, {"ok": 2}, delay=30 if calls["n"] == 1 else 0)

        server.route("/second", second)
        workflow = published_make(team_a, http_graph(server))
        run = run_create(team=team_a, workflow=workflow, inputs={}, mode="async")
        with cluster(workers=1) as first_cluster:
            run_enqueue(run.pk)
            wait_for(lambda: calls["n"] == 1, timeout=30, what="the slow call")
            stop(first_cluster, kill=True)  # kill -9 mid-run
        killed = Run.objects.get(pk=run.pk)
        assert (killed.status, killed.claim_count) == ("running", 1)
        assert NodeRun.objects.get(run=run, node_id="first").status == "succeeded"
        with cluster(workers=1):
            wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded", timeout=40, what="resumed run")
        done = Run.objects.get(pk=run.pk)
        assert done.outputs == {"a": 1, "b": 2} and done.claim_count == 2
        paths = [r.path for r in server.requests]
        assert paths.count("/first") == 1  # finished before the kill: never sent again
        assert paths.count("/second") == 2  # interrupted: sent again...
        tokens = {r.header("Weft-Receipt-Token") for r in server.requests if r.path == "/second"}
        assert len(tokens) == 1  # ...with the same receipt token
        types = Counter(RunEvent.objects.filter(run=run).values_list("type", flat=True))
        assert types["run_started"] == 1 and types["run_resumed"] == 1 and types["run_finished"] == 1
        assert NodeRun.objects.filter(run=run, node_id="first").count() == 1


def test_a_run_whose_worker_never_comes_back_ends_on_the_dead_letter_list(team_a):
    with scripted_server() as server:
        server.route("/first", Reply(200, {"ok": 1}))
        server.route("/second", Reply(200, {"ok": 2}, delay=30))  # every attempt hangs: its worker is killed
        workflow = published_make(team_a, http_graph(server))
        run = run_create(team=team_a, workflow=workflow, inputs={}, mode="async")
        killed: list[int] = []
        with cluster(workers=2):
            run_enqueue(run.pk)
            for claim in (1, 2, 3):
                wait_for(lambda claim=claim: sum(r.path == "/second" for r in server.requests) == claim, timeout=30,
                         what=f"attempt {claim}")
                worker = Run.objects.get(pk=run.pk).worker  # "host:pid" of the executing worker process
                pid = int(worker.rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)  # django-q2 starts a fresh worker; this one never comes back
                killed.append(pid)
            wait_for(lambda: DeadLetter.objects.filter(run=run).exists(), timeout=30, what="dead letter")
        run.refresh_from_db()
        assert run.status == "failed" and run.claim_count == 3 and len(set(killed)) == 3
        assert run.error == {"code": "max_claims", "message": "the run's worker was lost 3 times (limit 3)"}
        letter = DeadLetter.objects.get(run=run)
        assert letter.reason == "max_claims" and letter.detail["code"] == "max_claims"
        assert RunEvent.objects.filter(run=run).order_by("-seq").first().type == "run_finished"
        assert sum(r.path == "/first" for r in server.requests) == 1


def test_two_clusters_execute_2000_async_runs_each_exactly_once(team_a):
    workflow = published_make(team_a)
    ids = runs_bulk(workflow, 2000, inputs={"name": "x"})
    with cluster(workers=2), cluster(workers=2):
        wait_for(lambda: Run.objects.filter(pk__in=ids, status="succeeded").count() == 2000, timeout=150,
                 step=0.5, what="2000 runs")
    started = RunEvent.objects.filter(run_id__in=ids, type="run_started").values("run_id").annotate(n=Count("id"))
    assert {row["n"] for row in started} == {1} and len(started) == 2000
    assert set(Run.objects.filter(pk__in=ids).values_list("claim_count", flat=True)) == {1}
    assert not RunEvent.objects.filter(run_id__in=ids, type="run_resumed").exists()
    by_worker = Counter(Run.objects.filter(pk__in=ids).values_list("worker", flat=True))
    assert len(by_worker) >= 2, by_worker  # both clusters took part


def test_a_schedule_missed_for_several_slots_fires_once_on_restart(team_a):
    graph = {"inputs": {}, "outputs": {}, "nodes": [
        {"id": "start", "type": "start"},
        {"id": "end", "type": "end", "config": {"outputs": {"day": "$[yyyyMMdd-1]"}}}],
        "edges": [{"from": "start", "to": "end"}]}
    workflow = published_make(team_a, graph)
    now = timezone.now()
    # The platform was down for four days: four daily 00:00 slots were missed.
    trigger = Trigger.objects.create(team=team_a, workflow=workflow, kind="schedule", cron="0 0 * * *",
                                     time_zone="UTC", key="missed", next_fire_at=now - timedelta(days=4))
    schedules_ensure()
    with cluster(workers=1):
        run = wait_for(lambda: Run.objects.filter(trigger="schedule", status="succeeded").first(), timeout=30,
                       what="scheduled run")
        time.sleep(3)  # several more ticks: no catch-up runs
    assert Run.objects.filter(trigger="schedule").count() == 1
    slot = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert run.business_time == slot
    assert run.outputs == {"day": (slot - timedelta(days=1)).strftime("%Y%m%d")}
    trigger.refresh_from_db()
    assert trigger.next_fire_at == slot + timedelta(days=1)


def test_a_500_item_batch_with_failures_lists_every_item_and_calls_back_signed(client_a, team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]  # the callback receiver is local (checked at submit)
    graph = {
        "inputs": {"n": {"type": "integer", "required": True}}, "outputs": {},
        "nodes": [{"id": "start", "type": "start"},
                  # n divisible by 7 divides by zero: those items fail.
                  {"id": "calc", "type": "transform", "config": {"mapping": {"q": "{{ 700 / (inputs.n % 7) }}"}}},
                  {"id": "end", "type": "end", "config": {"outputs": {"q": "{{ calc.q }}"}}}],
        "edges": [{"from": "start", "to": "calc"}, {"from": "calc", "to": "end"}],
    }
    workflow = published_make(team_a, graph)
    with scripted_server() as receiver:
        attempts = {"n": 0}

        def callback(request: Any) -> Reply:
            attempts["n"] += 1
            return Reply(503 if attempts["n"] == 1 else 200, {})  # the first delivery fails: retried

        receiver.route("/done", callback)
        items = [{"n": i, "label": f"item-{i}"} for i in range(500)]
        response = client_a.post("/api/v1/offline/submit", {
            "jobId": "job_500", "workflowId": str(workflow.pk), "items": items, "concurrency": 25,
            "callbackUrl": receiver.url("/done")}, format="json")
        assert response.status_code == 202, response.content
        with cluster(workers=2, WEFT_CALLBACK_BACKOFF="1"):
            wait_for(lambda: attempts["n"] >= 2, timeout=120, step=0.5, what="callback delivered")
            # The worker records the delivery after the receiver has answered: wait for that record
            # before the cluster is stopped (the stop raced it under load).
            wait_for(lambda: client_a.get("/api/v1/offline/jobs/job_500").json()["callback"]["delivered"],
                     timeout=30, step=0.2, what="callback recorded as delivered")
        delivered = [r for r in receiver.requests if r.path == "/done"]
        assert len(delivered) == 2
        team_a.refresh_from_db()
        body = Webhook(team_a.webhook_secret).verify(delivered[-1].body, delivered[-1].headers)
        assert body == {"jobId": "job_500", "status": "partial",
                        "resultUrl": "http://127.0.0.1:8000/api/v1/offline/jobs/job_500/result.csv"}
        assert delivered[0].header("webhook-id") == delivered[1].header("webhook-id")  # same message, retried
    job = client_a.get("/api/v1/offline/jobs/job_500").json()
    failing = {i for i in range(500) if i % 7 == 0}
    assert job["status"] == "partial" and job["counts"] == {
        "total": 500, "pending": 0, "running": 0, "succeeded": 500 - len(failing), "failed": len(failing)}
    assert job["callback"]["delivered"] is True and job["callback"]["attempts"] == 2
    csv_response = client_a.get("/api/v1/offline/jobs/job_500/result.csv")
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert [int(r["index"]) for r in rows] == list(range(500))
    assert list(rows[0]) == ["index", "n", "label", "status", "runId", "outputs", "error", "errorCode"]
    for row in rows:
        n = int(row["n"])
        assert row["label"] == f"item-{n}"
        if n in failing:
            assert row["status"] == "failed" and row["error"] and row["outputs"] == ""
        else:
            assert row["status"] == "succeeded" and json.loads(row["outputs"]) == {"q": 700 // (n % 7)}
    # Concurrency stayed bounded: a run is created when a slot frees, so at most 25 were open at once.
    edges = []
    for created, finished in Run.objects.filter(trigger="batch").values_list("created_at", "finished_at"):
        edges += [(created, 1), (finished, -1)]
    open_runs = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        open_runs += step
        peak = max(peak, open_runs)
    assert 1 < peak <= 25
