"""http nodes run end to end through the real scheduler (``run_graph``) against real servers:
retries with one receipt token, permanent 4xx, attempt timeouts, on_error, rollback, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.engine.helpers import chain, compile_test, run
from tests.engine.http_servers import FakeServices, Reply, scripted_server

SECRET = "cred-secret-77aa"


@pytest.fixture
def server():
    with scripted_server() as srv:
        yield srv


def services() -> FakeServices:
    return FakeServices(credentials={"api": {"kind": "bearer", "token": SECRET}})


def http(node_id: str, config: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "http", "config": config, **options}


def test_503_twice_then_success_retries_with_the_same_receipt_token(server):
    server.route("/pay", [Reply(503, "busy"), Reply(503, "busy"), Reply(200, {"paid": True})])
    graph = chain(http("pay", {"method": "POST", "url": server.url("/pay"), "body": {"order": "{{ inputs.order }}"}},
                       retry={"count": 2, "interval": 0, "backoff": "fixed"}),
                  end_config={"outputs": {"paid": "{{ pay.body.paid }}"}},
                  inputs={"order": {"type": "string"}})
    outcome, host = run(graph, {"order": "o-1"}, services=services())
    assert outcome.status == "succeeded" and outcome.outputs == {"paid": True}
    assert len(server.requests) == 3
    tokens = {r.header("Weft-Receipt-Token") for r in server.requests}
    assert len(tokens) == 1 and tokens == {r.header("Idempotency-Key") for r in server.requests}
    assert all(r.json() == {"order": "o-1"} for r in server.requests)
    assert host.records["pay"].attempt == 3 and host.records["pay"].receipt_token in tokens


def test_404_problem_json_is_not_retried_and_fails_the_run(server):
    server.route("*", Reply(404, {"title": "Not Found", "detail": "Customer not found"},
                            {"Content-Type": "application/problem+json"}))
    graph = chain(http("get", {"url": server.url("/c/1")}, retry={"count": 3, "interval": 0}))
    outcome, host = run(graph, services=services())
    assert outcome.status == "failed"
    assert len(server.requests) == 1
    assert "Customer not found" in json.dumps(host.records["get"].error)


def test_attempt_timeout_then_on_error_continue(server):
    server.route("*", Reply(200, "late", delay=1.0))
    graph = chain(http("slow", {"url": server.url("/slow")}, timeout=0.3, retry={"count": 0}, on_error="continue"),
                  end_config={"outputs": {"code": "{{ slow.error.code }}"}})
    outcome, host = run(graph, services=services())
    assert outcome.status == "succeeded"
    assert outcome.outputs == {"code": "timeout"}
    assert host.records["slow"].status == "failed"


def test_on_error_branch_follows_the_error_port(server):
    server.route("/main", Reply(400, "bad"))
    server.route("/alert", Reply(200, {"alerted": True}))
    graph = {
        "nodes": [{"id": "start", "type": "start"},
                  http("main", {"url": server.url("/main")}, on_error="branch"),
                  http("alert", {"method": "POST", "url": server.url("/alert")}),
                  {"id": "end", "type": "end", "config": {"outputs": {}}}],
        "edges": [{"from": "start", "to": "main"}, {"from": "main", "to": "end"},
                  {"from": "main", "to": "alert", "port": "error"}, {"from": "alert", "to": "end"}],
    }
    outcome, host = run(compile_test(graph), services=services())
    assert outcome.status == "succeeded"
    assert [r.path for r in server.requests] == ["/main", "/alert"]
    assert host.records["alert"].output["body"] == {"alerted": True}


def test_rollback_sends_compensate_requests(server):
    server.route("/reserve", Reply(200, {"id": "r-9"}))
    server.route("/reserve/r-9", Reply(200, {}))
    server.route("/charge", Reply(422, "declined"))
    graph = chain(
        http("reserve", {"method": "POST", "url": server.url("/reserve")},
             compensate={"method": "DELETE", "url": server.url("/reserve/{id}"), "args": {"id": "{{ reserve.body.id }}"}}),
        http("charge", {"method": "POST", "url": server.url("/charge")}, on_error="rollback"),
    )
    outcome, _ = run(graph, services=services())
    assert outcome.status == "failed"
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/reserve"), ("POST", "/charge"),
                                                            ("DELETE", "/reserve/r-9")]


def test_credential_secret_never_recorded(server):
    server.route("/ok", lambda r: Reply(200, {"auth": r.header("Authorization")}))
    server.route("/bad", lambda r: Reply(401, {"title": "Unauthorized", "detail": f"bad {r.header('Authorization')}"},
                                         {"Content-Type": "application/problem+json"}))
    graph = chain(http("ok", {"url": server.url("/ok"), "auth": {"credential": "api"}}),
                  http("bad", {"url": server.url("/bad"), "auth": {"credential": "api"}}, on_error="continue"))
    outcome, host = run(compile_test(graph, credential_names={"api"}), services=services())
    assert outcome.status == "succeeded"
    assert server.requests[0].header("Authorization") == f"Bearer {SECRET}"
    recorded = json.dumps([[r.inputs, r.output, r.error, r.process_data] for r in host.records.values()]
                          + [e.data for e in host.events], default=str)
    assert SECRET not in recorded
    assert "Unauthorized" in recorded


def test_polling_may_outlast_the_attempt_timeout_which_bounds_each_request(server):
    """``timeout`` is per request; a poll wait longer than it is bounded by ``poll.max_wait`` only."""
    server.route("/submit", Reply(200, {"taskId": "t-1"}))
    server.route("/status/t-1", [Reply(200, {"status": "PROCESSING"})] * 4 + [Reply(200, {"status": "SUCCESS"})])
    graph = chain(http("job", {"method": "POST", "url": server.url("/submit"), "mode": "poll",
                               "poll": {"url": server.url("/status"), "interval": 0.2, "max_wait": 10}},
                       timeout=0.5, retry={"count": 0}),
                  end_config={"outputs": {"polls": "{{ job.poll.polls }}"}})
    outcome, host = run(graph, services=services())
    assert outcome.status == "succeeded", host.records["job"].error
    assert outcome.outputs == {"polls": 5}
    assert host.records["job"].elapsed > 0.5
