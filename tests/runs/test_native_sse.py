"""Native ``GET /api/v1/runs/{id}/events`` (SSE: log replay from ``Last-Event-ID``, then live) and the
token webhook trigger ``POST /api/v1/workflows/{id}/trigger``."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from runs import live
from runs.executor import run_execute_in_thread
from runs.models import Run, RunEvent
from runs.services import run_create
from tests.conftest import client_with_token
from tests.runs.conftest import RunEnv, run_count, sse_read


def log_seqs(run: Run) -> list[int]:
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))


def events_url(base: str, run: Run) -> str:
    return f"{base}/api/v1/runs/{run.pk}/events"


@pytest.mark.slow
def test_last_event_id_resumes_without_gaps_or_duplicates(live_server_url: str, run_env: RunEnv) -> None:
    # Executed in this process: the server follows it by polling the log (another process's run).
    run = run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "R", "seconds": 2.0}, mode="async")
    thread = run_execute_in_thread(run.pk)
    session = run_env.session(run_env.team_token)
    first, _ = sse_read(session.get(events_url(live_server_url, run), stream=True, timeout=30),
                        until=lambda e: e.id == "3")
    assert [int(e.id) for e in first] == [1, 2, 3]
    # Opened while the run still runs, so what follows its replay must come live.
    assert not Run.objects.get(pk=run.pk).is_final, "the run ended before the resumed stream opened"
    resumed, _ = sse_read(session.get(events_url(live_server_url, run), stream=True, timeout=30,
                                      headers={"Last-Event-ID": "3"}))
    thread.join(10)
    seqs = [int(e.id) for e in first + resumed]
    assert seqs == log_seqs(run) == list(range(1, len(seqs) + 1))
    assert resumed[-1].event == "run_finished" and resumed[-1].json()["data"]["status"] == "succeeded"
    assert [e.event for e in resumed] == [e.json()["type"] for e in resumed]


@pytest.mark.slow
def test_follow_a_run_executing_in_the_server_process(live_server_url: str, run_env: RunEnv) -> None:
    stream = requests.post(f"{live_server_url}/v1/workflows/run", headers=run_env.headers(), stream=True, timeout=30,
                           json={"inputs": {"name": "L", "seconds": 1.0}, "response_mode": "streaming", "user": "u"})
    collected: dict[str, list] = {}
    first, _ = sse_read(stream, until=lambda e: json.loads(e.data)["event"] == "node_started"
                        and json.loads(e.data)["data"]["node_id"] == "wait")
    run = Run.objects.get()

    def follow() -> None:
        response = requests.get(events_url(live_server_url, run), headers={**run_env.headers(run_env.team_token),
                                                                            "Last-Event-ID": "2"}, stream=True,
                                timeout=30)
        collected["events"], collected["raw"] = sse_read(response)

    follower = threading.Thread(target=follow)
    follower.start()
    sse_read(stream)  # the Dify stream to its end
    follower.join(15)
    seqs = [int(e.id) for e in collected["events"]]
    assert seqs == [s for s in log_seqs(run) if s > 2]
    assert b": ping\n\n" in collected["raw"]  # comment pings while the delay runs


@pytest.mark.slow
def test_finished_run_replays_its_log_and_ends(live_server_url: str, run_env: RunEnv) -> None:
    response = run_env.client().post("/v1/workflows/run", {"inputs": {"name": "F"}, "user": "u"}, format="json")
    run = Run.objects.get(pk=response.json()["workflow_run_id"])
    events, _ = sse_read(requests.get(events_url(live_server_url, run) + "?after=0", headers=run_env.headers(),
                                      stream=True, timeout=10))
    assert [int(e.id) for e in events] == log_seqs(run)
    assert events[-1].event == "run_finished"


def test_events_errors(run_env: RunEnv) -> None:
    run = run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "E"}, mode="async")
    client = run_env.client(run_env.team_token)
    response = client.get(f"/api/v1/runs/{run.pk}/events", HTTP_LAST_EVENT_ID="abc")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["path"] == "/Last-Event-ID"
    assert client.get(f"/api/v1/runs/{run.pk}/events?after=-1").status_code == 400
    assert client.get("/api/v1/runs/nope/events").status_code == 404
    other = client_with_token(run_env.other_team, ["read"])
    assert other.get(f"/api/v1/runs/{run.pk}/events", HTTP_ACCEPT="text/event-stream").status_code == 404


def test_trigger_starts_an_async_run_with_the_payload(run_env: RunEnv, django_capture_on_commit_callbacks: object) -> None:
    client = client_with_token(run_env.team, ["run"])
    response = client.post(f"/api/v1/workflows/{run_env.workflow.pk}/trigger", {"payload": {"name": "Hook"}},
                           format="json")
    assert response.status_code == 202, response.content
    run = Run.objects.get()
    assert response.json() == {"runId": str(run.pk)}
    assert (run.mode, run.trigger, run.inputs["name"], run.status) == ("async", "webhook", "Hook", "pending")
    from django_q.models import OrmQ

    assert OrmQ.objects.count() == 1  # queued for a worker
    from runs.tasks import run_task

    run_task(str(run.pk))
    run.refresh_from_db()
    assert run.outputs == {"greeting": "Hello Hook", "total": 2.0}


@pytest.mark.parametrize(("body", "path"), [
    ({"payload": {"amount": 1}}, "/inputs/name"),
    ({"payload": "text"}, "/payload"),
    ({"payload": {"name": "x", "amount": "one"}}, "/inputs/amount"),
    ({}, "/inputs/name"),
])
def test_trigger_bad_input(run_env: RunEnv, body: dict, path: str) -> None:
    response = run_env.client(run_env.team_token).post(f"/api/v1/workflows/{run_env.workflow.pk}/trigger", body,
                                                       format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["path"] == path
    assert run_count() == 0


def test_trigger_unknown_or_other_teams_workflow_is_404(run_env: RunEnv) -> None:
    client = run_env.client(run_env.team_token)
    assert client.post("/api/v1/workflows/00000000-0000-0000-0000-000000000000/trigger", {}, format="json").status_code == 404
    other = client_with_token(run_env.other_team, ["run"])
    assert other.post(f"/api/v1/workflows/{run_env.workflow.pk}/trigger", {"payload": {"name": "x"}},
                      format="json").status_code == 404
    assert run_count() == 0


def test_events_stream_in_process_is_async_iterable(run_env: RunEnv) -> None:
    # Under ASGI a sync iterator would be buffered to the end: the stream must be asynchronous.
    run = run_create(team=run_env.team, workflow=run_env.workflow, inputs={"name": "A"}, mode="async")
    response = run_env.client(run_env.team_token).get(f"/api/v1/runs/{run.pk}/events")
    assert response.status_code == 200 and response.is_async
    assert response["Content-Type"].startswith("text/event-stream") and response["Cache-Control"] == "no-cache"
    assert str(run.pk) in live._listeners
    response.close()  # never consumed (a client gone before the first frame): the listener still goes
    assert str(run.pk) not in live._listeners
