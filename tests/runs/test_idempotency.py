"""``Idempotency-Key`` on every run-starting endpoint (native, Dify, Coze): the same key and body
start one run and answer it again; the same key with another body is a 409 naming the header;
keys expire (``WEFT_IDEMPOTENCY_TTL``) and are swept by an hourly django-q2 schedule."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone
from django_q.models import Schedule

from runs.idempotency import idempotency_sweep
from runs.models import IdempotencyKey, Run
from runs.scheduling import IDEMPOTENCY_SCHEDULE_NAME, schedules_ensure
from runs.tasks import idempotency_sweep_task
from tests.runs.conftest import RunEnv, run_count

KEY = {"HTTP_IDEMPOTENCY_KEY": "order-42-attempt"}


def native_body(env: RunEnv, mode: str = "blocking", name: str = "Ann") -> dict[str, Any]:
    return {"workflowId": str(env.workflow.pk), "params": {"name": name}, "mode": mode}


def test_native_blocking_same_key_same_body_answers_the_first_run(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    first = client.post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY)
    again = client.post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and again.json()["outputs"] == {"greeting": "Hello Ann",
                                                                                  "total": 2.0}
    assert run_count() == 1
    other = client.post("/api/v1/workflows/run", native_body(run_env, name="Bo"), format="json", **KEY)
    assert other.status_code == 409 and other["Content-Type"].startswith("application/problem+json")
    assert other.json()["errors"] == [{"path": "/Idempotency-Key", "message": "already used with a different request"}]
    assert run_count() == 1
    # Without a key, or with another one, a new run starts.
    assert client.post("/api/v1/workflows/run", native_body(run_env), format="json").json()["id"] != first.json()["id"]
    client.post("/api/v1/workflows/run", native_body(run_env), format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert run_count() == 3


def test_native_async_and_trigger_answer_the_same_run_id(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    first = client.post("/api/v1/workflows/run", native_body(run_env, "async"), format="json", **KEY)
    again = client.post("/api/v1/workflows/run", native_body(run_env, "async"), format="json", **KEY)
    assert first.status_code == again.status_code == 202 and first.json()["runId"] == again.json()["runId"]
    url = f"/api/v1/workflows/{run_env.workflow.pk}/trigger"
    hooked = [client.post(url, {"payload": {"name": "W"}}, format="json", HTTP_IDEMPOTENCY_KEY="hook-1")
              for _ in range(2)]
    assert hooked[0].json()["runId"] == hooked[1].json()["runId"]
    # The same key on another endpoint is another request: a conflict, not a silent answer.
    crossed = client.post(url, {"payload": {"name": "W"}}, format="json", **KEY)
    assert crossed.status_code == 409
    assert run_count() == 2


def test_dify_and_coze_share_the_rule(run_env: RunEnv) -> None:
    client = run_env.client()
    body = {"inputs": {"name": "Cy"}, "user": "u", "response_mode": "blocking"}
    first = client.post("/v1/workflows/run", body, format="json", **KEY).json()
    again = client.post("/v1/workflows/run", body, format="json", **KEY).json()
    assert first["workflow_run_id"] == again["workflow_run_id"] and again["data"]["status"] == "succeeded"
    other = client.post("/v1/workflows/run", {**body, "user": "v"}, format="json", **KEY)
    assert other.status_code == 409 and other.json()["code"] == "workflow_request_error"
    assert "Idempotency-Key" in other.json()["message"]
    coze = [client.post("/async_run", {"name": "Di"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1").json()
            for _ in range(2)]
    assert coze[0]["task_id"] == coze[1]["task_id"]
    assert run_count() == 2


def test_a_key_whose_run_could_not_start_is_released(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    bad = client.post("/api/v1/workflows/run", {**native_body(run_env), "params": {}}, format="json", **KEY)
    assert bad.status_code == 400 and IdempotencyKey.objects.count() == 0
    good = client.post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY)
    assert good.status_code == 200 and run_count() == 1
    long_key = client.post("/api/v1/workflows/run", native_body(run_env), format="json",
                           HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert long_key.status_code == 400 and long_key.json()["errors"][0]["path"] == "/Idempotency-Key"


def test_keys_are_per_team_and_app(run_env: RunEnv, team_b: Any) -> None:
    from tests.runs.conftest import run_env_make

    other = run_env_make(team_b, run_env.team)
    mine = run_env.client(run_env.team_token).post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY)
    theirs = other.client(other.team_token).post("/api/v1/workflows/run", native_body(other), format="json", **KEY)
    assert mine.status_code == theirs.status_code == 200 and mine.json()["id"] != theirs.json()["id"]


def test_expired_keys_start_anew_and_are_swept_hourly(run_env: RunEnv, settings: Any) -> None:
    client = run_env.client(run_env.team_token)
    first = client.post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY).json()
    row = IdempotencyKey.objects.get()
    assert abs((row.expires_at - row.created_at) - timedelta(seconds=settings.WEFT_IDEMPOTENCY_TTL)) < timedelta(
        seconds=2)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    second = client.post("/api/v1/workflows/run", native_body(run_env), format="json", **KEY).json()
    assert second["id"] != first["id"] and IdempotencyKey.objects.get().run_id == Run.objects.get(pk=second["id"]).pk
    IdempotencyKey.objects.create(team=run_env.team, scope="x", key="old", fingerprint="f",
                                  expires_at=timezone.now() - timedelta(hours=1))
    assert idempotency_sweep_task() == 1 and IdempotencyKey.objects.count() == 1
    assert idempotency_sweep(now=timezone.now() + timedelta(days=2)) == 1
    schedules_ensure()
    schedules_ensure()
    schedule = Schedule.objects.get(name=IDEMPOTENCY_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "runs.tasks.idempotency_sweep_task", Schedule.HOURLY, -1)


@pytest.mark.slow
def test_concurrent_retries_start_one_run(live_server_url: str, run_env: RunEnv) -> None:
    body = {"inputs": {"name": "Ed", "seconds": 0.5}, "user": "u", "response_mode": "blocking"}
    answers: list[dict[str, Any]] = []

    def call() -> None:
        answers.append(requests.post(f"{live_server_url}/v1/workflows/run", json=body, timeout=30,
                                     headers=run_env.headers(**{"Idempotency-Key": "race-1"})).json())

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a["workflow_run_id"] for a in answers} == {str(Run.objects.get().pk)}
    assert all(a["data"]["status"] == "succeeded" for a in answers), answers


def test_replay_takes_the_key_too(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    original = client.post("/api/v1/workflows/run", native_body(run_env), format="json").json()
    replays = [client.post(f"/api/v1/runs/{original['id']}/replay", format="json", HTTP_IDEMPOTENCY_KEY="rp-1")
               for _ in range(2)]
    assert replays[0].status_code == replays[1].status_code == 202
    assert replays[0].json()["runId"] == replays[1].json()["runId"]
    assert run_count() == 2
