"""Cached token and app resolution (config/stamp.py): a warm request reads one stamp instead of the
token and workflow rows, and every change that alters a resolution (a revocation however it is
made, a publish) is seen by the next request, in this process and in other real server processes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken, GlobalParameter, Team
from accounts.selectors import parameters_get
from accounts.services import parameters_replace, token_create, token_revoke
from tests.conftest import published_make
from tests.runs.conftest import RunEnv, run_env_make
from tests.support.processes import daphne
from workflows.services import workflow_publish, workflow_update

pytestmark = pytest.mark.django_db(transaction=True)


def graph(tag: str) -> dict[str, Any]:
    return {
        "inputs": {"name": {"type": "string", "required": True}}, "outputs": {}, "params": {},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "end", "type": "end", "config": {"outputs": {"greeting": f"{{{{ '{tag} ' + inputs.name }}}}"}}}],
        "edges": [{"from": "start", "to": "end"}],
    }


@pytest.fixture
def env(transactional_db: Any, team_a: Team, team_b: Team) -> RunEnv:
    return run_env_make(team_a, team_b, graph=graph("v1"))


def dify_run(base: str, token: str) -> requests.Response:
    return requests.post(f"{base}/v1/workflows/run", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         json={"inputs": {"name": "Ada"}, "response_mode": "blocking", "user": "u"})


def greeting(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["data"]["outputs"]["greeting"]


def test_a_warm_request_reads_the_stamp_not_the_token_and_sees_a_bulk_revocation(env: RunEnv) -> None:
    client = env.client(env.team_token)
    assert client.get("/api/v1/apps").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/apps").status_code == 200
    assert not [q for q in queries.captured_queries if "accounts_apitoken" in q["sql"]], queries.captured_queries
    # Revoked behind the services' back (a bulk update): the database moved the stamp itself.
    ApiToken.objects.filter(team=env.team, app__isnull=True).update(revoked_at=timezone.now())
    assert client.get("/api/v1/apps").status_code == 401


def test_two_server_processes_refuse_a_revoked_token_at_once_and_run_a_new_version_at_once(env: RunEnv) -> None:
    with daphne() as (_, first), daphne() as (_, second):
        for base in (first, second):
            for _ in range(3):  # warm both caches
                assert greeting(dify_run(base, env.app_token)) == "v1 Ada"
        workflow_update(team=env.team, workflow=env.workflow, graph=graph("v2"))
        workflow_publish(team=env.team, workflow=env.workflow)
        for base in (first, second):
            assert greeting(dify_run(base, env.app_token)) == "v2 Ada"
        token = ApiToken.objects.get(team=env.team, app=env.app)
        token_revoke(team=env.team, token=token)
        for base in (first, second):
            refused = dify_run(base, env.app_token)
            assert refused.status_code == 401, refused.text


def test_a_token_of_another_team_is_never_served_from_the_cache(env: RunEnv, team_b: Team) -> None:
    other = published_make(team_b, graph=copy.deepcopy(graph("b")))
    _, secret = token_create(team=team_b, name="b", scopes=["read"])
    client = env.client(secret)
    for _ in range(2):
        assert client.get(f"/api/v1/workflows/{env.workflow.pk}").status_code == 404
        assert client.get(f"/api/v1/workflows/{other.pk}").status_code == 200


def test_team_parameters_are_cached_until_they_change(env: RunEnv) -> None:
    parameters_replace(team=env.team, values={"region": "eu"})
    assert parameters_get(team=env.team) == {"region": "eu"}
    with CaptureQueriesContext(connection) as queries:
        assert parameters_get(team=env.team) == {"region": "eu"}
    assert not [q for q in queries.captured_queries if "globalparameter" in q["sql"]]
    GlobalParameter.objects.filter(team=env.team).update(value="us")  # behind the services' back
    assert parameters_get(team=env.team) == {"region": "us"}
    parameters_get(team=env.team)["region"] = "changed by a caller"
    assert parameters_get(team=env.team) == {"region": "us"}
