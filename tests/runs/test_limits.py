"""Limits: requests per minute per token and per team (exactly k of N+k concurrent requests refused,
429 with Retry-After, in each dialect's error format), request body size (413), concurrent runs."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from accounts.tokens import token_split
from runs.limits import window_counts
from runs.models import Run
from tests.conftest import client_with_token
from tests.runs.conftest import RunEnv, run_count, run_env_make


@pytest.fixture(autouse=True)
def fresh_window() -> None:
    # Counters are keyed by token and team, and every test makes its own: no clearing needed (and
    # clearing a shared Redis would also drop what parallel test processes keep there).
    if time.time() % 60 > 55:  # keep a burst inside one fixed window
        time.sleep(61 - time.time() % 60)


def burst(clients: list[APIClient], method: str, url: str, body: Any = None) -> list[Any]:
    """Send one request per client at the same moment; the responses."""
    barrier = threading.Barrier(len(clients))
    responses: list[Any] = [None] * len(clients)

    def send(i: int) -> None:
        barrier.wait()
        try:
            responses[i] = getattr(clients[i], method)(url, body, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return responses


def refused(responses: list[Any]) -> list[Any]:
    return [r for r in responses if r.status_code == 429]


@override_settings(WEFT_RATE_LIMIT_PER_MINUTE=5, WEFT_TEAM_RATE_LIMIT_PER_MINUTE=0)
def test_token_limit_refuses_exactly_k_of_n_plus_k_concurrent_requests(run_env: RunEnv) -> None:
    clients = [run_env.client() for _ in range(8)]
    responses = burst(clients, "get", "/v1/info")
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 3
    for r in refused(responses):
        assert 1 <= int(r["Retry-After"]) <= 60
        assert r.json()["code"] == "too_many_requests" and r.json()["status"] == 429
    # Another token of the same team has its own budget.
    assert client_with_token(run_env.team, ["read"], app=run_env.app).get("/v1/info").status_code == 200


@override_settings(WEFT_RATE_LIMIT_PER_MINUTE=0, WEFT_TEAM_RATE_LIMIT_PER_MINUTE=4)
def test_team_limit_counts_every_token_of_the_team(run_env: RunEnv) -> None:
    clients = [client_with_token(run_env.team, ["read"]) for _ in range(6)]
    responses = burst(clients, "get", "/api/v1/runs")
    assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 2
    for r in refused(responses):
        assert r["Content-Type"] == "application/problem+json" and r.json()["code"] == "rate_limited"
        assert int(r["Retry-After"]) >= 1
    # The other team is not affected.
    assert client_with_token(run_env.other_team, ["read"]).get("/api/v1/runs").status_code == 200


@override_settings(WEFT_RATE_LIMIT_PER_MINUTE=3, WEFT_TEAM_RATE_LIMIT_PER_MINUTE=0)
def test_refused_run_requests_write_no_run(run_env: RunEnv) -> None:
    clients = [run_env.client() for _ in range(5)]
    responses = burst(clients, "post", "/run", {"name": "x"})
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 2
    assert run_count() == 3


def test_window_counts_are_per_minute() -> None:
    key = f"k-{uuid.uuid4().hex}"
    assert window_counts([key], now=120.0) == [(1, 60)]
    assert window_counts([key], now=179.5) == [(2, 1)]
    assert window_counts([key], now=180.0) == [(1, 60)]


@override_settings(WEFT_MAX_BODY_BYTES=2000)
def test_body_over_the_limit_is_413_in_each_format(run_env: RunEnv) -> None:
    big = {"name": "x" * 5000}
    response = run_env.client().post("/v1/workflows/run", {"inputs": big, "user": "u"}, format="json")
    assert response.status_code == 413
    assert response.json() == {"code": "request_entity_too_large", "message": response.json()["message"],
                               "status": 413}
    response = run_env.client(run_env.team_token).post(f"/api/v1/workflows/{run_env.workflow.pk}/trigger",
                                                       {"payload": big}, format="json")
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    response = run_env.client().post("/run", big, format="json")  # the Coze runtime's body
    assert response.status_code == 413 and response.json()["detail"]["error_code"] == "payload_too_large"
    assert run_env.client().post("/run", {"name": "small"}, format="json").status_code == 200
    assert run_count() == 1


@override_settings(WEFT_MAX_CONCURRENT_RUNS=1, WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN=0)
def test_concurrent_runs_per_team(run_env: RunEnv) -> None:
    busy = active_run(run_env, mode="streaming")
    response = run_env.client().post("/v1/workflows/run", {"inputs": {"name": "x"}, "user": "u"}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "too_many_requests"
    assert response["Retry-After"] == "1" and "team" in response.json()["message"]
    response = run_env.client().post("/run", {"name": "x"}, format="json")
    assert response.status_code == 429 and response.json()["detail"]["error_code"] == "rate_limited"
    assert run_count() == 1
    # Async runs queue instead: never refused for concurrency.
    response = run_env.client(run_env.team_token).post(
        "/api/v1/workflows/run", {"workflowId": str(run_env.workflow.pk), "params": {"name": "x"}, "mode": "async"},
        format="json")
    assert response.status_code == 202 and run_count() == 2
    # Another team is not affected.
    other = run_env_make(run_env.other_team, run_env.team)
    assert other.client().post("/run", {"name": "x"}, format="json").status_code == 200
    # Once the busy run ends, the team can run again.
    Run.objects.filter(pk=busy.pk).update(status="succeeded")
    assert run_env.client().post("/run", {"name": "x"}, format="json").status_code == 200


@override_settings(WEFT_MAX_CONCURRENT_RUNS=0, WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN=1)
def test_concurrent_runs_per_token(run_env: RunEnv) -> None:
    active_run(run_env, mode="blocking", token=ApiToken.objects.get(prefix=token_split(run_env.app_token)[0]))
    response = run_env.client().post("/run", {"name": "x"}, format="json")
    assert response.status_code == 429 and "token" in response.json()["detail"]["error_message"]
    # Another token of the same team has its own allowance.
    _, second = token_create(team=run_env.team, name="second", scopes=["run"], app=run_env.app)
    assert run_env.client(second).post("/run", {"name": "x"}, format="json").status_code == 200


@override_settings(WEFT_MAX_CONCURRENT_RUNS=2, WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN=0,
                   WEFT_RATE_LIMIT_PER_MINUTE=0, WEFT_TEAM_RATE_LIMIT_PER_MINUTE=0)
def test_a_burst_over_the_concurrency_limit_gets_exactly_k_refusals(run_env: RunEnv) -> None:
    """Five simultaneous blocking runs of two seconds with a team limit of two: exactly three 429s,
    and exactly two runs written (the count and the insert are atomic)."""
    clients = [run_env.client() for _ in range(5)]
    responses = burst(clients, "post", "/run", {"name": "x", "seconds": 2})
    assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 3
    assert run_count() == 2
    assert set(Run.objects.values_list("status", flat=True)) == {"succeeded"}


def active_run(run_env: RunEnv, *, mode: str, token: ApiToken | None = None) -> Run:
    now = timezone.now()
    return Run.objects.create(team=run_env.team, app=run_env.app, workflow=run_env.workflow,
                              version=run_env.workflow.active_version, status="running", mode=mode, token=token,
                              inputs={"name": "busy"}, business_time=now, deadline=now + timedelta(minutes=15))
