"""Credentials named by nodes, checked at validate and publish against the team's credentials and
their kinds: a ``db`` node needs a ``database`` credential, a ``queue`` node a ``broker`` one, an
HTTP ``auth`` an ``api_key``, ``bearer`` or ``basic`` one. An unknown or wrong-kind credential is a
400 naming the node's field (inside loop bodies too), every problem at once, nothing published;
a credential given by a template is checked when the node runs. Queue triggers: tests/queues/test_api.py."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from accounts.models import Team
from accounts.services import credential_create
from tests.conftest import workflow_make
from workflows.models import WorkflowVersion


def db(node_id: str, credential: str) -> dict[str, Any]:
    return {"id": node_id, "type": "db", "config": {"credential": credential, "query": "SELECT 1"}}


def queue(node_id: str, credential: str) -> dict[str, Any]:
    return {"id": node_id, "type": "queue", "config": {"credential": credential, "target": "orders"}}


def http(node_id: str, credential: str) -> dict[str, Any]:
    return {"id": node_id, "type": "http",
            "config": {"url": "https://example.com/", "auth": {"type": "bearer", "credential": credential}}}


def graph_of(*nodes: dict[str, Any]) -> dict[str, Any]:
    everything = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end", "config": {"outputs": {}}}]
    return {"inputs": {"c": {"type": "string"}}, "outputs": {}, "nodes": everything,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(everything, everything[1:], strict=False)]}


def credentials(team: Team) -> None:
    credential_create(team=team, name="orders_db", kind="database", secrets={"url": "postgresql://u:p@db.example/x"})
    credential_create(team=team, name="mq", kind="broker", secrets={"url": "amqp://u:p@mq.example/"})
    credential_create(team=team, name="api", kind="bearer", secrets={"token": "t0ken"})


def test_unknown_and_wrong_kind_credentials_are_refused_naming_each_field(client_a: APIClient, team_a: Team,
                                                                          team_b: Team) -> None:
    credentials(team_a)
    credential_create(team=team_b, name="theirs", kind="database", secrets={"url": "postgresql://u:p@b.example/x"})
    loop = {"id": "each", "type": "loop", "config": {"items": [1], "output": "{{ item }}", "body": {
        "nodes": [queue("inner", "orders_db")], "edges": []}}}
    workflow = workflow_make(team_a, graph=graph_of(
        db("wrong_db", "mq"), db("missing_db", "nope"), db("other_team", "theirs"), queue("wrong_queue", "api"),
        http("wrong_http", "orders_db"), loop, db("templated", "{{ inputs.c }}"),
        db("good_db", "orders_db"), queue("good_queue", "mq"), http("good_http", "api")))
    expected = [
        {"path": "/nodes/1/config/credential",
         "message": "credential 'mq' is of kind 'broker'; this node needs a credential of kind 'database'"},
        {"path": "/nodes/2/config/credential", "message": "unknown credential 'nope'"},
        {"path": "/nodes/3/config/credential", "message": "unknown credential 'theirs'"},
        {"path": "/nodes/4/config/credential",
         "message": "credential 'api' is of kind 'bearer'; this node needs a credential of kind 'broker'"},
        {"path": "/nodes/5/config/auth/credential",
         "message": "credential 'orders_db' is of kind 'database'; HTTP authentication needs a credential of kind "
                    "'api_key' or 'bearer' or 'basic'"},
        {"path": "/nodes/6/config/body/nodes/0/config/credential",
         "message": "credential 'orders_db' is of kind 'database'; this node needs a credential of kind 'broker'"},
    ]
    body = client_a.post(f"/api/v1/workflows/{workflow.pk}/validate", {}, format="json").json()
    assert body["valid"] is False
    assert sorted(body["errors"], key=lambda e: e["path"]) == expected
    response = client_a.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()["errors"], key=lambda e: e["path"]) == expected
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_the_right_kinds_publish(client_a: APIClient, team_a: Team) -> None:
    credentials(team_a)
    workflow = workflow_make(team_a, graph=graph_of(
        db("good_db", "orders_db"), queue("good_queue", "mq"), http("good_http", "api"),
        queue("templated", "{{ inputs.c }}")))
    response = client_a.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json")
    assert response.status_code == 201, response.content
