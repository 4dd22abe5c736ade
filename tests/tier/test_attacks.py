"""The execution tier on real processes: a Daphne (``tests.support.processes.daphne``) that brings up
its own executor pool, attacked by one team while another team's requests are timed.

Each attack (CPU burnt in C with the GIL held, a segfault, a memory blow-up, an abrupt exit) runs
through the public run API of team A; meanwhile team B calls ``GET /api/v1/apps`` and runs its own
workflow. Asserted: the attack's run ends ``failed`` with the right code, the web process answers
team B within ``OTHER_TEAM_BOUND_S`` throughout (its runs succeed, within ``OTHER_TEAM_RUN_BOUND_S``), the web process's memory stays put, the run's
records are complete (no node run left running, ``run_finished`` last, sequence without a gap),
the run was claimed once and the dead executor was replaced.

Limits here: 2 s of CPU, 300 MB of memory, 2 warm executors (at most 4).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from accounts.models import ALL_SCOPES
from accounts.services import token_create
from runs.models import NodeRun, Run, RunEvent
from tests.conftest import app_make, published_make, unique, workflow_make
from tests.runs.conftest import sse_read
from tests.support.processes import Process, daphne
from workflows.models import App, Workflow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OTHER_TEAM_BOUND_S = 1.0
# Team B's own blocking runs during an attack share the cores with the attacking executor and with
# the replacement executor starting up (a Python process setting Django up: about 1.5 s of CPU); on
# this shared 2-core machine under a load of 15-18 they took up to 6 s. They must succeed; this bound
# only catches a run that hangs (the 1 s bound is on team B's requests, OTHER_TEAM_BOUND_S).
OTHER_TEAM_RUN_BOUND_S = 15.0
CPU_LIMIT_S = 2
MEMORY_LIMIT_MB = 300
TIER_ENV = {
    "WEFT_EXTRA_NODE_MODULES": "tests.support.hostile_nodes", "WEFT_EXECUTORS": "2", "WEFT_EXECUTORS_MAX": "4",
    "WEFT_EXECUTOR_CPU_SECONDS": str(CPU_LIMIT_S), "WEFT_EXECUTOR_MEMORY_MB": str(MEMORY_LIMIT_MB),
    "WEFT_RATE_LIMIT_PER_MINUTE": "0", "WEFT_TEAM_RATE_LIMIT_PER_MINUTE": "0", "WEFT_LOG_LEVEL": "ERROR",
}


def graph_with(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {},
        "nodes": [{"id": "start", "type": "start"}, node,
                  {"id": "end", "type": "end", "config": {"outputs": {"ok": True}}}],
        "edges": [{"from": "start", "to": node["id"]}, {"from": node["id"], "to": "end"}],
    }


GREETING = {
    "inputs": {"name": {"type": "string", "required": True}}, "outputs": {},
    "nodes": [{"id": "start", "type": "start"},
              {"id": "end", "type": "end", "config": {"outputs": {"greeting": "Hello {{ inputs.name }}"}}}],
    "edges": [{"from": "start", "to": "end"}],
}


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[tuple[Process, str]]:
    with daphne(**TIER_ENV) as (proc, url):
        requests.get(f"{url}/api/v1/apps", timeout=30)  # a fresh server loads its URLconf on first use
        wait_executors(proc.pid, 2)
        yield proc, url


def executors_of(pid: int) -> list[int]:
    """Executor processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and b"runs.executor_process" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_executors(pid: int, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = executors_of(pid)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} executors of {pid} not seen: {executors_of(pid)}")


