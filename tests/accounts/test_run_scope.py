"""The ``run`` scope reaches only the runs its token started (API.md: "start, stop, read own runs"):
another token's run is a 404 to read, stop or replay, in every dialect, and nothing changes; ``read``
reads every run, ``manage`` stops and replays any."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Team
from runs.models import Run, RunStatus
from tests.conftest import client_with_token, db_snapshot, published_make

pytestmark = pytest.mark.django_db


def start(client: APIClient, workflow: Any) -> Run:
    response = client.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "mode": "async",
                                                     "params": {"name": "x"}}, format="json")
    assert response.status_code == 202, response.content
    return Run.objects.get(pk=response.json()["runId"])


@pytest.fixture
def env(team_a: Team, team_b: Team) -> dict[str, Any]:
    workflow = published_make(team_a)
    clients = {name: client_with_token(team_a, scopes, app=workflow.app if name.startswith("app") else None)
               for name, scopes in [("mine", ["run"]), ("other", ["run"]), ("reader", ["run", "read"]),
                                    ("operator", ["run", "manage"]), ("app_mine", ["run"]), ("app_other", ["run"])]}
    runs = {name: start(clients[name], workflow) for name in ("mine", "other", "app_mine", "app_other")}
    return {"workflow": workflow, "clients": clients, "runs": runs}


def test_a_run_token_reads_stops_and_replays_only_its_own_runs(env: dict[str, Any]) -> None:
    mine, other = env["runs"]["mine"], env["runs"]["other"]
    client = env["clients"]["mine"]
    before = db_snapshot()
    for method, path in [("get", f"/api/v1/runs/{other.pk}"), ("get", f"/api/v1/runs/{other.pk}/events"),
                         ("post", f"/api/v1/runs/{other.pk}/stop"), ("post", f"/api/v1/runs/{other.pk}/replay")]:
        response = getattr(client, method)(path)
        assert response.status_code == 404, (path, response.status_code)
    assert db_snapshot() == before  # nothing stopped, nothing replayed
    listed = client.get("/api/v1/runs").json()["data"]
    assert [r["id"] for r in listed] == [str(mine.pk)]
    assert client.get(f"/api/v1/runs/{mine.pk}").json()["id"] == str(mine.pk)
    assert client.post(f"/api/v1/runs/{mine.pk}/stop").status_code == 200
    replay = client.post(f"/api/v1/runs/{mine.pk}/replay")
    assert replay.status_code == 202 and Run.objects.get(pk=replay.json()["runId"]).token_id == mine.token_id


def test_read_reads_every_run_and_manage_stops_any(env: dict[str, Any]) -> None:
    other = env["runs"]["other"]
    reader, operator = env["clients"]["reader"], env["clients"]["operator"]
    assert reader.get(f"/api/v1/runs/{other.pk}").status_code == 200
    assert len(reader.get("/api/v1/runs").json()["data"]) == 4
    before = db_snapshot()
    assert reader.post(f"/api/v1/runs/{other.pk}/stop").status_code == 404  # reading is not stopping
    assert db_snapshot() == before
    assert operator.post(f"/api/v1/runs/{other.pk}/stop").status_code == 200
    assert Run.objects.get(pk=other.pk).status in (RunStatus.STOPPED, "stopping")


def test_the_dialects_narrow_a_run_token_to_its_own_runs(env: dict[str, Any]) -> None:
    mine, other = env["runs"]["app_mine"], env["runs"]["app_other"]
    client = env["clients"]["app_mine"]
    before = db_snapshot()
    assert client.get(f"/v1/workflows/run/{other.pk}").status_code == 404
    assert client.get(f"/task/{other.task_id}").status_code == 404
    assert client.post(f"/cancel/{other.pk}").status_code == 404
    stopped = client.post(f"/v1/workflows/tasks/{other.task_id}/stop", {"user": "u"}, format="json")
    assert stopped.status_code == 200 and stopped.json() == {"result": "success"}  # Dify answers success always
    assert db_snapshot() == before  # but stopped nothing
    logs = client.get("/v1/workflows/logs").json()
    assert [entry["workflow_run"]["id"] for entry in logs["data"]] == [str(mine.pk)]
    assert client.get(f"/v1/workflows/run/{mine.pk}").status_code == 200
    assert client.get(f"/task/{mine.task_id}").status_code == 200
    assert client.post(f"/cancel/{mine.pk}").status_code == 200
