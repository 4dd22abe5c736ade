"""Dify-style API in-process: blocking runs, stop, run detail, logs, parameters, info, and every
endpoint's errors in Dify's body (no run row written on bad input)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from runs.dialects.dify import dify_stream_event
from runs.models import Run
from runs.services import run_create
from tests.conftest import client_with_token
from tests.runs.conftest import FIDELITY_GRAPH, RunEnv, run_count, run_env_make


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
                         "total_steps", "created_at", "finished_at", "exceptions_count"}
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
    # Started by the app token: a run token stops only the runs it started (API.md).
    return run_create(team=env.team, workflow=env.workflow, inputs={"name": "P"}, mode=mode, dialect="dify",
                      user=user, token=env.app_token_row())


@pytest.mark.parametrize("path", ["/v1/workflows/tasks/{task_id}/stop", "/v1/workflows/{task_id}/stop"])
def test_stop_by_task_id_in_any_mode(run_env: RunEnv, path: str) -> None:
    run = _pending_run(run_env)
    response = run_env.client().post(path.format(task_id=run.task_id), {"user": "alice"}, format="json")
    assert response.status_code == 200 and response.json() == {"result": "success"}
    run.refresh_from_db()
    assert run.status == "stopped"


def test_run_detail(run_env: RunEnv) -> None:
    client = run_env.client()
    run_id = client.post("/v1/workflows/run", {"inputs": {"name": "D"}, "user": "u"}, format="json").json()[
        "workflow_run_id"]
    body = client.get(f"/v1/workflows/run/{run_id}").json()
    assert set(body) == {"id", "workflow_id", "status", "inputs", "outputs", "error", "total_steps",
                         "total_tokens", "created_at", "finished_at", "elapsed_time", "exceptions_count"}
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
    assert_dify_error(other.get(f"/v1/workflows/run/{run.pk}"), 404, "not_found")


# Fidelity: only Dify's values reach a Dify client -----------------------------------------------

@pytest.fixture
def fidelity_env(transactional_db: Any, team_a: Any, team_b: Any) -> RunEnv:
    return run_env_make(team_a, team_b, FIDELITY_GRAPH)


def test_blocking_run_counts_the_failure_it_went_on_past(fidelity_env: RunEnv) -> None:
    client = fidelity_env.client()
    body = client.post("/v1/workflows/run", {"inputs": {}, "user": "u"}, format="json").json()
    assert body["data"]["status"] == "succeeded", body
    assert body["data"]["outputs"] == {"squares": [1, 4, 9], "left": "L"}
    assert body["data"]["exceptions_count"] == 1
    detail = client.get(f"/v1/workflows/run/{body['workflow_run_id']}").json()
    assert detail["exceptions_count"] == 1
    log = client.get("/v1/workflows/logs").json()["data"][0]
    assert log["workflow_run"]["exceptions_count"] == 1


def test_stream_mapping_skipped_loop_exception() -> None:
    run = Run(task_id="00000000-0000-0000-0000-000000000001", workflow_id="00000000-0000-0000-0000-000000000002")
    base = {"id": "k", "node_id": "n", "node_type": "transform", "title": "N", "index": 1,
            "created_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:01+00:00"}
    skipped = {"type": "node_finished", "data": base | {"status": "skipped"}, "createdAt": None}
    assert dify_stream_event(run, skipped) is None
    assert dify_stream_event(run, {"type": "node_started", "data": base | {"status": "skipped"}}) is None
    loop = dify_stream_event(run, {"type": "node_finished", "data": base | {"status": "succeeded",
                                                                            "outputs": [1, 4]}})
    assert loop is not None and loop[1]["outputs"] == {"output": [1, 4]} and loop[1]["status"] == "succeeded"
    continued = dify_stream_event(run, {"type": "node_finished", "data": base | {
        "status": "failed", "outputs": {"error": {"code": "expression_error", "message": "division by zero"}},
        "error": {"code": "expression_error", "message": "division by zero"}}})
    assert continued is not None and continued[1]["status"] == "exception"
    assert continued[1]["error"] == "division by zero"
    fatal = dify_stream_event(run, {"type": "node_finished", "data": base | {"status": "failed", "error": "x"}})
    assert fatal is not None and fatal[1]["status"] == "failed" and fatal[1]["outputs"] is None


def test_stop_answers_success_for_any_task_and_stops_only_the_users_run(run_env: RunEnv) -> None:
    run = _pending_run(run_env)
    client = run_env.client()
    # Dify requires the user.
    assert_dify_error(client.post(f"/v1/workflows/tasks/{run.task_id}/stop", {}, format="json"), 400,
                      "invalid_param", "user")
    for task_id, user in ((run.task_id, "mallory"), ("not-a-task", "alice"), (run.pk, "alice")):
        response = client.post(f"/v1/workflows/tasks/{task_id}/stop", {"user": user}, format="json")
        assert response.status_code == 200 and response.json() == {"result": "success"}
    run.refresh_from_db()
    assert run.status == "pending"  # another user's stop, an unknown task and a run id stopped nothing
    other = client_with_token(run_env.other_team, ["run", "read"])
    response = other.post(f"/v1/workflows/tasks/{run.task_id}/stop", {"user": "alice"}, format="json")
    assert response.status_code == 200 and response.json() == {"result": "success"}
    run.refresh_from_db()
    assert run.status == "pending"  # another team's token changes nothing
    client.post(f"/v1/workflows/{run.task_id}/stop", {"user": "alice"}, format="json")
    run.refresh_from_db()
    assert run.status == "stopped"


def test_logs_filter_by_end_user_session_and_account(run_env: RunEnv, owner_a: Any) -> None:
    client = run_env.client()
    for user in ("alice", "bob", "alice"):
        client.post("/v1/workflows/run", {"inputs": {"name": user}, "user": user}, format="json")
    run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "acc"}, mode="async",
               dialect="native", user="", created_by=owner_a)
    alice = client.get("/v1/workflows/logs", {"created_by_end_user_session_id": "alice"}).json()
    assert alice["total"] == 2
    assert {e["created_by_end_user"]["session_id"] for e in alice["data"]} == {"alice"}
    assert client.get("/v1/workflows/logs", {"created_by_end_user_session_id": "carol"}).json()["total"] == 0
    account = client.get("/v1/workflows/logs", {"created_by_account": owner_a.email.upper()}).json()
    assert account["total"] == 1
    entry = account["data"][0]
    assert entry["created_by_role"] == "account" and entry["created_by_end_user"] is None
    assert entry["created_by_account"]["email"] == owner_a.email
    assert client.get("/v1/workflows/logs", {"created_by_account": "nobody@x.example"}).json()["total"] == 0


def test_meta_and_site(run_env: RunEnv) -> None:
    client = run_env.client()
    assert client.get("/v1/meta").json() == {"tool_icons": {}}
    site = client.get("/v1/site").json()
    assert site["title"] == run_env.app.name and site["description"] == "Greets people"
    assert {"icon_type", "icon", "icon_background", "default_language", "show_workflow_steps",
            "copyright", "privacy_policy", "custom_disclaimer"} <= set(site)
    team_only = run_env.client(run_env.team_token)
    assert_dify_error(team_only.get("/v1/site"), 400, "app_unavailable")


@pytest.mark.parametrize("method,path", [("get", "/v1/nope"), ("post", "/v1/chat-messages"),
                                         ("get", "/v1/workflows/run/x/y"), ("delete", "/v1/"),
                                         ("get", "/v1/info/")])
def test_every_unknown_v1_path_is_a_dify_json_404(run_env: RunEnv, method: str, path: str) -> None:
    for client in (run_env.client(), client_with_token(run_env.other_team, ["read"]), APIClient()):
        assert_dify_error(getattr(client, method)(path), 404, "not_found")


def test_parameters_form_types_from_declarations(transactional_db: Any, team_a: Any, team_b: Any) -> None:
    graph = {
        "inputs": {
            "title": {"type": "string", "title": "Title", "maxLength": 80, "minLength": 1, "required": True},
            "body": {"type": "string", "title": "Body", "format": "paragraph"},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
            "doc": {"type": "file", "accept": ["application/pdf", ".csv"]},
            "pics": {"type": "file", "multiple": True, "accept": ["image/*"]},
        },
        "outputs": {}, "params": {},
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end", "config": {"outputs": {}}}],
        "edges": [{"from": "start", "to": "end"}],
    }
    env = run_env_make(team_a, team_b, graph)
    form = {next(iter(item.values()))["variable"]: item for item in env.client().get("/v1/parameters").json()[
        "user_input_form"]}
    assert form["title"] == {"text-input": {"label": "Title", "variable": "title", "required": True, "default": "",
                                            "max_length": 80}}
    assert form["body"]["paragraph"]["label"] == "Body"
    assert form["kind"]["select"]["options"] == ["a", "b"]
    assert form["count"]["number"]["default"] == 2
    doc = form["doc"]["file"]
    assert doc["allowed_file_types"] == ["document", "custom"] and doc["allowed_file_extensions"] == [".csv"]
    pics = form["pics"]["file-list"]
    assert pics["allowed_file_types"] == ["image"] and pics["default"] == []
    # The declarations are enforced: bounds are checked before anything runs.
    client = env.client()
    before = run_count()
    response = client.post("/v1/workflows/run", {"inputs": {"title": "", "count": 11}, "user": "u"}, format="json")
    body = assert_dify_error(response, 400, "invalid_param")
    assert body["params"] == "inputs.count" and "/inputs/title" in body["message"]
    assert run_count() == before
