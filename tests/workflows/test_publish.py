"""Publishing: validation errors name their paths, versions are numbered per workflow (also under
concurrent publishes), a published version never changes, activate rolls back."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Team
from accounts.services import credential_create, parameters_replace
from tests.conftest import SIMPLE_GRAPH, workflow_make
from workflows.models import ImmutableVersionError, Workflow, WorkflowVersion
from workflows.services import workflow_publish

INVALID = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "call", "type": "http", "config": {"method": "GET", "url": "https://x.example/${region}",
                                                  "auth": {"type": "bearer", "credential": "crm"}}},
        {"id": "end", "type": "end", "config": {"outputs": {}}},
    ],
    "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}, {"from": "end", "to": "ghost"}],
}


def _publish(client: APIClient, workflow: Workflow) -> Any:
    return client.post(f"/api/v1/workflows/{workflow.id}/publish", {}, format="json")


def test_validate_and_publish_report_paths(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=INVALID)
    result = client_a.post(f"/api/v1/workflows/{workflow.id}/validate", {}, format="json")
    assert result.status_code == 200
    body = result.json()
    assert body["valid"] is False
    paths = {e["path"] for e in body["errors"]}
    assert "/edges/2/to" in paths
    assert any(p.startswith("/nodes/1/config") for p in paths)  # unknown ${region} and credential crm

    response = _publish(client_a, workflow)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == body["errors"]
    assert not WorkflowVersion.objects.exists()


def test_global_parameters_and_credentials_make_it_valid(client_a: APIClient, team_a: Team) -> None:
    graph = copy.deepcopy(INVALID)
    graph["edges"].pop()
    workflow = workflow_make(team_a, graph=graph)
    assert _publish(client_a, workflow).status_code == 400
    parameters_replace(team=team_a, values={"region": "eu"})
    credential_create(team=team_a, name="crm", kind="bearer", secrets={"token": "t"})
    result = client_a.post(f"/api/v1/workflows/{workflow.id}/validate", {}, format="json").json()
    assert result == {"valid": True, "errors": []}
    assert _publish(client_a, workflow).status_code == 201


def test_validate_a_graph_that_is_not_saved(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=INVALID)
    result = client_a.post(f"/api/v1/workflows/{workflow.id}/validate", {"graph": SIMPLE_GRAPH}, format="json").json()
    assert result == {"valid": True, "errors": []}


def test_versions_are_numbered_and_the_latest_is_active(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=SIMPLE_GRAPH)
    first = _publish(client_a, workflow)
    assert first.status_code == 201
    v1 = first.json()
    assert set(v1) == {"id", "number", "workflowId", "publishedAt", "publishedBy", "graph"}
    assert v1["number"] == 1 and v1["workflowId"] == str(workflow.id) and v1["graph"] == SIMPLE_GRAPH
    assert v1["publishedBy"] is None  # published with a token

    changed = copy.deepcopy(SIMPLE_GRAPH)
    changed["nodes"][1]["config"]["outputs"]["greeting"] = "hello {{ inputs.name }}"
    assert client_a.patch(f"/api/v1/workflows/{workflow.id}", {"graph": changed}, format="json").status_code == 200
    v2 = _publish(client_a, workflow).json()
    assert v2["number"] == 2 and v2["graph"] == changed

    detail = client_a.get(f"/api/v1/workflows/{workflow.id}").json()
    assert detail["activeVersion"] == 2
    versions = client_a.get(f"/api/v1/workflows/{workflow.id}/versions").json()["data"]
    assert [(v["number"], v["active"]) for v in versions] == [(2, True), (1, False)]
    assert client_a.get(f"/api/v1/workflows/{workflow.id}/versions/1").json()["graph"] == SIMPLE_GRAPH
    assert client_a.get(f"/api/v1/workflows/{workflow.id}/versions/9").status_code == 404

    # another workflow starts at 1
    other = workflow_make(team_a, graph=SIMPLE_GRAPH)
    assert _publish(client_a, other).json()["number"] == 1


def test_activate_rolls_back(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=SIMPLE_GRAPH)
    _publish(client_a, workflow)
    _publish(client_a, workflow)
    response = client_a.post(f"/api/v1/workflows/{workflow.id}/versions/1/activate", {}, format="json")
    assert response.status_code == 200 and response.json()["number"] == 1
    workflow.refresh_from_db()
    assert workflow.active_version.number == 1
    assert client_a.get(f"/api/v1/workflows/{workflow.id}").json()["activeVersion"] == 1
    assert client_a.post(f"/api/v1/workflows/{workflow.id}/versions/7/activate", {}, format="json").status_code == 404
    # publishing again continues the numbering and activates the new version
    assert _publish(client_a, workflow).json()["number"] == 3


def test_session_publish_records_the_user(session_client_a: APIClient, team_a: Team, owner_a: Any) -> None:
    workflow = workflow_make(team_a, graph=SIMPLE_GRAPH)
    assert _publish(session_client_a, workflow).json()["publishedBy"] == owner_a.email


def test_published_version_cannot_change(team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=SIMPLE_GRAPH)
    version = workflow_publish(team=team_a, workflow=workflow)
    version.graph = {"nodes": [], "edges": []}
    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        WorkflowVersion.objects.get(pk=version.pk).save(update_fields=["graph"])
    # editing the draft leaves the version alone
    workflow.graph = {"nodes": [], "edges": []}
    workflow.save()
    assert WorkflowVersion.objects.get(pk=version.pk).graph == SIMPLE_GRAPH


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishes_get_distinct_numbers(team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=SIMPLE_GRAPH)
    numbers: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def publish() -> None:
        try:
            start.wait()
            numbers.append(workflow_publish(team=team_a, workflow=Workflow.objects.get(pk=workflow.pk)).number)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(numbers) == [1, 2, 3, 4]
    workflow.refresh_from_db()
    assert workflow.active_version.number == max(numbers)
