"""A real Dify client, unchanged, against a live Weft server.

``dify-client-python`` (a third-party SDK written for Dify's service API) parses the blocking body
and the streaming events with its pydantic models; if a field were missing, misnamed or of the
wrong type, parsing here would fail. Only ``api_base`` points at Weft. (The SDK's stream union falls
back to a plain dict for some events, as it does against Dify itself, so each event's data is also
validated with the model of its event type.)
"""


from __future__ import annotations

import threading
import time

import pytest
from dify_client import Client, models
from dify_client.models.workflow import (
    NodeFinishedData,
    NodeStartedData,
    WorkflowFinishedData,
    WorkflowStartedData,
)

from runs.models import Run
from tests.runs.conftest import FIDELITY_GRAPH, RunEnv, run_env_make

pytestmark = pytest.mark.slow

EVENT_MODELS = {
    models.StreamEvent.WORKFLOW_STARTED: WorkflowStartedData,
    models.StreamEvent.NODE_STARTED: NodeStartedData,
    models.StreamEvent.NODE_FINISHED: NodeFinishedData,
    models.StreamEvent.WORKFLOW_FINISHED: WorkflowFinishedData,
}


def typed(event: models.WorkflowsStreamResponse) -> object:
    data = event.data if isinstance(event.data, dict) else event.data.model_dump()
    return EVENT_MODELS[event.event](**data)


def client(live_server_url: str, env: RunEnv) -> Client:
    return Client(api_key=env.app_token, api_base=f"{live_server_url}/v1")


def test_blocking_run_parses_into_the_sdk_models(live_server_url: str, run_env: RunEnv) -> None:
    response = client(live_server_url, run_env).run_workflows(
        models.WorkflowsRunRequest(inputs={"name": "Ann", "amount": 2}, response_mode="blocking", user="alice"))
    assert isinstance(response, models.WorkflowsRunResponse)
    run = Run.objects.get()
    assert response.task_id == str(run.task_id) and response.workflow_run_id == str(run.pk)
    assert response.data.status == models.WorkflowStatus.SUCCEEDED
    assert response.data.outputs == {"greeting": "Hello Ann", "total": 4.0}
    assert response.data.total_steps == run.total_steps
    assert response.data.created_at <= response.data.finished_at


def test_streaming_run_every_event_parses_and_workflow_finished_is_last(live_server_url: str, run_env: RunEnv) -> None:
    events = list(client(live_server_url, run_env).run_workflows(
        models.WorkflowsRunRequest(inputs={"name": "Bo", "seconds": 0.3}, response_mode="streaming", user="bob")))
    kinds = [e.event for e in events]
    assert kinds[0] == models.StreamEvent.WORKFLOW_STARTED
    assert kinds[-1] == models.StreamEvent.WORKFLOW_FINISHED
    assert set(kinds) <= set(EVENT_MODELS)
    data = [typed(e) for e in events]
    run = Run.objects.get()
    assert all(e.workflow_run_id == str(run.pk) and e.task_id == str(run.task_id) for e in events)
    started = [d for e, d in zip(events, data, strict=True) if e.event == models.StreamEvent.NODE_STARTED]
    finished = [d for e, d in zip(events, data, strict=True) if e.event == models.StreamEvent.NODE_FINISHED]
    assert [d.node_id for d in started] == ["start", "greet", "wait", "end"]
    assert [d.node_id for d in finished] == ["start", "greet", "wait", "end"]
    assert all(d.status == models.WorkflowStatus.SUCCEEDED for d in finished)
    assert data[-1].outputs == {"greeting": "Hello Bo", "total": 2.0}
    assert data[-1].status == models.WorkflowStatus.SUCCEEDED and data[-1].total_steps == 4


