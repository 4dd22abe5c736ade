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
