"""Native API: a body field the endpoint does not declare is a 400 naming it (with a hint when a
declared field is close), never silently ignored; nothing is written. The Dify and Coze dialects
accept extra fields, as their originals do."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from runs.models import Run
from tests.bad_input import assert_bad_input
from tests.runs.conftest import RunEnv


def test_run_start_with_inputs_instead_of_params_names_the_field(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    problem = assert_bad_input(client, "POST", "/api/v1/workflows/run",
                               {"workflowId": str(run_env.workflow.pk), "inputs": {"name": "x"}}, {"/inputs"})
    assert {"path": "/inputs", "message": "unknown field (did you mean params?)"} in problem["errors"]
    assert Run.objects.count() == 0


def test_token_with_app_instead_of_app_id_is_refused_not_a_team_token(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    problem = assert_bad_input(client, "POST", "/api/v1/tokens",
                               {"name": "t", "scopes": ["run"], "app": str(run_env.app.pk)}, {"/app"})
    assert {"path": "/app", "message": "unknown field (did you mean appId?)"} in problem["errors"]


@pytest.mark.parametrize("method,url,body,field", [
    ("POST", "/api/v1/apps", {"name": "a", "colour": "red"}, "/colour"),
    ("POST", "/api/v1/workflows/{workflow}/trigger", {"payload": {}, "inputs": {}}, "/inputs"),
    ("POST", "/api/v1/offline/submit", {"jobId": "j", "workflowId": "{workflow}", "items": [{}], "callback": "x"},
     "/callback"),
])
def test_unknown_fields_everywhere_native(run_env: RunEnv, method: str, url: str, body: dict[str, Any],
                                          field: str) -> None:
    workflow = str(run_env.workflow.pk)
    body = {k: (v.format(workflow=workflow) if isinstance(v, str) else v) for k, v in body.items()}
    assert_bad_input(run_env.client(run_env.team_token), method, url.format(workflow=workflow), body, {field})


def test_several_unknown_fields_are_all_named_with_the_other_errors(run_env: RunEnv) -> None:
    problem = assert_bad_input(run_env.client(run_env.team_token), "POST", "/api/v1/workflows/run",
                               {"workflowId": "nope", "x": 1, "y": 2}, {"/x", "/y", "/workflowId"})
    assert len(problem["errors"]) == 3


def test_the_dialects_accept_extra_fields(run_env: RunEnv) -> None:
    client: APIClient = run_env.client()
    dify = client.post("/v1/workflows/run", {"inputs": {"name": "D"}, "user": "u", "conversation_id": ""},
                       format="json")
    assert dify.status_code == 200, dify.content
    assert client.post("/run", {"name": "C", "extra": True}, format="json").status_code == 200
