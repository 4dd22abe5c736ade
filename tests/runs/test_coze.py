"""Coze-style deployment API against the Coze coding runtime's shapes (``coze-coding-utils``): sync
/run answers the outputs plus ``run_id``, SSE frames with ids from 1 and ``event: message`` (node
events only in debug mode), error frames with ``CANCELED``/``error_msg``, async_run + task (``error``
as ``{code, message}``), graph_parameter with ``code``/``msg``, cancel's ``{status, run_id,
message}``, /health, ``x-run-id`` and ``x-task-deadline-sec``, and ``{"detail": {"error_code",
"error_message"}}`` errors that write no run."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from datetime import datetime

import pytest
import requests
from django.test import override_settings

from runs.models import Run
from runs.services import run_create
from runs.tasks import run_task
from tests.conftest import client_with_token
from tests.runs.conftest import DELAY_GRAPH, RunEnv, run_count, run_env_make, sse_read


def assert_problem(response: object, status: int, code: str) -> dict:
    """The runtime's error body: FastAPI's ``{"detail": {"error_code", "error_message"}}``."""
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"].startswith("application/json")  # type: ignore[index]
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    assert detail["error_code"] == code and detail["error_message"], detail
    return detail


def test_sync_run_returns_the_outputs_object(run_env: RunEnv) -> None:
    response = run_env.client().post("/run", {"name": "Ann", "amount": 1.5}, format="json")
    assert response.status_code == 200
    run = Run.objects.get()
    assert response.json() == {"greeting": "Hello Ann", "total": 3.0, "run_id": str(run.pk)}
    assert (run.dialect, run.mode, run.status) == ("coze", "blocking", "succeeded")


@pytest.mark.parametrize("path", ["/run", "/stream_run", "/run/stream", "/async_run"])
def test_bad_inputs_are_problems_naming_the_field_from_the_body_root(run_env: RunEnv, path: str) -> None:
    client = run_env.client()
    body = assert_problem(client.post(path, {"amount": 1}, format="json"), 400, "invalid_input")
    assert body["errors"][0]["path"] == "/name"
    body = assert_problem(client.post(path, {"name": "x", "amount": "lots"}, format="json"), 400, "invalid_input")
    assert body["errors"][0]["path"] == "/amount"
    assert_problem(client.post(path, [1, 2], format="json"), 400, "invalid_input")
    assert_problem(client.post(path, "{oops", content_type="application/json"), 400, "parse_error")
    assert_problem(run_env.client(run_env.team_token).post(path, {"name": "x"}, format="json"), 400, "app_unavailable")
    assert run_count() == 0


def test_failed_sync_run_is_a_500_with_the_error_code_and_message(run_env: RunEnv) -> None:
    graph = copy.deepcopy(DELAY_GRAPH)
    graph["nodes"][1]["config"]["mapping"]["total"] = "{{ inputs.amount * 2 }}"  # float * int: fails at runtime
    env = run_env_make(run_env.team, run_env.other_team, graph)
    response = env.client().post("/run", {"name": "x", "amount": 1.5}, format="json")
    assert response.status_code == 500
    assert set(response.json()) == {"detail"} and set(response.json()["detail"]) == {"error_code", "error_message"}
    detail = response.json()["detail"]
    assert detail["error_code"] == "expression_error" and "float" in detail["error_message"]
    assert Run.objects.get().status == "failed"


def test_a_timed_out_sync_run_is_200_with_its_status(run_env: RunEnv) -> None:
    client = run_env.client()
    with override_settings(WEFT_BLOCKING_TIMEOUT=0.5):
        timed = client.post("/run", {"name": "T", "seconds": 5}, format="json")
    run = Run.objects.order_by("-created_at").first()
    assert timed.status_code == 200, timed.content
    assert timed.json() == {"status": "timeout", "run_id": str(run.pk), "message": timed.json()["message"]}
    assert run.status == "timeout"


def test_x_run_id_sets_the_run_and_task_id_and_makes_the_call_idempotent(run_env: RunEnv) -> None:
    client = run_env.client()
    run_id = str(uuid.uuid4())
    first = client.post("/async_run", {"name": "X"}, format="json", HTTP_X_RUN_ID=run_id)
    again = client.post("/async_run", {"name": "X"}, format="json", HTTP_X_RUN_ID=run_id)
    assert first.json()["task_id"] == again.json()["task_id"] == run_id
    run = Run.objects.get()
    assert str(run.pk) == str(run.task_id) == run_id
    other = client.post("/async_run", {"name": "Y"}, format="json", HTTP_X_RUN_ID=run_id)
    assert_problem(other, 409, "conflict")
    assert other.json()["detail"]["errors"][0]["path"] == "/x-run-id"
    assert_problem(client.post("/async_run", {"name": "X"}, format="json", HTTP_X_RUN_ID="run-1"), 400,
                   "invalid_input")
    # Another team's token with the same run id cannot reach (or reuse) this run.
    other_env = run_env_make(run_env.other_team, run_env.team)
    taken = other_env.client().post("/async_run", {"name": "X"}, format="json", HTTP_X_RUN_ID=run_id)
    assert_problem(taken, 409, "conflict")
    assert Run.objects.count() == 1


def test_x_task_deadline_sec_sets_the_async_deadline(run_env: RunEnv) -> None:
    client = run_env.client()
    body = client.post("/async_run", {"name": "D"}, format="json", HTTP_X_TASK_DEADLINE_SEC="120").json()
    created, deadline = datetime.fromisoformat(body["created_at"]), datetime.fromisoformat(body["deadline"])
    assert (deadline - created).total_seconds() == pytest.approx(120, abs=2)
    for bad in ("0", "-5", "soon"):
        detail = assert_problem(client.post("/async_run", {"name": "D"}, format="json", HTTP_X_TASK_DEADLINE_SEC=bad),
                                400, "invalid_input")
        assert detail["errors"][0]["path"] == "/x-task-deadline-sec"
    assert Run.objects.count() == 1


def test_async_run_then_task(run_env: RunEnv) -> None:
    client = run_env.client()
    response = client.post("/async_run", {"name": "Asy"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    run = Run.objects.get()
    assert body["task_id"] == str(run.task_id) and body["status"] == "pending"
    created, deadline = datetime.fromisoformat(body["created_at"]), datetime.fromisoformat(body["deadline"])
    assert created.tzinfo is not None and (deadline - created).total_seconds() == pytest.approx(86400, abs=2)
    pending = client.get(f"/task/{run.task_id}").json()
    assert pending["status"] == "pending" and pending["result"] is None and pending["claim_count"] == 0
    run_task(str(run.pk))  # what the django-q2 worker calls
    task = client.get(f"/task/{run.task_id}").json()
    assert set(task) == {"task_id", "status", "claim_count", "created_at", "started_at", "completed_at",
                         "heartbeat_at", "deadline", "result", "error"}
    assert task["status"] == "completed" and task["result"] == {"greeting": "Hello Asy", "total": 2.0}
    assert task["claim_count"] == 1 and task["error"] is None and task["heartbeat_at"] is None
    assert datetime.fromisoformat(task["completed_at"]).tzinfo is not None
    assert client.get(f"/task/{run.pk}").json()["task_id"] == str(run.task_id)  # the run id works too


def test_task_status_mapping_and_cancel(run_env: RunEnv) -> None:
    run = run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "c"}, mode="async",
                     dialect="coze", token=run_env.app_token_row())  # a run token cancels its own runs
    client = run_env.client()
    response = client.post(f"/cancel/{run.pk}")
    assert response.status_code == 200
    assert response.json() == {"status": "success", "run_id": str(run.pk), "message": "cancel requested"}
    task = client.get(f"/task/{run.task_id}").json()
    assert task["status"] == "failed" and task["error"] == {"code": "CANCELED", "message": "stopped by request"}
    again = client.post(f"/cancel/{run.task_id}").json()
    assert again["status"] == "already_completed" and again["run_id"] == str(run.pk)
    Run.objects.filter(pk=run.pk).update(status="timeout", error={"code": "timeout", "message": "deadline passed"})
    task = client.get(f"/task/{run.task_id}").json()
    assert task["status"] == "timeout" and task["error"] == {"code": "deadline_exceeded", "message": "deadline passed"}
    Run.objects.filter(pk=run.pk).update(status="failed", error={"code": "http_error", "message": "502"})
    assert client.get(f"/task/{run.task_id}").json()["error"] == {"code": "http_error", "message": "502"}
    Run.objects.filter(pk=run.pk).update(status="waiting")
    assert client.get(f"/task/{run.task_id}").json()["status"] == "running"


def test_task_and_cancel_not_found(run_env: RunEnv) -> None:
    run = run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "c"}, mode="async")
    client = run_env.client()
    assert_problem(client.get("/task/nope"), 404, "not_found")
    missing = client.post("/cancel/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json() == {
        "status": "not_found", "run_id": "00000000-0000-0000-0000-000000000000", "message": "run not found"}
    other = client_with_token(run_env.other_team, ["run", "read"])
    assert_problem(other.get(f"/task/{run.task_id}"), 404, "not_found")
    theirs = other.post(f"/cancel/{run.pk}")
    assert theirs.status_code == 404 and theirs.json()["status"] == "not_found"
    run.refresh_from_db()
    assert run.status == "pending"


def test_graph_parameter(run_env: RunEnv) -> None:
    body = run_env.client().get("/graph_parameter").json()
    assert (body["code"], body["msg"]) == (0, "")
    inputs, outputs = body["input_schema"], body["output_schema"]
    assert inputs["type"] == "object" and inputs["title"] == "GraphInput" and inputs["required"] == ["name"]
    assert inputs["properties"]["tier"] == {"type": "string", "enum": ["gold", "silver"], "default": "silver"}
    assert outputs["properties"] == {"greeting": {"type": "string"}, "total": {"type": "number"}}
    assert_problem(run_env.client(run_env.team_token).get("/graph_parameter"), 400, "app_unavailable")


@pytest.mark.slow
@pytest.mark.parametrize("debug", [False, True])
def test_stream_frames(live_server_url: str, run_env: RunEnv, debug: bool) -> None:
    headers = run_env.headers(**({"x-workflow-stream-mode": "debug"} if debug else {}))
    response = requests.post(f"{live_server_url}/stream_run", headers=headers, json={"name": "S", "seconds": 1.2},
                             stream=True, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    events, raw = sse_read(response)
    assert [e.id for e in events] == [str(i) for i in range(1, len(events) + 1)]
    assert {e.event for e in events} == {"message"}
    frames = [json.loads(e.data) for e in events]
    run = Run.objects.get()
    for frame in frames:
        assert frame["run_id"] == str(run.pk) and frame["log_id"] == ""
        assert abs(frame["timestamp"] - time.time() * 1000) < 60_000
    types = [f["type"] for f in frames if f["type"] != "ping"]
    assert "ping" in {f["type"] for f in frames}
    if debug:
        assert types[0] == "workflow_start" and types[-1] == "workflow_end"
        assert types.count("node_start") == 4 and types.count("node_end") == 4
        greet_start = next(f for f in frames if f["type"] == "node_start" and f["node_name"] == "greet")
        assert "input" in greet_start and greet_start["node_title"] == "Greet"
        wait_end = next(f for f in frames if f["type"] == "node_end" and f["node_name"] == "wait")
        assert wait_end["time_cost_ms"] >= 1000
    else:
        assert types == ["workflow_start", "workflow_end"]
    end = frames[-1]
    assert end["type"] == "workflow_end" and end["output"] == {"greeting": "Hello S", "total": 2.0}
    assert end["time_cost_ms"] >= 1000


@pytest.mark.slow
def test_stream_cancel_ends_with_error_frame(live_server_url: str, run_env: RunEnv) -> None:
    response = requests.post(f"{live_server_url}/run/stream", headers=run_env.headers(), json={"name": "S", "seconds": 30},
                             stream=True, timeout=30)
    sent: list[float] = []

    def cancel_on_start(item: object) -> bool:
        frame = json.loads(item.data)  # type: ignore[attr-defined]
        if frame["type"] == "workflow_start" and not sent:
            sent.append(time.monotonic())
            assert requests.post(f"{live_server_url}/cancel/{frame['run_id']}", headers=run_env.headers(),
                                 timeout=10).status_code == 200
        return False

    events, _ = sse_read(response, until=cancel_on_start)
    last = json.loads(events[-1].data)
    assert last["type"] == "error" and last["code"] == "CANCELED" and last["error_msg"] and last["status"] == "failed"
    assert events[-1].at - sent[0] < 1.0


def test_health_needs_no_token(client_anon: object) -> None:
    response = client_anon.get("/health")  # type: ignore[attr-defined]
    assert response.status_code == 200 and response.json() == {"status": "ok", "message": "running"}


@pytest.mark.slow
def test_a_cancelled_sync_run_answers_cancelled_not_a_500(live_server_url: str, run_env: RunEnv) -> None:
    run_id = str(uuid.uuid4())  # x-run-id: the caller knows the id before the answer, as with the runtime
    answer: list[requests.Response] = []

    def call() -> None:
        answer.append(requests.post(f"{live_server_url}/run", json={"name": "C", "seconds": 30}, timeout=30,
                                    headers=run_env.headers(**{"x-run-id": run_id})))

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while not Run.objects.filter(pk=run_id, status="running").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cancel = requests.post(f"{live_server_url}/cancel/{run_id}", headers=run_env.headers(), timeout=10)
    caller.join(timeout=20)
    assert cancel.json() == {"status": "success", "run_id": run_id, "message": "cancel requested"}
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json() == {"status": "cancelled", "run_id": run_id, "message": "stopped by request"}
