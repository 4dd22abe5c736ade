"""Dify-style streaming against a live Daphne: events arrive while the run executes, frames parse
with a standard SSE client, pings, ``workflow_finished`` last, stop ends the run within a second,
a client that disconnects neither stops nor loses the run."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from runs.models import Run, RunEvent
from tests.runs.conftest import LIVE_PING_SECONDS, RunEnv, sse_read

pytestmark = pytest.mark.slow


def stream(live_server_url: str, env: RunEnv, inputs: dict, **extra: str) -> requests.Response:
    response = requests.post(f"{live_server_url}/v1/workflows/run", headers=env.headers(**extra), stream=True,
                             json={"inputs": inputs, "response_mode": "streaming", "user": "alice"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


def test_events_arrive_before_the_run_ends_and_workflow_finished_is_last(live_server_url: str, run_env: RunEnv) -> None:
    delay = 1.5
    response = stream(live_server_url, run_env, {"name": "Ann", "amount": 2, "seconds": delay},
                      Accept="text/event-stream")
    events, raw = sse_read(response)
    payloads = [e.json() for e in events]
    kinds = [p["event"] for p in payloads]
    assert kinds[0] == "workflow_started", payloads[0]["message"]
    assert kinds[0] == "workflow_started" and kinds[-1] == "workflow_finished"
    assert kinds.count("workflow_finished") == 1
    assert kinds.count("workflow_started") == 1  # sent from the run's row at once, not again from the log
    assert payloads[0]["data"]["inputs"] == Run.objects.get().inputs  # validated, defaults applied
    assert payloads[0]["data"]["id"] == payloads[-1]["data"]["id"]
    # Every frame is Dify's: a bare data frame with event, task_id, workflow_run_id and data.
    run = Run.objects.get()
    assert all(e.event == "message" and e.id is None for e in events)
    assert {(p["task_id"], p["workflow_run_id"]) for p in payloads} == {(str(run.task_id), str(run.pk))}
    assert b"data: {" in raw and b"\n\n" in raw

    # The delay's node_started arrives while the delay is still running (measured arrival times).
    wait_started = next(e for e, p in zip(events, payloads, strict=True)
                        if p["event"] == "node_started" and p["data"]["node_id"] == "wait")
    finished = events[-1]
    assert finished.at - wait_started.at >= delay * 0.8, "node_started was buffered until the end"
    # The stream was open while the delay ran (not a bound on how soon an executor took the run,
    # which a loaded machine stretches).
    assert finished.at - events[0].at >= delay * 0.8, "the stream started only after the delay"

    # Pings while the delay runs: the bare `event: ping` frame (not dispatched by SSE clients).
    assert b"event: ping\n\n" in raw and raw.count(b"event: ping\n\n") >= int(delay / LIVE_PING_SECONDS) - 1

    data = payloads[-1]["data"]
    assert data["status"] == "succeeded"
    assert data["outputs"] == {"greeting": "Hello Ann", "total": 4.0}
    assert isinstance(data["created_at"], int) and isinstance(data["finished_at"], int)
    assert {"id", "workflow_id", "status", "outputs", "error", "elapsed_time", "total_tokens", "total_steps",
            "created_at", "finished_at", "exceptions_count"} <= set(data)
    node_finished = [p["data"] for p in payloads if p["event"] == "node_finished"]
    assert [n["node_id"] for n in node_finished] == ["start", "greet", "wait", "end"]
    assert {"id", "node_id", "node_type", "title", "index", "predecessor_node_id", "inputs", "process_data",
            "outputs", "status", "error", "elapsed_time", "execution_metadata", "created_at",
            "finished_at"} <= set(node_finished[1])
    assert node_finished[1]["title"] == "Greet" and isinstance(node_finished[1]["created_at"], int)
    started_data = payloads[0]["data"]
    assert started_data["id"] == str(run.pk) and started_data["workflow_id"] == str(run.workflow_id)
    assert started_data["inputs"]["name"] == "Ann"
    assert run.dialect == "dify" and run.mode == "streaming" and run.user == "alice"


def test_stop_during_streaming_ends_the_run_stopped_within_a_second(live_server_url: str, run_env: RunEnv) -> None:
    response = stream(live_server_url, run_env, {"name": "Bo", "seconds": 30})
    stop_sent: list[float] = []

    def stop_when_waiting(item: object) -> bool:
        payload = json.loads(item.data)  # type: ignore[attr-defined]
        if payload["event"] == "node_started" and payload["data"]["node_id"] == "wait" and not stop_sent:
            task_id = payload["task_id"]
            stop_sent.append(time.monotonic())
            r = requests.post(f"{live_server_url}/v1/workflows/tasks/{task_id}/stop", headers=run_env.headers(),
                              json={"user": "alice"}, timeout=10)
            assert r.status_code == 200 and r.json() == {"result": "success"}
        return False

    events, _ = sse_read(response, until=stop_when_waiting)
    last = json.loads(events[-1].data)
    assert last["event"] == "workflow_finished"
    assert last["data"]["status"] == "stopped"
    assert events[-1].at - stop_sent[0] < 1.0
    assert Run.objects.get().status == "stopped"


def test_a_disconnecting_client_neither_stops_nor_loses_the_run(live_server_url: str, run_env: RunEnv) -> None:
    response = stream(live_server_url, run_env, {"name": "Cy", "seconds": 1.0})
    sse_read(response, until=lambda item: json.loads(item.data)["event"] == "workflow_started")
    response.close()  # gone before the run ends
    run = Run.objects.get()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_final:
            break
        time.sleep(0.1)
    assert run.status == "succeeded"
    assert run.outputs == {"greeting": "Hello Cy", "total": 2.0}
    types = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
    assert types[0] == "run_started" and types[-1] == "run_finished"


def test_two_concurrent_streams_each_get_their_own_run(live_server_url: str, run_env: RunEnv) -> None:
    results: dict[str, dict] = {}

    def one(name: str) -> None:
        events, _ = sse_read(stream(live_server_url, run_env, {"name": name, "seconds": 0.3}))
        results[name] = json.loads(events[-1].data)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("Di", "Ed")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["Di"]["data"]["outputs"]["greeting"] == "Hello Di"
    assert results["Ed"]["data"]["outputs"]["greeting"] == "Hello Ed"
    assert results["Di"]["workflow_run_id"] != results["Ed"]["workflow_run_id"]
