"""Run-time budgets on a real server: a blocking run through the API ends with a clear
``limit_exceeded`` failure, nothing oversized is stored, and the server keeps serving."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast, Length

from runs.models import NodeRun, Run, RunEvent
from tests.engine.http_servers import Reply, scripted_server
from tests.runs.conftest import RunEnv, run_env_make

NINE_MB = 9 * 1024 * 1024


def http_graph(url: str) -> dict[str, Any]:
    return {
        "inputs": {"s": {"type": "string"}}, "outputs": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "fetch", "type": "http", "config": {"method": "GET", "url": url}, "retry": {"count": 0}},
            {"id": "end", "type": "end", "config": {"outputs": {"size": "{{ size(fetch.body) }}"}}},
        ],
        "edges": [{"from": "start", "to": "fetch"}, {"from": "fetch", "to": "end"}],
    }


def test_a_9_mb_response_fails_the_node_and_is_stored_nowhere(live_server_url: str, transactional_db: Any,
                                                              team_a: Any, team_b: Any) -> None:
    with scripted_server() as server:
        server.route("/big", Reply(200, "y" * NINE_MB, headers={"Content-Type": "text/plain"}))
        env: RunEnv = run_env_make(team_a, team_b, http_graph(server.url("/big")))
        session = env.session(env.team_token)
        started = time.monotonic()
        response = session.post(f"{live_server_url}/api/v1/workflows/run",
                                json={"workflowId": str(env.workflow.pk), "params": {"s": "x"}}, timeout=60)
        elapsed = time.monotonic() - started
        # the server still answers, at once
        assert session.get(f"{live_server_url}/api/v1/apps", timeout=10).status_code == 200
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "limit_exceeded"
    assert body["error"]["node_id"] == "fetch"
    assert "WEFT_NODE_MAX_OUTPUT_BYTES" in body["error"]["message"]
    assert elapsed < 30
    run = Run.objects.get(pk=body["id"])
    fetch = NodeRun.objects.get(run=run, node_id="fetch")
    assert fetch.status == "failed" and fetch.outputs is None
    assert fetch.error["code"] == "limit_exceeded"
    biggest = max(RunEvent.objects.filter(run=run).annotate(n=Length(Cast("data", TextField()))).values_list("n", flat=True))
    assert biggest < 100_000  # the body is in no event
    assert not NodeRun.objects.filter(run=run, node_id="end").exclude(status="skipped").exists()


def test_a_catastrophic_regex_answers_at_once(live_server_url: str, transactional_db: Any, team_a: Any,
                                             team_b: Any) -> None:
    graph = {
        "inputs": {"s": {"type": "string"}}, "outputs": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transform", "timeout": 1,
             "config": {"mapping": {"m": '{{ regex_extract(inputs.s, "(a+)+$") }}'}}},
            {"id": "end", "type": "end", "config": {"outputs": {"m": "{{ t.m }}"}}},
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
    }
    env = run_env_make(team_a, team_b, graph)
    session = env.session(env.team_token)
    started = time.monotonic()
    response = session.post(f"{live_server_url}/api/v1/workflows/run",
                            json={"workflowId": str(env.workflow.pk), "params": {"s": "a" * 27 + "!"}}, timeout=60)
    assert time.monotonic() - started < 5  # 14.6 s of backtracking before RE2
    assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text
    assert response.json()["outputs"] == {"m": None}
