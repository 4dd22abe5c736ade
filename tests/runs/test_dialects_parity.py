"""The blocking, streaming and async paths of the three dialects return the same outputs for the same
workflow and inputs, over HTTP against a live Daphne, with async runs executed by a real
``manage.py qcluster`` worker process."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from runs.models import Run
from tests.runs.conftest import RunEnv, sse_read

pytestmark = pytest.mark.slow

INPUTS = {"name": "Par", "amount": 4, "tier": "gold"}
EXPECTED = {"greeting": "Hello Par", "total": 8.0}


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_every_dialect_and_mode_returns_the_same_outputs(live_server_url: str, qcluster: Any, run_env: RunEnv) -> None:
    base, app, team = live_server_url, run_env.session(), run_env.session(run_env.team_token)
    outputs: dict[str, Any] = {}

    r = team.post(f"{base}/api/v1/workflows/run", json={"workflowId": str(run_env.workflow.pk), "params": INPUTS})
    outputs["native blocking"] = r.json()["outputs"]
    run_id = team.post(f"{base}/api/v1/workflows/run", json={"workflowId": str(run_env.workflow.pk),
                                                             "params": INPUTS, "mode": "async"}).json()["runId"]
    native = poll(lambda: team.get(f"{base}/api/v1/runs/{run_id}").json(), lambda b: b["status"] == "succeeded")
    outputs["native async (qcluster)"] = native["outputs"]
    hook = team.post(f"{base}/api/v1/workflows/{run_env.workflow.pk}/trigger", json={"payload": INPUTS}).json()["runId"]
    outputs["native trigger (qcluster)"] = poll(lambda: team.get(f"{base}/api/v1/runs/{hook}").json(),
                                                lambda b: b["status"] == "succeeded")["outputs"]

    body = {"inputs": INPUTS, "user": "parity"}
    outputs["dify blocking"] = app.post(f"{base}/v1/workflows/run", json=body).json()["data"]["outputs"]
    events, _ = sse_read(app.post(f"{base}/v1/workflows/run", json={**body, "response_mode": "streaming"},
                                  stream=True))
    outputs["dify streaming"] = json.loads(events[-1].data)["data"]["outputs"]

    coze = app.post(f"{base}/run", json=INPUTS).json()
    assert coze.pop("run_id")  # the Coze runtime adds the run's id to the outputs
    outputs["coze run"] = coze
    events, _ = sse_read(app.post(f"{base}/stream_run", json=INPUTS, stream=True))
    outputs["coze stream_run"] = json.loads(events[-1].data)["output"]
    task_id = app.post(f"{base}/async_run", json=INPUTS).json()["task_id"]
    task = poll(lambda: app.get(f"{base}/task/{task_id}").json(), lambda b: b["status"] == "completed")
    outputs["coze async_run (qcluster)"] = task["result"]

    assert outputs == dict.fromkeys(outputs, EXPECTED), outputs
    assert task["claim_count"] == 1
    async_runs = Run.objects.filter(mode="async")
    assert async_runs.count() == 3
    assert all(r.worker and r.worker.split(":")[1] != str(os.getpid()) for r in async_runs)  # another process
    assert set(Run.objects.values_list("dialect", flat=True)) == {"native", "dify", "coze"}
