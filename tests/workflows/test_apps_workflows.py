"""Apps and workflows: CRUD, camelCase ISO bodies, the entry workflow, draft saving."""

from __future__ import annotations

from datetime import datetime

from rest_framework.test import APIClient

from accounts.models import ApiToken, Team
from tests.conftest import SIMPLE_GRAPH, workflow_make
from workflows.models import App, Workflow


def test_app_crud(client_a: APIClient) -> None:
    created = client_a.post("/api/v1/apps", {"name": "Orders", "description": "d", "tags": ["ops"]}, format="json")
    assert created.status_code == 201
    app = created.json()
    assert set(app) == {"id", "name", "description", "tags", "enabled", "entryWorkflowId", "createdAt", "updatedAt"}
    assert app["enabled"] is True and app["entryWorkflowId"] is None and app["tags"] == ["ops"]
    assert datetime.fromisoformat(app["createdAt"]).tzinfo is not None

    assert client_a.get("/api/v1/apps").json()["data"][0]["id"] == app["id"]
    patched = client_a.patch(f"/api/v1/apps/{app['id']}", {"enabled": False, "tags": []}, format="json").json()
    assert patched["enabled"] is False and patched["tags"] == [] and patched["name"] == "Orders"
    assert client_a.post("/api/v1/apps", {"name": "Orders"}, format="json").status_code == 409

    assert client_a.delete(f"/api/v1/apps/{app['id']}").status_code == 204
    assert client_a.get(f"/api/v1/apps/{app['id']}").status_code == 404
    assert client_a.get("/api/v1/apps/not-a-uuid").status_code == 404


def test_first_workflow_becomes_entry_and_entry_can_change(client_a: APIClient) -> None:
    app_id = client_a.post("/api/v1/apps", {"name": "A"}, format="json").json()["id"]
    first = client_a.post(f"/api/v1/apps/{app_id}/workflows", {"name": "one"}, format="json").json()
    second = client_a.post(f"/api/v1/apps/{app_id}/workflows", {"name": "two", "graph": SIMPLE_GRAPH},
                           format="json").json()
    assert client_a.get(f"/api/v1/apps/{app_id}").json()["entryWorkflowId"] == first["id"]
    assert first["appId"] == app_id and first["activeVersion"] is None and first["graph"]["nodes"]
    assert second["graph"] == SIMPLE_GRAPH

    listed = client_a.get(f"/api/v1/apps/{app_id}/workflows").json()["data"]
    assert [w["name"] for w in listed] == ["one", "two"]

    response = client_a.patch(f"/api/v1/apps/{app_id}", {"entryWorkflowId": second["id"]}, format="json")
    assert response.status_code == 200 and response.json()["entryWorkflowId"] == second["id"]
    # deleting the entry workflow moves the entry to the remaining one
    assert client_a.delete(f"/api/v1/workflows/{second['id']}").status_code == 204
    assert client_a.get(f"/api/v1/apps/{app_id}").json()["entryWorkflowId"] == first["id"]


def test_draft_may_be_invalid_but_shaped(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a)
    draft = {"nodes": [{"id": "start", "type": "start"}, {"id": "x", "type": "no-such-type"}], "edges": []}
    response = client_a.patch(f"/api/v1/workflows/{workflow.id}", {"graph": draft, "name": "renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["graph"] == draft and response.json()["name"] == "renamed"
    workflow.refresh_from_db()
    assert workflow.graph == draft
    result = client_a.post(f"/api/v1/workflows/{workflow.id}/validate", {}, format="json").json()
    assert result["valid"] is False and {e["path"] for e in result["errors"]}


def test_workflow_name_unique_per_app(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, name="notify")
    response = client_a.post(f"/api/v1/apps/{workflow.app_id}/workflows", {"name": "notify"}, format="json")
    assert response.status_code == 409
    assert Workflow.objects.filter(app=workflow.app).count() == 1


def test_deleting_an_app_removes_its_workflows_and_app_tokens(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a)
    token = client_a.post("/api/v1/tokens", {"name": "app", "scopes": ["run"], "appId": str(workflow.app_id)},
                          format="json").json()
    assert client_a.delete(f"/api/v1/apps/{workflow.app_id}").status_code == 204
    assert not App.objects.filter(pk=workflow.app_id).exists()
    assert not Workflow.objects.filter(pk=workflow.id).exists()
    assert not ApiToken.objects.filter(pk=token["id"]).exists()


def test_deleting_with_finished_runs_removes_the_runs_and_their_versions(client_a: APIClient, team_a: Team) -> None:
    """Runs protect the version they ran; deleting the workflow or the app takes its finished runs
    (and their node runs and events) with it instead of failing."""
    from runs.models import NodeRun, Run, RunEvent
    from tests.conftest import published_make
    from workflows.models import WorkflowVersion

    workflow = published_make(team_a)
    second = published_make(team_a, app=workflow.app)
    for wf in (workflow, second):
        response = client_a.post("/api/v1/workflows/run", {"workflowId": str(wf.pk), "params": {"name": "x"}},
                                 format="json")
        assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert client_a.delete(f"/api/v1/workflows/{second.pk}").status_code == 204
    assert not WorkflowVersion.objects.filter(workflow_id=second.pk).exists()
    assert list(Run.objects.values_list("workflow_id", flat=True)) == [workflow.pk]
    assert client_a.delete(f"/api/v1/apps/{workflow.app_id}").status_code == 204
    assert not Run.objects.exists() and not NodeRun.objects.exists() and not RunEvent.objects.exists()
    assert not WorkflowVersion.objects.exists()
