"""`"draft": true` on POST /api/v1/workflows/run: runs the saved draft, validated as at publish, as
a test run marked `draft` (API.md); an invalid draft is a 400 with the errors and writes nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Team
from runs.models import Run
from tests.conftest import SIMPLE_GRAPH, published_make, workflow_make
from workflows.models import WorkflowVersion

pytestmark = pytest.mark.django_db


def draft_graph(greeting: str) -> dict[str, Any]:
    graph = copy.deepcopy(SIMPLE_GRAPH)
    graph["nodes"][1]["config"]["outputs"]["greeting"] = greeting
    return graph


def test_a_draft_run_runs_the_saved_draft(client_a: APIClient, team_a: Team) -> None:
    workflow = published_make(team_a)
    workflow.graph = draft_graph("{{ 'draft ' + inputs.name }}")
    workflow.save(update_fields=["graph"])
    body = {"workflowId": str(workflow.pk), "params": {"name": "ada"}, "draft": True}
    response = client_a.post("/api/v1/workflows/run", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "succeeded" and data["outputs"] == {"greeting": "draft ada"} and data["draft"] is True
    run = Run.objects.get(pk=data["id"])
    assert run.draft is True and run.version.draft is True
    # Without draft the active version runs, and is not marked.
    published = client_a.post("/api/v1/workflows/run", {**body, "draft": False}, format="json").json()
    assert published["outputs"] == {"greeting": "ada"} and published["draft"] is False
    # The snapshot is not a version.
    versions = client_a.get(f"/api/v1/workflows/{workflow.pk}/versions").json()
    listed = versions if isinstance(versions, list) else versions.get("data", versions.get("results", []))
    assert [v["number"] for v in listed] == [1]


def test_a_never_published_workflow_can_be_test_run_async(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=draft_graph("{{ inputs.name }}"))
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "params": {"name": "x"},
                                                       "mode": "async", "draft": True}, format="json")
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["runId"])
    assert run.draft is True and run.status == "pending"
    assert client_a.get(f"/api/v1/runs/{run.pk}").json()["draft"] is True


def test_an_invalid_draft_is_a_400_with_the_errors_and_nothing_written(client_a: APIClient, team_a: Team) -> None:
    workflow = published_make(team_a)
    workflow.graph = draft_graph("{{ nobody.here }}")
    workflow.save(update_fields=["graph"])
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "params": {"name": "x"},
                                                       "draft": True}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"path": "/nodes/1/config/outputs/greeting", "message": "unknown name 'nobody'"} in errors
    assert not Run.objects.filter(workflow=workflow).exists()
    assert not WorkflowVersion.objects.filter(workflow=workflow, draft=True).exists()


def test_another_teams_workflow_cannot_be_test_run(client_b: APIClient, team_a: Team) -> None:
    workflow = published_make(team_a)
    response = client_b.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "params": {"name": "x"},
                                                       "draft": True}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "/workflowId"
    assert not Run.objects.exists()
