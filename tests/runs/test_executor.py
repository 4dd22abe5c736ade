"""The executor: durable runs recorded step by step, leases, resume after a kill, stop, deadlines.

Real threads, a real subprocess killed with SIGKILL and a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.executor import LeaseLost, RunHost, run_claim, run_execute, run_execute_in_thread
from runs.lifecycle import run_stop
from runs.models import NodeRun, Run, RunEvent
from runs.services import run_create
from tests.conftest import published_make
from tests.engine.http_servers import Reply, scripted_server
from tests.support.processes import python_process

DEMO_GRAPH = json.loads((Path(__file__).resolve().parents[2] / "workflows/demo/order_router.json").read_text())


def delay_graph(seconds: float) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": seconds}},
                  {"id": "end", "type": "end", "config": {"outputs": {"done": True}}}],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
    }


def chain_graph(length: int) -> dict[str, Any]:
    nodes = [{"id": "start", "type": "start"}]
    edges = []
    previous = "start"
    for i in range(length):
        nodes.append({"id": f"t{i}", "type": "transform", "config": {"mapping": {"i": i}}})
        edges.append({"from": previous, "to": f"t{i}"})
        previous = f"t{i}"
    nodes.append({"id": "end", "type": "end", "config": {"outputs": {"last": f"{{{{ {previous}.i }}}}"}}})
    edges.append({"from": previous, "to": "end"})
    return {"inputs": {}, "outputs": {}, "nodes": nodes, "edges": edges}


def wait_for(predicate: Any, timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def test_blocking_run_records_every_step_and_event_in_order(client_a, team_a):
    workflow = published_make(team_a, DEMO_GRAPH)
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk),
                                                       "params": {"order_id": "A1", "amount": 1500}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["outputs"]["route"] == "risk-review"
    assert body["outputs"]["summary"]["customer"]["email"] == "j***e@example.com"
    statuses = {n["nodeId"]: n["status"] for n in body["nodeRuns"]}
    assert statuses == {"start": "succeeded", "customer": "succeeded", "pricing": "succeeded", "merge": "succeeded",
                        "check": "succeeded", "high": "succeeded", "normal": "skipped", "end": "succeeded"}
    events = list(RunEvent.objects.filter(run_id=body["id"]).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run_started" and events[-1].type == "run_finished"
    assert events[-1].data["status"] == "succeeded"
    started = [e.data["node_id"] for e in events if e.type == "node_started"]
    finished = [e.data["node_id"] for e in events if e.type == "node_finished"]
    # Every node that ran was started before it finished; merge (the join) after both branches.
    assert set(started) == set(finished)
    assert finished.index("merge") > max(finished.index("customer"), finished.index("pricing"))
    run = Run.objects.get(pk=body["id"])
    assert run.total_steps == NodeRun.objects.filter(run=run).count() == 8
    assert run.claim_count == 1 and run.lease_expires_at is None


def test_bad_inputs_are_rejected_naming_the_field_and_write_nothing(client_a, team_a):
    workflow = published_make(team_a, DEMO_GRAPH)
    before = (Run.objects.count(), NodeRun.objects.count(), RunEvent.objects.count())
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "params": {"amount": "lots"}},
                             format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"/inputs/order_id", "/inputs/amount"}
    assert (Run.objects.count(), NodeRun.objects.count(), RunEvent.objects.count()) == before


def test_unpublished_workflow_cannot_run(client_a, team_a, workflow_factory):
    workflow = workflow_factory(team_a)
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "params": {}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "app_unavailable"
    assert Run.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_executors_racing_to_claim_exactly_one_wins(team_a):
    workflow = published_make(team_a, DEMO_GRAPH)
    for _ in range(5):
        run = run_create(team=team_a, workflow=workflow, inputs={"order_id": "A"})
        barrier = threading.Barrier(4)
        wins: list[Any] = []

        def claim(run_id: Any = run.pk, barrier: Any = barrier, wins: list[Any] = wins) -> None:
            barrier.wait()
            result = run_claim(run_id)
            if result is not None:
                wins.append(result)
            connection.close()

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1
        assert Run.objects.get(pk=run.pk).claim_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_cannot_write(team_a):
    workflow = published_make(team_a, DEMO_GRAPH)
    run = run_create(team=team_a, workflow=workflow, inputs={"order_id": "A"})
    claimed = run_claim(run.pk)
    host = RunHost(claimed, claimed.claim_count)
    # The lease expires and another worker claims the run.
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    Run.objects.filter(pk=run.pk).update(worker="other:1", claim_count=2)
    with pytest.raises(LeaseLost):
        host.write(events=[("node_started", {"node_id": "x"})])
    assert RunEvent.objects.filter(run=run).count() == 0


@pytest.mark.django_db(transaction=True)
def test_stop_ends_a_running_run_within_a_second(team_a):
    workflow = published_make(team_a, delay_graph(30))
    run = run_create(team=team_a, workflow=workflow, inputs={})
    thread = run_execute_in_thread(run.pk)
    wait_for(lambda: NodeRun.objects.filter(run=run, node_id="wait", status="running").exists())
    started = time.monotonic()
    run_stop(team=team_a, run=Run.objects.get(pk=run.pk))
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "stopped", timeout=5, step=0.01)
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert NodeRun.objects.get(run=run, node_id="wait").status == "stopped"
    assert not NodeRun.objects.filter(run=run, node_id="end").exclude(status="skipped").exists()
    assert RunEvent.objects.filter(run=run).order_by("-seq").first().type == "run_finished"


@pytest.mark.django_db(transaction=True)
def test_stop_of_a_pending_run_ends_it_at_once(team_a):
    workflow = published_make(team_a, delay_graph(30))
    run = run_create(team=team_a, workflow=workflow, inputs={})
    stopped = run_stop(team=team_a, run=run)
    assert stopped.status == "stopped"
    assert run_execute(run.pk) is None  # nothing left to claim
    assert [e.type for e in RunEvent.objects.filter(run=run)] == ["run_finished"]


@pytest.mark.django_db(transaction=True)
def test_a_run_past_its_deadline_ends_as_timeout(team_a):
    workflow = published_make(team_a, delay_graph(30))
    run = run_create(team=team_a, workflow=workflow, inputs={}, deadline_seconds=0.5)
    started = time.monotonic()
    finished = run_execute(run.pk)
    assert finished.status == "timeout"
    assert time.monotonic() - started < 3


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_mid_way_resumes_without_rerunning_finished_nodes(team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]
    with scripted_server() as server:
        server.route("/first", Reply(200, {"ok": 1}))
        # The second call is slow the first time: the process running the run is killed during it.
        calls = {"n": 0}

        def second(request: Any) -> Reply:
            calls["n"] += 1
            return Reply(200, {"ok": 2}, delay=30 if calls["n"] == 1 else 0)

        server.route("/second", second)
        graph = {
            "inputs": {}, "outputs": {},
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "first", "type": "http", "config": {"method": "POST", "url": server.url("/first")}},
                {"id": "second", "type": "http", "config": {"method": "POST", "url": server.url("/second")},
                 "timeout": 60},
                {"id": "end", "type": "end", "config": {"outputs": {"a": "{{ first.body.ok }}", "b": "{{ second.body.ok }}"}}},
            ],
            "edges": [{"from": "start", "to": "first"}, {"from": "first", "to": "second"}, {"from": "second", "to": "end"}],
        }
        workflow = published_make(team_a, graph)
        run = run_create(team=team_a, workflow=workflow, inputs={}, mode="async")
        proc = python_process(f"from runs.executor import run_execute; run_execute({str(run.pk)!r})",
                              WEFT_HTTP_ALLOW_NETWORKS="127.0.0.1/32")
        try:
            wait_for(lambda: calls["n"] == 1, timeout=20)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        killed = Run.objects.get(pk=run.pk)
        assert killed.status == "running" and killed.claim_count == 1
        assert NodeRun.objects.get(run=run, node_id="first").status == "succeeded"
        # The lease runs out; the next executor claims the run and resumes it.
        Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        resumed = run_execute(run.pk)
        assert resumed.status == "succeeded", resumed.error
        assert resumed.outputs == {"a": 1, "b": 2}
        assert resumed.claim_count == 2
        paths = [r.path for r in server.requests]
        assert paths.count("/first") == 1  # finished before the kill: never sent again
        assert paths.count("/second") == 2  # interrupted: sent again, with the same receipt token
        tokens = {r.header("Weft-Receipt-Token") for r in server.requests if r.path == "/second"}
        assert len(tokens) == 1
        events = [e.type for e in RunEvent.objects.filter(run=run).order_by("seq")]
        assert events[0] == "run_started" and "run_resumed" in events and events[-1] == "run_finished"


def delay_chain_graph(length: int) -> dict[str, Any]:
    graph = chain_graph(0)
    previous = "start"
    graph["nodes"] = [graph["nodes"][0]]
    graph["edges"] = []
    for i in range(length):
        graph["nodes"].append({"id": f"d{i}", "type": "delay", "config": {"mode": "fixed", "seconds": 0}})
        graph["edges"].append({"from": previous, "to": f"d{i}"})
        previous = f"d{i}"
    graph["nodes"].append({"id": "end", "type": "end", "config": {"outputs": {}}})
    graph["edges"].append({"from": previous, "to": "end"})
    return graph


def run_queries(team: Any, graph: dict[str, Any]) -> int:
    workflow = published_make(team, graph)
    run_execute(run_create(team=team, workflow=workflow, inputs={}).pk)  # warm the compiled-version cache
    run = run_create(team=team, workflow=workflow, inputs={})
    with CaptureQueriesContext(connection) as queries:
        finished = run_execute(run.pk)
    assert finished.status == "succeeded", finished.error
    return len(queries)


@pytest.mark.django_db(transaction=True)
def test_query_count_of_a_run_is_bounded(team_a):
    """Writes are batched per scheduler step. A chain of pure inline nodes (transforms) is one step
    whatever its length. A node with effects (here a delay) costs two steps, its start and its
    result, each committed before anything depends on it: BEGIN, the lease-checked run update, one
    node-run upsert, one event insert, COMMIT."""
    inline = {n: run_queries(team_a, chain_graph(n)) for n in (5, 40)}
    assert inline[5] <= 20 and inline[40] <= inline[5] + 2, inline  # +2: SQLite splits a bulk insert
    effects = {n: run_queries(team_a, delay_chain_graph(n)) for n in (5, 25)}
    assert (effects[25] - effects[5]) / 20 <= 10, effects


@pytest.mark.django_db(transaction=True)
def test_a_claim_takes_only_claimable_runs_and_returns_the_claimed_row(team_a):
    """One statement claims and returns the row: exactly what the ORM then reads (claim count up,
    this worker's lease, started once), the team loaded; runs that are not claimable stay as they were."""
    workflow = published_make(team_a, DEMO_GRAPH)
    now = timezone.now()
    past, future = now - timedelta(seconds=5), now + timedelta(hours=1)
    claimable = {
        "pending": {"status": "pending"},
        "waiting and due": {"status": "waiting", "wake_at": past},
        "waiting, stop requested": {"status": "waiting", "wake_at": None, "stop_requested_at": past},
        "lease expired": {"status": "running", "lease_expires_at": past, "claim_count": 1, "started_at": past},
    }
    not_claimable = {
        "waiting, not due": {"status": "waiting", "wake_at": future},
        "waiting for a callback": {"status": "waiting", "wake_at": None},
        "lease held": {"status": "running", "lease_expires_at": future, "claim_count": 1},
        "succeeded": {"status": "succeeded"},
    }
    for label, state in {**claimable, **not_claimable}.items():
        run = run_create(team=team_a, workflow=workflow, inputs={"order_id": "A"})
        Run.objects.filter(pk=run.pk).update(**state)
        before = Run.objects.get(pk=run.pk)
        with CaptureQueriesContext(connection) as queries:
            claimed = run_claim(str(run.pk))
        after = Run.objects.get(pk=run.pk)
        if label in not_claimable:
            assert claimed is None, label
            assert {f.attname: getattr(after, f.attname) for f in Run._meta.concrete_fields} == \
                {f.attname: getattr(before, f.attname) for f in Run._meta.concrete_fields}, label
            continue
        assert claimed is not None, label
        assert {f.attname: getattr(claimed, f.attname) for f in Run._meta.concrete_fields} == \
            {f.attname: getattr(after, f.attname) for f in Run._meta.concrete_fields}, label
        assert (after.status, after.claim_count, after.wake_at, after.claim_fate) == \
            ("running", before.claim_count + 1, None, ""), label
        assert after.lease_expires_at > now and after.heartbeat_at >= now, label
        assert after.started_at == (before.started_at or after.heartbeat_at), label
        assert len(queries) == 2, label  # the claim, the team
        with CaptureQueriesContext(connection) as more:
            assert claimed.team.pk == team_a.pk
        assert len(more) == 0, label