def test_stop_through_the_sdk_ends_the_run_as_stopped(live_server_url: str, run_env: RunEnv) -> None:
    sdk = client(live_server_url, run_env)
    stream = sdk.run_workflows(models.WorkflowsRunRequest(inputs={"name": "Cy", "seconds": 30},
                                                         response_mode="streaming", user="cy"))
    first = next(iter(stream))
    assert first.event == models.StreamEvent.WORKFLOW_STARTED
    stopped_at: list[float] = []

    def stop() -> None:
        time.sleep(0.3)
        stopped_at.append(time.monotonic())
        result = sdk.stop_workflows(first.task_id, models.StopRequest(user="cy"))
        assert result.result == "success"

    stopper = threading.Thread(target=stop)
    stopper.start()
    rest = list(stream)
    stopper.join()
    assert rest[-1].event == models.StreamEvent.WORKFLOW_FINISHED
    assert typed(rest[-1]).status == models.WorkflowStatus.STOPPED
    assert time.monotonic() - stopped_at[0] < 1.5
    assert Run.objects.get().status == "stopped"


@pytest.fixture
def fidelity_env(transactional_db: object, team_a: object, team_b: object) -> RunEnv:
    return run_env_make(team_a, team_b, FIDELITY_GRAPH)  # type: ignore[arg-type]


def test_stream_with_a_skipped_node_a_loop_parallel_branches_and_an_exception(
        live_server_url: str, fidelity_env: RunEnv) -> None:
    events = list(client(live_server_url, fidelity_env).run_workflows(
        models.WorkflowsRunRequest(inputs={}, response_mode="streaming", user="fi")))
    kinds = [e.event for e in events]
    assert kinds[0] == models.StreamEvent.WORKFLOW_STARTED and kinds[-1] == models.StreamEvent.WORKFLOW_FINISHED
    assert models.StreamEvent.PARALLEL_BRANCH_STARTED in kinds
    finished = {d.node_id: d for e in events if e.event == models.StreamEvent.NODE_FINISHED
                for d in [typed(e)]}
    started = [typed(e).node_id for e in events if e.event == models.StreamEvent.NODE_STARTED]
    assert "skipped" not in finished and "skipped" not in started  # a skipped node sends nothing
    assert finished["each"].outputs == {"output": [1, 4, 9]}  # a loop's list, as Dify's iteration
    assert finished["broken"].status == models.WorkflowStatus.EXCEPTION and finished["broken"].error
    assert finished["left"].status == models.WorkflowStatus.SUCCEEDED
    assert all(isinstance(d.outputs, dict) for d in finished.values() if d.outputs is not None)
    assert typed(events[-1]).status == models.WorkflowStatus.SUCCEEDED
    assert typed(events[-1]).exceptions_count == 1
    assert typed(events[-1]).outputs == {"squares": [1, 4, 9], "left": "L"}


def test_upload_then_a_run_that_sends_the_uploaded_file_on(live_server_url: str, transactional_db: object,
                                                           team_a: object, team_b: object) -> None:
    import hashlib

    from tests.engine.http_servers import scripted_server
    from tests.runs.test_files import CSV, file_graph, multipart_echo

    with scripted_server() as echo:
        echo.route("/form", multipart_echo)
        env = run_env_make(team_a, team_b, file_graph(echo.url("/form"), accept=["text/csv"]))  # type: ignore[arg-type]
        sdk = client(live_server_url, env)
        uploaded = sdk.upload_files(("report.csv", CSV, "text/csv"), models.UploadFileRequest(user="fi"))
        assert isinstance(uploaded, models.UploadFileResponse) and uploaded.size == len(CSV)
        doc = models.File(type="document", transfer_method="local_file", upload_file_id=uploaded.id)
        response = sdk.run_workflows(models.WorkflowsRunRequest(inputs={"doc": doc.model_dump()},
                                                                response_mode="blocking", user="fi"))
    assert response.data.status == models.WorkflowStatus.SUCCEEDED
    part = response.data.outputs["received"]["parts"]["upload"]
    assert part["sha256"] == hashlib.sha256(CSV).hexdigest() and part["type"] == "text/csv"
