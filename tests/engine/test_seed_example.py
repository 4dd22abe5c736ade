"""Seed 001's example as written: Trigger -> Condition(amount > 1000) -> Transform(mask PII,
``"userId": "$.user.id"``) -> Action, with condition and delay passing their upstream data through."""

from __future__ import annotations

from typing import Any

from tests.engine.helpers import compile_test, run
from tests.engine.http_servers import FakeServices, Reply, scripted_server
from workflows.engine.graph import GraphInvalid

SEED_GRAPH: dict[str, Any] = {
    "inputs": {"orderId": {"type": "string", "required": True}, "amount": {"type": "number"},
               "user": {"type": "object"}},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "check", "type": "condition", "config": {"cases": [{"id": "highRisk", "when": "inputs.amount > 1000"}]}},
        {"id": "mask", "type": "transform",
         "config": {"mapping": {"userId": "$.user.id", "email": "{{ mask(inputs.user.email) }}",
                                "orderId": "$.orderId"}}},
        {"id": "notify", "type": "http", "name": "Notify Risk Team",
         "config": {"method": "POST", "url": "URL", "body": "{{ mask }}"}},
        {"id": "format", "type": "transform", "config": {"mapping": {"to": "$.user.email", "msg": "Hello"}}},
        {"id": "end", "type": "end", "config": {"outputs": {"done": True}}},
    ],
    "edges": [
        {"from": "start", "to": "check"},
        {"from": "check", "to": "mask", "port": "highRisk"},
        {"from": "check", "to": "format", "port": "else"},
        {"from": "mask", "to": "notify"},
        {"from": "notify", "to": "end"},
        {"from": "format", "to": "end"},
    ],
}

ORDER = {"orderId": "12345", "amount": 2500, "user": {"id": "u-77", "email": "ann@example.com"}}


def seed_graph(url: str) -> dict[str, Any]:
    graph = {**SEED_GRAPH, "nodes": [dict(n) for n in SEED_GRAPH["nodes"]]}
    graph["nodes"][3] = {**graph["nodes"][3], "config": {**graph["nodes"][3]["config"], "url": url}}
    return graph


def test_high_risk_order_reaches_the_action_with_the_mapped_user_id() -> None:
    with scripted_server() as server:
        server.route("/risk", Reply(200, {"ok": True}))
        compiled = compile_test(seed_graph(server.url("/risk")))
        outcome, host = run(compiled, ORDER, services=FakeServices())
    assert outcome.status == "succeeded", outcome.error
    # The condition passed its upstream data (the inputs) through and recorded the case taken.
    check = host.records["check"]
    assert check.output == ORDER and check.port == "highRisk" and check.process_data == {"case": "highRisk"}
    assert host.records["mask"].output == {"userId": "u-77", "email": host.records["mask"].output["email"],
                                           "orderId": "12345"}
    assert host.records["mask"].output["email"] != "ann@example.com"
    assert [r.json() for r in server.requests] == [host.records["mask"].output]
    assert host.status("format") == "skipped"


def test_normal_order_takes_the_else_branch_with_the_same_data() -> None:
    with scripted_server() as server:
        compiled = compile_test(seed_graph(server.url("/risk")))
        outcome, host = run(compiled, {**ORDER, "amount": 10}, services=FakeServices())
        assert server.requests == []
    assert outcome.status == "succeeded", outcome.error
    assert host.records["format"].output == {"to": "ann@example.com", "msg": "Hello"}
    assert host.records["check"].process_data == {"case": "else"}


def test_delay_passes_its_upstream_data_through() -> None:
    graph = {
        "inputs": {"user": {"type": "object"}},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": 0.05}},
                  {"id": "pick", "type": "transform", "config": {"mapping": {"userId": "$.user.id"}}},
                  {"id": "end", "type": "end", "config": {"outputs": {"userId": "{{ pick.userId }}"}}}],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "pick"}, {"from": "pick", "to": "end"}],
    }
    outcome, host = run(compile_test(graph), {"user": {"id": "u-1"}})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.outputs == {"userId": "u-1"}
    assert host.records["wait"].output == {"user": {"id": "u-1"}}
    assert host.records["wait"].process_data == {"seconds": 0.05}


def test_validation_reports_every_problem_of_a_broken_seed_graph_at_once() -> None:
    """The issue's case: a cycle and an unknown node type are reported, and so is a node that start
    cannot reach (the old check stopped before the reachability pass)."""
    graph = seed_graph("https://risk.example/notify")
    graph["nodes"] = [*graph["nodes"],
                      {"id": "fraud", "type": "fraud_check", "config": {}},
                      {"id": "orphan", "type": "transform", "config": {"mapping": {"x": "$.orderId"}}}]
    graph["edges"] = [*graph["edges"], {"from": "notify", "to": "mask"}, {"from": "check", "to": "fraud", "port": "else"}]
    try:
        compile_test(graph)
    except GraphInvalid as exc:
        errors = exc.errors
    else:
        raise AssertionError("the broken graph compiled")
    text = " | ".join(f"{e['path']}: {e['message']}" for e in errors)
    assert any("cycle" in e["message"] for e in errors), text
    assert any(e["path"].startswith("/nodes/6") and "fraud_check" in e["message"] for e in errors), text
    assert any(e["path"].startswith("/nodes/7") and "reachable" in e["message"] for e in errors), text
