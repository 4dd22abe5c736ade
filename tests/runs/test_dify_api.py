"""Dify-style API in-process: blocking runs, stop, run detail, logs, parameters, info, and every
endpoint's errors in Dify's body (no run row written on bad input)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from runs.models import Run
from runs.services import run_create
from tests.conftest import client_with_token
from tests.runs.conftest import RunEnv, run_count


def assert_dify_error(response: Any, status: int, code: str, params: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["message"], body
    if params is not None:
        assert body["params"] == params, body
    return body


def test_blocking_run_answers_dify_body(run_env: RunEnv) -> None:
    response = run_env.client().post("/v1/workflows/run", {"inputs": {"name": "Ann", "amount": 3},
                                                          "response_mode": "blocking", "user": "u-1"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    run = Run.objects.get()
    assert body["task_id"] == str(run.task_id) and body["workflow_run_id"] == str(run.pk)
    data = body["data"]
    assert set(data) == {"id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens",
                         "total_steps", "created_at", "finished_at"}
    assert data["status"] == "succeeded" and data["outputs"] == {"greeting": "Hello Ann", "total": 6.0}
    assert data["error"] is None and data["total_steps"] == 4
    assert isinstance(data["created_at"], int) and abs(data["created_at"] - timezone.now().timestamp()) < 60
    assert (run.dialect, run.mode, run.user, run.trigger) == ("dify", "blocking", "u-1", "api")
    assert run.token_id is not None


def test_run_a_given_version_by_path(run_env: RunEnv) -> None:
    version = run_env.workflow.active_version
    for ident in (version.pk, run_env.workflow.pk):
        response = run_env.client().post(f"/v1/workflows/{ident}/run", {"inputs": {"name": "V"}, "user": "u"},
                                         format="json")
        assert response.status_code == 200, response.content
        assert response.json()["data"]["outputs"]["greeting"] == "Hello V"


@pytest.mark.parametrize(("body", "params"), [
    ({"inputs": {"amount": 1}, "user": "u"}, "inputs.name"),
    ({"inputs": {"name": "x", "amount": "many"}, "user": "u"}, "inputs.amount"),
    ({"inputs": {"name": "x", "tier": "bronze"}, "user": "u"}, "inputs.tier"),
    ({"inputs": "nope", "user": "u"}, "inputs"),
    ({"user": "u"}, "inputs"),
    ({"inputs": {"name": "x"}}, "user"),
    ({"inputs": {"name": "x"}, "user": "u", "response_mode": "sometimes"}, "response_mode"),
])
def test_run_bad_input_is_invalid_param_naming_the_field(run_env: RunEnv, body: dict, params: str) -> None:
    response = run_env.client().post("/v1/workflows/run", body, format="json")
    assert_dify_error(response, 400, "invalid_param", params)
    assert run_count() == 0


def test_run_body_not_json_is_bad_request(run_env: RunEnv) -> None:
    response = run_env.client().post("/v1/workflows/run", "{not json", content_type="application/json")
    assert_dify_error(response, 400, "bad_request")
    assert run_count() == 0


def test_unauthorized_has_www_authenticate(run_env: RunEnv) -> None:
    from rest_framework.test import APIClient

    for client in (APIClient(), run_env.client("weft_nope_nope")):
        response = client.post("/v1/workflows/run", {"inputs": {"name": "x"}, "user": "u"}, format="json")
        assert_dify_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert run_count() == 0


def test_team_token_without_app_is_app_unavailable(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    for method, url, body in [("post", "/v1/workflows/run", {"inputs": {"name": "x"}, "user": "u"}),
                              ("get", "/v1/parameters", None), ("get", "/v1/info", None),
                              ("get", "/v1/workflows/logs", None)]:
        response = getattr(client, method)(url, body, format="json")
        body_out = assert_dify_error(response, 400, "app_unavailable")
        assert "app token" in body_out["message"]
    assert run_count() == 0


def test_unpublished_app_is_app_unavailable(run_env: RunEnv) -> None:
    run_env.workflow.active_version = None
    run_env.workflow.save(update_fields=["active_version"])
    response = run_env.client().post("/v1/workflows/run", {"inputs": {"name": "x"}, "user": "u"}, format="json")
    assert_dify_error(response, 400, "app_unavailable")
    response = run_env.client().get("/v1/parameters")
    assert_dify_error(response, 400, "app_unavailable")
    assert run_count() == 0


def test_missing_scope_is_forbidden(run_env: RunEnv) -> None:
    client = client_with_token(run_env.team, ["read"], app=run_env.app)
    response = client.post("/v1/workflows/run", {"inputs": {"name": "x"}, "user": "u"}, format="json")
    assert_dify_error(response, 403, "forbidden")
    assert run_count() == 0


def _pending_run(env: RunEnv, *, user: str = "alice", mode: str = "async") -> Run:
    return run_create(team=env.team, workflow=env.workflow, inputs={"name": "P"}, mode=mode, dialect="dify",
                      user=user)


@pytest.mark.parametrize("path", ["/v1/workflows/tasks/{task_id}/stop", "/v1/workflows/{task_id}/stop"])
def test_stop_by_task_id_in_any_mode(run_env: RunEnv, path: str) -> None:
    run = _pending_run(run_env)
    response = run_env.client().post(path.format(task_id=run.task_id), {"user": "alice"}, format="json")
    assert response.status_code == 200 and response.json() == {"result": "success"}
    run.refresh_from_db()
    assert run.status == "stopped"


def test_stop_errors(run_env: RunEnv) -> None:
    run = _pending_run(run_env)
    client = run_env.client()
    assert_dify_error(client.post(f"/v1/workflows/tasks/{run.task_id}/stop", {}, format="json"), 400,
                      "invalid_param", "user")
    assert_dify_error(client.post(f"/v1/workflows/tasks/{run.task_id}/stop", {"user": "mallory"}, format="json"),
                      400, "invalid_param", "user")
    assert_dify_error(client.post("/v1/workflows/tasks/not-a-task/stop", {"user": "alice"}, format="json"),
                      404, "not_found")
    # The run id is not the task id.
    assert_dify_error(client.post(f"/v1/workflows/tasks/{run.pk}/stop", {"user": "alice"}, format="json"),
                      404, "not_found")
    run.refresh_from_db()
    assert run.status == "pending"


def test_run_detail(run_env: RunEnv) -> None:
    client = run_env.client()
    run_id = client.post("/v1/workflows/run", {"inputs": {"name": "D"}, "user": "u"}, format="json").json()[
        "workflow_run_id"]
    body = client.get(f"/v1/workflows/run/{run_id}").json()
    assert set(body) == {"id", "workflow_id", "status", "inputs", "outputs", "error", "total_steps",
                         "total_tokens", "created_at", "finished_at", "elapsed_time"}
    assert body["status"] == "succeeded" and body["inputs"]["name"] == "D" and body["outputs"]["greeting"] == "Hello D"
    assert isinstance(body["finished_at"], int)
    assert_dify_error(client.get("/v1/workflows/run/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    assert_dify_error(client.get("/v1/workflows/run/garbage"), 404, "not_found")


def test_logs_page_filter_keyword(run_env: RunEnv) -> None:
    client = run_env.client()
    for name in ("alpha", "beta", "gamma"):
        client.post("/v1/workflows/run", {"inputs": {"name": name}, "user": "u"}, format="json")
    stopped = _pending_run(run_env)
    client.post(f"/v1/workflows/{stopped.task_id}/stop", {"user": "alice"}, format="json")
    body = client.get("/v1/workflows/logs", {"page": 1, "limit": 2}).json()
    assert (body["page"], body["limit"], body["total"], body["has_more"]) == (1, 2, 4, True)
    entry = body["data"][0]
    assert {"id", "workflow_run", "created_from", "created_by_role", "created_by_end_user", "created_at"} <= set(entry)
    assert {"id", "status", "elapsed_time", "total_steps", "created_at", "finished_at"} <= set(entry["workflow_run"])
    assert client.get("/v1/workflows/logs", {"page": 2, "limit": 2}).json()["has_more"] is False
    assert client.get("/v1/workflows/logs", {"status": "stopped"}).json()["total"] == 1
    found = client.get("/v1/workflows/logs", {"keyword": "gamma"}).json()
    assert found["total"] == 1 and found["data"][0]["workflow_run"]["status"] == "succeeded"
    assert_dify_error(client.get("/v1/workflows/logs", {"limit": 0}), 400, "invalid_param", "limit")
    assert_dify_error(client.get("/v1/workflows/logs", {"status": "odd"}), 400, "invalid_param", "status")


def test_parameters_user_input_form(run_env: RunEnv) -> None:
    body = run_env.client().get("/v1/parameters").json()
    form = {next(iter(item.values()))["variable"]: item for item in body["user_input_form"]}
    assert form["name"] == {"text-input": {"label": "Who to greet", "variable": "name", "required": True,
                                           "default": "", "max_length": 256, "description": "Who to greet"}}
    assert form["amount"]["number"]["default"] == 1 and form["amount"]["number"]["required"] is False
    assert form["tier"]["select"]["options"] == ["gold", "silver"]
    assert "file_upload" in body and "system_parameters" in body


def test_info(run_env: RunEnv) -> None:
    body = run_env.client().get("/v1/info").json()
    assert body == {"name": run_env.app.name, "description": "Greets people", "tags": ["test"], "mode": "workflow",
                    "author_name": ""}


def test_other_teams_run_is_not_found_even_with_a_valid_task(run_env: RunEnv) -> None:
    run = _pending_run(run_env)
    other = client_with_token(run_env.other_team, ["run", "read"])
    assert_dify_error(other.post(f"/v1/workflows/tasks/{run.task_id}/stop", {"user": "alice"}, format="json"),
                      404, "not_found")
    assert_dify_error(other.get(f"/v1/workflows/run/{run.pk}"), 404, "not_found")
    run.refresh_from_db()
    assert run.status == "pending"