class OtherTeam:
    """Team B's traffic during an attack: ``GET /api/v1/apps`` and a blocking run, timed, in a loop."""

    def __init__(self, url: str, token: str, workflow_id: str) -> None:
        self.url, self.workflow_id = url, workflow_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.latencies: list[float] = []
        self.runs: list[tuple[float, int, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            response = self.session.get(f"{self.url}/api/v1/apps", timeout=30)
            self.latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            started = time.monotonic()
            response = self.session.post(f"{self.url}/api/v1/workflows/run", timeout=30,
                                         json={"workflowId": self.workflow_id, "params": {"name": "B"}})
            self.runs.append((time.monotonic() - started, response.status_code,
                              (response.json().get("outputs") or {}).get("greeting", "")))
            time.sleep(0.05)

    def __enter__(self) -> OtherTeam:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def assert_served(self) -> None:
        assert self.latencies and self.runs, "team B sent nothing during the attack"
        assert max(self.latencies) < OTHER_TEAM_BOUND_S, self.latencies
        assert all(status == 200 and greeting == "Hello B" for _, status, greeting in self.runs), self.runs
        assert max(seconds for seconds, _, _ in self.runs) < OTHER_TEAM_RUN_BOUND_S, self.runs


@pytest.fixture
def teams(server: tuple[Process, str], team_a: Any, team_b: Any) -> dict[str, Any]:
    _, token_a = token_create(team=team_a, name=unique("a"), scopes=list(ALL_SCOPES))
    _, token_b = token_create(team=team_b, name=unique("b"), scopes=list(ALL_SCOPES))
    greeting = published_make(team_b, GREETING, app=app_make(team_b))
    return {"a": team_a, "token_a": token_a, "token_b": token_b, "greeting_b": str(greeting.pk)}


def attack(url: str, token: str, team: Any, node: dict[str, Any], *, mode: str = "blocking") -> tuple[Any, float]:
    workflow = published_make(team, graph_with(node), app=app_make(team))
    started = time.monotonic()
    response = requests.post(f"{url}/api/v1/workflows/run", headers={"Authorization": f"Bearer {token}"},
                             json={"workflowId": str(workflow.pk), "params": {}, "mode": mode}, timeout=120)
    return response, time.monotonic() - started


def assert_records_complete(run: Run, code: str) -> None:
    assert run.status == "failed" and run.error["code"] == code, run.error
    assert run.claim_count == 1 and run.finished_at is not None and run.lease_expires_at is None
    assert not NodeRun.objects.filter(run=run, status__in=["running", "waiting"]).exists()
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type"))
    assert [s for s, _ in seqs] == list(range(1, len(seqs) + 1))
    assert seqs[-1][1] == "run_finished" and [t for _, t in seqs].count("run_finished") == 1


def test_a_blocking_run_executes_in_an_executor_process_of_the_web_process(server, teams) -> None:
    proc, url = server
    executors = wait_executors(proc.pid, 2)
    response, _ = attack(url, teams["token_a"], teams["a"], {"id": "pid", "type": "test_pid"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    pid = NodeRun.objects.get(run_id=body["id"], node_id="pid").outputs["pid"]
    assert pid in executors and pid != proc.pid


def test_cpu_burnt_in_c_with_the_gil_held_ends_limit_exceeded_while_team_b_is_served(server, teams) -> None:
    proc, url = server
    before = wait_executors(proc.pid, 2)
    rss_before = rss_mb(proc.pid)
    with OtherTeam(url, teams["token_b"], teams["greeting_b"]) as other:
        time.sleep(0.3)
        response, seconds = attack(url, teams["token_a"], teams["a"], {"id": "burn", "type": "test_burn", "config": {"size": 40}})
        time.sleep(0.3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed" and body["error"]["code"] == "limit_exceeded", body["error"]
    assert body["error"]["limit"] == "cpu"
    # Ended by the CPU limit, not by the run's 300 s deadline (CPU seconds pass slower than wall
    # seconds on a loaded machine: the burning executor gets a share of a core).
    assert seconds < 60
    other.assert_served()
    assert_records_complete(Run.objects.get(pk=body["id"]), "limit_exceeded")
    after = wait_executors(proc.pid, 2)
    assert set(after) != set(before)  # the burnt executor was replaced
    assert rss_mb(proc.pid) - rss_before < 50


def test_a_segfault_ends_executor_crashed_once_and_the_executor_is_replaced(server, teams) -> None:
    proc, url = server
    before = wait_executors(proc.pid, 2)
    with OtherTeam(url, teams["token_b"], teams["greeting_b"]) as other:
        time.sleep(0.3)
        response, _ = attack(url, teams["token_a"], teams["a"], {"id": "crash", "type": "test_segfault"})
        time.sleep(0.3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed" and body["error"]["code"] == "executor_crashed", body["error"]
    assert "SIGSEGV" in body["error"]["message"]
    other.assert_served()
    run = Run.objects.get(pk=body["id"])
    assert_records_complete(run, "executor_crashed")
    assert run.claim_fate == "crashed"
    # The crashing node's start may or may not have been committed before it crashed; if it was,
    # it ended with the run.
    for row in NodeRun.objects.filter(run=run, node_id="crash"):
        assert row.status == "failed" and row.error["code"] == "executor_crashed"
    after = wait_executors(proc.pid, 2)
    assert len(set(before) - set(after)) == 1
    # The platform still executes runs, for the attacker too.
    again, _ = attack(url, teams["token_a"], teams["a"], {"id": "pid", "type": "test_pid"})
    assert again.json()["status"] == "succeeded"


def test_a_memory_blow_up_ends_limit_exceeded_with_memory_bounded(server, teams) -> None:
    proc, url = server
    wait_executors(proc.pid, 2)
    rss_before = rss_mb(proc.pid)
    peak = {"mb": 0.0}
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            total = sum(rss_mb(pid) for pid in executors_of(proc.pid) if os.path.exists(f"/proc/{pid}"))
            peak["mb"] = max(peak["mb"], total)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with OtherTeam(url, teams["token_b"], teams["greeting_b"]) as other:
        response, _ = attack(url, teams["token_a"], teams["a"], {"id": "hog", "type": "test_memory"})
    watching.set()
    watcher.join()
    body = response.json()
    assert body["status"] == "failed" and body["error"]["code"] == "limit_exceeded", body["error"]
    assert body["error"]["limit"] == "memory"
    other.assert_served()
    assert_records_complete(Run.objects.get(pk=body["id"]), "limit_exceeded")
    # Every executor together stayed near one executor's limit plus the others' own size.
    assert peak["mb"] < MEMORY_LIMIT_MB + 4 * 150, peak
    assert rss_mb(proc.pid) - rss_before < 50


def test_an_executor_that_exits_by_itself_ends_its_streaming_run_and_the_stream(server, teams) -> None:
    _, url = server
    workflow = published_make(teams["a"], graph_with({"id": "bye", "type": "test_exit"}), app=app_make(teams["a"]))
    app_token = token_create(team=teams["a"], name=unique("app"), scopes=["run", "read"], app=workflow.app)[1]
    App.objects.filter(pk=workflow.app_id).update(entry_workflow=workflow)
    response = requests.post(f"{url}/v1/workflows/run", headers={"Authorization": f"Bearer {app_token}"},
                             json={"inputs": {}, "response_mode": "streaming", "user": "u"}, stream=True, timeout=60)
    assert response.status_code == 200
    events, _ = sse_read(response)
    last = json.loads(events[-1].data)
    assert last["event"] == "workflow_finished" and last["data"]["status"] == "failed"
    run = Run.objects.get(pk=last["workflow_run_id"])
    assert_records_complete(run, "executor_crashed")
    assert "exit status 3" in run.error["message"]


def sub_calling(callee_id: str | None) -> dict[str, Any]:
    """A workflow whose one node calls ``callee_id`` (none: a leaf)."""
    node = ({"id": "sub", "type": "workflow", "config": {"workflow": callee_id, "inputs": {}}} if callee_id
            else {"id": "leaf", "type": "transform", "config": {"mapping": {"ok": True}}})
    return graph_with(node)


def test_sub_workflows_that_call_themselves_cannot_be_published_and_a_deep_chain_stops_at_the_limit(
        server, teams) -> None:
    """The issue's attack: a ``workflow`` node calling its own workflow made 2,200 runs from one
    request. Publishing it is refused (400 naming the node); so is a call back through another
    workflow. A chain of 8 published top-down (each publish sees the next without a version, so
    no publish sees the depth) runs 6 levels (depths 0 to 5) and stops at the 7th with
    ``limit_exceeded``, while team B is served."""
    _, url = server
    team = teams["a"]
    headers = {"Authorization": f"Bearer {teams['token_a']}"}

    def publish(workflow: Any) -> requests.Response:
        return requests.post(f"{url}/api/v1/workflows/{workflow.pk}/publish", headers=headers, json={}, timeout=60)

    def draft(workflow: Any, graph: dict[str, Any]) -> None:
        Workflow.objects.filter(pk=workflow.pk).update(graph=graph)  # only the draft (the server publishes)

    selfish = workflow_make(team, app=app_make(team))
    draft(selfish, sub_calling(str(selfish.pk)))
    response = publish(selfish)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"path": "/nodes/1/config/workflow", "message": (
        "node 'sub': the workflow calls itself; a workflow may not call its own workflow")}]
    flows = [workflow_make(team, app=app_make(team)) for _ in range(8)]
    for workflow, callee in zip(flows, [*flows[1:], None], strict=True):
        draft(workflow, sub_calling(str(callee.pk) if callee else None))
    assert [publish(w).status_code for w in flows] == [201] * 8
    draft(flows[1], sub_calling(str(flows[0].pk)))  # a loop back through flows[0]: refused, v1 stays
    response = publish(flows[1])
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"path": "/nodes/1/config/workflow", "message": (
        f"node 'sub': the workflow calls itself through {flows[0].name!r}; a workflow may not call its own workflow")}]
    with OtherTeam(url, teams["token_b"], teams["greeting_b"]) as other:
        response = requests.post(f"{url}/api/v1/workflows/run", headers=headers, timeout=120,
                                 json={"workflowId": str(flows[0].pk), "params": {}})
        time.sleep(0.3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed" and body["error"]["code"] == "child_failed", body["error"]
    other.assert_served()
    runs = list(Run.objects.filter(root_run_id=body["id"]).order_by("depth"))
    assert [(r.depth, r.workflow_id) for r in runs] == [(d, flows[d].pk) for d in range(1, 6)]
    assert runs[-1].error["code"] == "limit_exceeded", runs[-1].error
    assert "WEFT_MAX_WORKFLOW_DEPTH" in runs[-1].error["message"]
    for run in [Run.objects.get(pk=body["id"]), *runs]:
        assert run.status == "failed" and run.claim_count <= 1 and run.finished_at is not None
