"""Budgets at validate/publish time (WORKFLOW_FORMAT.md "Limits"): a graph past a budget is refused
with every problem named at its place; nothing is written."""

from __future__ import annotations

from typing import Any

from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Team
from tests.conftest import workflow_make
from workflows.models import WorkflowVersion


def chain_graph(n: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    nodes += [{"id": f"n{i}", "type": "transform", "config": {"mapping": {"i": i}}} for i in range(n)]
    nodes.append({"id": "end", "type": "end", "config": {"outputs": {}}})
    return {"nodes": nodes, "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]}


def validate(client: APIClient, workflow: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/workflows/{workflow.id}/validate", {}, format="json")
    assert response.status_code == 200
    return response.json()


def publish(client: APIClient, workflow: Any) -> Any:
    return client.post(f"/api/v1/workflows/{workflow.id}/publish", {}, format="json")


def test_graph_size_budget(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=chain_graph(499))  # 501 nodes with start and end
    body = validate(client_a, workflow)
    assert body["valid"] is False
    assert body["errors"] == [{"path": "/nodes", "message": "the graph has 501 nodes (loop bodies included); "
                                                            "the limit is 500 (WEFT_MAX_GRAPH_NODES)"}]
    response = publish(client_a, workflow)
    assert response.status_code == 400 and response.json()["errors"] == body["errors"]
    assert not WorkflowVersion.objects.exists()
    with override_settings(WEFT_MAX_GRAPH_NODES=600):
        assert validate(client_a, workflow) == {"valid": True, "errors": []}
        assert publish(client_a, workflow).status_code in (200, 201)


MEMBER_CHAIN = "inputs" + ".a" * 14_000  # 28 KB
TERMS = "+".join(["1"] * 20_000)
SIX_MAPS = ("[0,1,2,3,4,5,6,7,8,9].map(a, [0,1,2,3,4,5,6,7,8,9].map(b, [0,1,2,3,4,5,6,7,8,9].map(c, "
            "[0,1,2,3,4,5,6,7,8,9].map(d, [0,1,2,3,4,5,6,7,8,9].map(e, [0,1,2,3,4,5,6,7,8,9].map(f, a)))))))")


def test_expressions_that_crash_or_freeze_cel_are_refused_naming_the_place(client_a: APIClient, team_a: Team) -> None:
    """Evaluated, the first two segfault the CEL extension (this test process would die); the
    third froze the server for seconds. All are refused by the scan, before CEL sees them."""
    graph = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transform", "config": {"mapping": {"deep": "{{ " + MEMBER_CHAIN + " }}"}}},
            {"id": "c", "type": "condition", "config": {"cases": [{"id": "x", "when": SIX_MAPS}]}},
            {"id": "end", "type": "end", "config": {"outputs": {"sum": "{{ " + TERMS + " }}"}}},
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "c"}, {"from": "c", "to": "end", "port": "x"}],
    }
    workflow = workflow_make(team_a, graph=graph)
    body = validate(client_a, workflow)
    errors = {e["path"]: e["message"] for e in body["errors"]}
    assert body["valid"] is False
    assert errors == {
        "/nodes/1/config/mapping/deep": "the expression is 28006 bytes; the limit is 4096 (WEFT_MAX_EXPRESSION_BYTES)",
        "/nodes/2/config/cases/0/when": "the expression nests 6 comprehensions (map, filter, all, exists); the limit "
                                        "is 2 (WEFT_MAX_COMPREHENSION_DEPTH)",
        "/nodes/3/config/outputs/sum": "the expression is 39999 bytes; the limit is 4096 (WEFT_MAX_EXPRESSION_BYTES)",
    }
    response = publish(client_a, workflow)
    assert response.status_code == 400
    assert {e["path"] for e in response.json()["errors"]} == set(errors)
    assert not WorkflowVersion.objects.exists()
    with override_settings(WEFT_MAX_EXPRESSION_DEPTH=10, WEFT_MAX_EXPRESSION_BYTES=100_000):
        errors = {e["path"]: e["message"] for e in validate(client_a, workflow)["errors"]}
        assert errors["/nodes/1/config/mapping/deep"] == ("the expression nests 14000 deep; the limit is 10 "
                                                         "(WEFT_MAX_EXPRESSION_DEPTH)")
