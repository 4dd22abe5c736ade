"""An app-bound token reaches only its app: the run APIs of every dialect narrow to the app (another
app's run or workflow is a 404 like a missing one), and every team-administration endpoint is 403
even with every scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import ALL_SCOPES, ApiToken, Credential, Team
from runs.models import Run
from tests.conftest import app_make, client_with_token, db_snapshot, published_make
from workflows.models import App, Workflow

pytestmark = pytest.mark.django_db


def finished_run(workflow: Workflow) -> Run:
    now = timezone.now()
    return Run.objects.create(team=workflow.team, app=workflow.app, workflow=workflow, version=workflow.active_version,
                              status="succeeded", mode="blocking", inputs={"name": "x"}, outputs={"greeting": "x"},
                              business_time=now, deadline=now + timedelta(minutes=5), finished_at=now)


@pytest.fixture
def two_apps(team_a: Team) -> dict[str, Any]:
    mine, other = app_make(team_a), app_make(team_a)
    wf_mine, wf_other = published_make(team_a, app=mine), published_make(team_a, app=other)
    return {"mine": mine, "other": other, "wf_mine": wf_mine, "wf_other": wf_other,
            "run_mine": finished_run(wf_mine), "run_other": finished_run(wf_other),
            "client": client_with_token(team_a, list(ALL_SCOPES), app=mine)}


@pytest.mark.parametrize(("method", "url", "body"), [
    ("get", "/api/v1/apps", None),
    ("post", "/api/v1/apps", {"name": "sneaky"}),
    ("get", "/api/v1/tokens", None),
    ("post", "/api/v1/tokens", {"name": "escalate", "scopes": ["manage"]}),
    ("post", "/api/v1/credentials", {"name": "c", "kind": "bearer", "secrets": {"token": "t"}}),
    ("get", "/api/v1/parameters", None),
    ("get", "/api/v1/members", None),
    ("get", "/api/v1/dead-letters", None),
])
def test_team_endpoints_refuse_an_app_bound_token_and_write_nothing(two_apps: dict[str, Any], method: str,
                                                                    url: str, body: Any) -> None:
    before = db_snapshot()
    response = getattr(two_apps["client"], method)(url, body, format="json")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert "bound to one app" in response.json()["detail"]
    assert db_snapshot() == before


def test_its_own_app_is_managed_through_the_app_not_the_token(two_apps: dict[str, Any]) -> None:
    client = two_apps["client"]
    for url in (f"/api/v1/apps/{two_apps['mine'].pk}", f"/api/v1/workflows/{two_apps['wf_mine'].pk}"):
        assert client.get(url).status_code == 403
    assert App.objects.filter(team=two_apps["mine"].team).count() == 2
    assert ApiToken.objects.count() == 1 and Credential.objects.count() == 0


def test_an_app_bound_token_gets_a_websocket_ticket(two_apps: dict[str, Any]) -> None:
    """The sockets narrow such a ticket to the token's app (tests/websockets cover the narrowing)."""
    response = two_apps["client"].post("/api/v1/ws-tickets", {}, format="json")
    assert response.status_code == 201 and response.json()["ticket"]


def test_native_run_reads_are_narrowed_to_the_app(two_apps: dict[str, Any]) -> None:
    client, mine, other = two_apps["client"], two_apps["run_mine"], two_apps["run_other"]
    listed = client.get("/api/v1/runs").json()["data"]
    assert [r["id"] for r in listed] == [str(mine.pk)]
    assert client.get("/api/v1/runs", {"appId": str(two_apps["other"].pk)}).json() == {"data": [], "nextCursor": None}
    assert client.get(f"/api/v1/runs/{mine.pk}").status_code == 200
    for url in (f"/api/v1/runs/{other.pk}", f"/api/v1/runs/{other.pk}/events"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_native_run_writes_are_narrowed_to_the_app(two_apps: dict[str, Any]) -> None:
    client, other = two_apps["client"], two_apps["run_other"]
    runs_before = Run.objects.count()
    assert client.post(f"/api/v1/runs/{other.pk}/replay").status_code == 404
    assert client.post(f"/api/v1/runs/{other.pk}/stop").status_code == 404
    assert client.post(f"/api/v1/workflows/{two_apps['wf_other'].pk}/trigger", {"payload": {"name": "x"}},
                       format="json").status_code == 404
    response = client.post("/api/v1/workflows/run", {"workflowId": str(two_apps["wf_other"].pk),
                                                      "params": {"name": "x"}}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == [
        {"path": "/workflowId", "message": "no such workflow"}]
    assert Run.objects.count() == runs_before
    # Its own app's workflow runs.
    response = client.post("/api/v1/workflows/run", {"workflowId": str(two_apps["wf_mine"].pk),
                                                      "params": {"name": "ok"}}, format="json")
    assert response.status_code == 200 and response.json()["outputs"] == {"greeting": "ok"}
    assert Run.objects.count() == runs_before + 1
