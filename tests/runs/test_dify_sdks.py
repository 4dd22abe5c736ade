"""Two more Dify SDKs from PyPI, unchanged, against a live Weft: ``dify-api-client`` 0.0.23 and
``dify-oapi2`` 1.1.2. They install their own top-level ``dify_client``/``dify_oapi`` packages
(``dify-api-client``'s clashes with ``dify-client-python``'s), so they live in a cached venv of
their own (``tests.support.tool_venvs``) and each runs as a subprocess script that prints what the
SDK parsed; the assertions are here.

Covered: blocking, streaming (a skipped node, a loop, parallel branches and a continue-on-error
failure), stop, run detail, logs with filters, parameters, info, meta, site, and a file upload
followed by a run that sends the uploaded file on (an HTTP node, multipart) to a real server.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from runs.models import Run
from tests.engine.http_servers import scripted_server
from tests.runs.conftest import DELAY_GRAPH, FIDELITY_GRAPH, RunEnv, run_env_make
from tests.runs.test_files import CSV, file_graph, multipart_echo
from tests.support.tool_venvs import tool_python, tool_run

pytestmark = pytest.mark.slow

SDKS = ["dify-api-client==0.0.23", "dify-oapi2==1.1.2"]
# dify-api-client's WorkflowStatus has no "exception" (Dify's status of a failure the run went on
# past), so it cannot parse that node_finished, against Dify as against Weft: it gets the
# workflow without the failing node; a separate run shows the package's own refusal.
WITHOUT_FAILURE = copy.deepcopy(FIDELITY_GRAPH)
WITHOUT_FAILURE["nodes"] = [n for n in WITHOUT_FAILURE["nodes"] if n["id"] != "broken"]
WITHOUT_FAILURE["edges"] = [e for e in WITHOUT_FAILURE["edges"] if "broken" not in (e["from"], e["to"])]


@pytest.fixture(scope="module")
def sdk_python() -> Any:
    return tool_python("dify-sdks", SDKS)


@pytest.fixture
def envs(transactional_db: Any, team_a: Any, team_b: Any, settings: Any) -> Any:
    with scripted_server() as echo:
        echo.route("/form", multipart_echo)
        yield {
            "fidelity": run_env_make(team_a, team_b, FIDELITY_GRAPH),
            "no_failure": run_env_make(team_a, team_b, WITHOUT_FAILURE),
            "delay": run_env_make(team_a, team_b, DELAY_GRAPH),
            "file": run_env_make(team_a, team_b, file_graph(echo.url("/form"), accept=["text/csv"])),
        }


def script_env(live_server_url: str, envs: dict[str, RunEnv]) -> dict[str, str]:
    return {"WEFT_SDK": json.dumps({"base": live_server_url, "csv": CSV.decode(),
                                    **{name: env.app_token for name, env in envs.items()}})}


DIFY_API_CLIENT = r'''
import json, os, threading, time
from dify_client import DifyClient, models
cfg = json.loads(os.environ["WEFT_SDK"])
def client(name): return DifyClient(api_key=cfg[name], api_base=cfg["base"] + "/v1")
out = {}
r = client("no_failure").run_workflows(models.WorkflowsRunRequest(inputs={}, response_mode="blocking", user="ann"))
out["blocking"] = {"status": r.data.status.value, "outputs": r.data.outputs, "run": r.workflow_run_id}
events = list(client("no_failure").run_workflows(models.WorkflowsRunRequest(inputs={}, response_mode="streaming", user="ann")))
out["stream"] = [{"event": e.event.value, "node_id": getattr(e.data, "node_id", None),
                  "status": getattr(getattr(e.data, "status", None), "value", None),
                  "outputs": getattr(e.data, "outputs", None)} for e in events]
try:
    list(client("fidelity").run_workflows(models.WorkflowsRunRequest(inputs={}, response_mode="streaming", user="ann")))
    out["exception_refused"] = None
except Exception as exc:
    out["exception_refused"] = f"{type(exc).__name__}: {exc}"
sdk = client("delay")
stream = sdk.run_workflows(models.WorkflowsRunRequest(inputs={"name": "Cy", "seconds": 30}, response_mode="streaming", user="cy"))
first = next(iter(stream))
out["stop"] = sdk.stop_workflows(first.task_id, models.StopRequest(user="cy")).result
out["after_stop"] = [e.data.status.value for e in stream if e.event.value == "workflow_finished"]
up = client("file").upload_files(("report.csv", cfg["csv"].encode(), "text/csv"), models.UploadFileRequest(user="fi"))
out["upload"] = up.model_dump()
doc = models.File(type="document", transfer_method="local_file", url=None, upload_file_id=up.id)
r = client("file").run_workflows(models.WorkflowsRunRequest(inputs={"doc": doc.model_dump()}, response_mode="blocking", user="fi"))
out["file_run"] = {"status": r.data.status.value, "outputs": r.data.outputs}
print(json.dumps(out))
'''

DIFY_OAPI2 = r'''
import io, json, os
from dify_oapi.client import Client
from dify_oapi.core.model.request_option import RequestOption
from dify_oapi.api.workflow.v1.model.run_workflow_request import RunWorkflowRequest
from dify_oapi.api.workflow.v1.model.run_workflow_request_body import RunWorkflowRequestBody
from dify_oapi.api.workflow.v1.model.get_workflow_run_detail_request import GetWorkflowRunDetailRequest
from dify_oapi.api.workflow.v1.model.get_workflow_logs_request import GetWorkflowLogsRequest
from dify_oapi.api.workflow.v1.model.stop_workflow_request import StopWorkflowRequest
from dify_oapi.api.workflow.v1.model.stop_workflow_request_body import StopWorkflowRequestBody
from dify_oapi.api.dify.v1.model.upload_file_request import UploadFileRequest
from dify_oapi.api.dify.v1.model.upload_file_body import UploadFileBody
from dify_oapi.api.dify.v1.model.get_info_request import GetInfoRequest
from dify_oapi.api.dify.v1.model.get_parameters_request import GetParametersRequest
from dify_oapi.api.dify.v1.model.get_meta_request import GetMetaRequest
from dify_oapi.api.dify.v1.model.get_site_request import GetSiteRequest
cfg = json.loads(os.environ["WEFT_SDK"])
client = Client.builder().domain(cfg["base"]).build()
def opt(name): return RequestOption.builder().api_key(cfg[name]).build()
def body(inputs, mode, user):
    # dify-oapi2 1.1.2 wraps inputs in a WorkflowInputs model that serializes as {"inputs": {...}};
    # model_construct sends the plain object, as Dify (and Weft) read it.
    return RunWorkflowRequestBody.model_construct(inputs=inputs, response_mode=mode, user=user)
def run(name, inputs, mode, user, stream=False):
    return client.workflow.v1.workflow.run(RunWorkflowRequest.builder().request_body(body(inputs, mode, user)).build(),
                                        opt(name), stream=stream)
out = {}
r = run("fidelity", {}, "blocking", "ann")
out["blocking"] = {"success": r.success, "status": r.data.status, "outputs": r.data.outputs, "run": r.workflow_run_id,
                   "task": r.task_id}
frames = b"".join(run("fidelity", {}, "streaming", "bob", stream=True)).decode()
out["stream"] = [json.loads(line[6:]) for line in frames.splitlines() if line.startswith("data: ")]
d = client.workflow.v1.workflow.detail(GetWorkflowRunDetailRequest.builder().workflow_run_id(r.workflow_run_id).build(), opt("fidelity"))
out["detail"] = {"success": d.success, "status": d.status, "outputs": d.outputs, "inputs": d.inputs, "id": d.id}
def logs(**f):
    b = GetWorkflowLogsRequest.builder()
    for k, v in f.items(): getattr(b, k)(v)
    res = client.workflow.v1.workflow.logs(b.build(), opt("fidelity"))
    return {"success": res.success, "total": res.total, "users": [(e.created_by_end_user or {}).get("session_id") if isinstance(e.created_by_end_user, dict) else getattr(e.created_by_end_user, "session_id", None) for e in (res.data or [])]}
out["logs_all"] = logs()
out["logs_bob"] = logs(created_by_end_user_session_id="bob")
out["logs_succeeded"] = logs(status="succeeded", limit=1)
stop = client.workflow.v1.workflow.stop(StopWorkflowRequest.builder().task_id("00000000-0000-0000-0000-000000000000")
    .request_body(StopWorkflowRequestBody.builder().user("ann").build()).build(), opt("fidelity"))
out["stop_unknown"] = {"success": stop.success, "result": stop.result}
info = client.workflow.v1.info
i = info.get(GetInfoRequest.builder().build(), opt("fidelity"))
out["info"] = {"success": i.success, "name": i.name, "mode": getattr(i, "mode", None)}
p = info.parameters(GetParametersRequest.builder().build(), opt("file"))
out["parameters"] = {"success": p.success, "form": p.user_input_form}
m = info.meta(GetMetaRequest.builder().build(), opt("fidelity"))
out["meta"] = {"success": m.success, "tool_icons": m.tool_icons.model_dump() if m.tool_icons else None}
s = info.site(GetSiteRequest.builder().build(), opt("fidelity"))
out["site"] = {"success": s.success, "title": s.title}
up = client.workflow.v1.file.upload(UploadFileRequest.builder().file(io.BytesIO(cfg["csv"].encode()), "report.csv")
    .request_body(UploadFileBody.builder().user("fi").build()).build(), opt("file"))
out["upload"] = {"success": up.success, "id": up.id, "name": up.name, "size": up.size, "mime_type": up.mime_type}
doc = {"type": "document", "transfer_method": "local_file", "upload_file_id": up.id}
fr = run("file", {"doc": doc}, "blocking", "fi")
out["file_run"] = {"success": fr.success, "status": fr.data.status, "outputs": fr.data.outputs}
print(json.dumps(out))
'''


def test_dify_api_client(sdk_python: Any, live_server_url: str, envs: dict[str, RunEnv]) -> None:
    out = tool_run(sdk_python, DIFY_API_CLIENT, env=script_env(live_server_url, envs))
    assert out["blocking"]["status"] == "succeeded"
    assert out["blocking"]["outputs"] == {"squares": [1, 4, 9], "left": "L"}
    stream = out["stream"]
    assert stream[0]["event"] == "workflow_started" and stream[-1]["event"] == "workflow_finished"
    finished = {e["node_id"]: e for e in stream if e["event"] == "node_finished"}
    assert "skipped" not in finished and finished["each"]["outputs"] == {"output": [1, 4, 9]}
    assert "parallel_branch_started" in {e["event"] for e in stream}
    # The package refuses Dify's "exception" status itself (pydantic), not a Weft value.
    assert out["exception_refused"] and "exception" in out["exception_refused"]
    assert out["stop"] == "success" and out["after_stop"] == ["stopped"]
    assert out["upload"]["name"] == "report.csv" and out["upload"]["mime_type"] == "text/csv"
    assert out["file_run"]["status"] == "succeeded"
    part = out["file_run"]["outputs"]["received"]["parts"]["upload"]
    assert part["sha256"] == hashlib.sha256(CSV).hexdigest() and part["filename"] == "report.csv"


def test_dify_oapi2(sdk_python: Any, live_server_url: str, envs: dict[str, RunEnv]) -> None:
    out = tool_run(sdk_python, DIFY_OAPI2, env=script_env(live_server_url, envs))
    blocking = out["blocking"]
    assert blocking["success"] and blocking["status"] == "succeeded"
    assert blocking["outputs"] == {"squares": [1, 4, 9], "left": "L"}
    stream = out["stream"]
    assert stream[0]["event"] == "workflow_started" and stream[-1]["event"] == "workflow_finished"
    nodes = {e["data"]["node_id"]: e["data"] for e in stream if e["event"] == "node_finished"}
    assert "skipped" not in nodes and nodes["broken"]["status"] == "exception"
    assert nodes["each"]["outputs"] == {"output": [1, 4, 9]}
    assert stream[-1]["data"]["exceptions_count"] == 1
    assert out["detail"]["success"] and out["detail"]["id"] == blocking["run"]
    assert out["detail"]["outputs"] == blocking["outputs"]
    assert out["logs_all"]["success"] and out["logs_all"]["total"] == 2
    assert out["logs_bob"]["total"] == 1 and out["logs_bob"]["users"] == ["bob"]
    assert out["logs_succeeded"]["total"] == 2 and len(out["logs_succeeded"]["users"]) == 1
    assert out["stop_unknown"] == {"success": True, "result": "success"}
    assert out["info"]["success"] and out["info"]["name"] == envs["fidelity"].app.name
    assert out["parameters"]["success"]
    form = {next(iter(item.values()))["variable"]: item for item in out["parameters"]["form"]}
    assert "file" in form["doc"] and form["doc"]["file"]["allowed_file_types"] == ["document"]
    assert out["meta"]["success"] and out["site"] == {"success": True, "title": envs["fidelity"].app.name}
    assert out["upload"]["success"] and out["upload"]["size"] == len(CSV)
    assert out["file_run"]["success"] and out["file_run"]["status"] == "succeeded"
    assert out["file_run"]["outputs"]["received"]["parts"]["upload"]["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert Run.objects.filter(user="fi", status="succeeded").count() == 1
