"""Coze-style deployment API at the root, so that the calls on a Coze deployment page work unchanged.

- ``POST /run``: the body is the inputs; the answer is the workflow's outputs object itself.
- ``POST /stream_run`` (also ``/run/stream``): SSE frames ``id: <n>`` (from 0), ``event: message``,
  ``data: {"type", "timestamp" (ms), "log_id", "run_id", ...}``: ``workflow_start``, ``workflow_end``
  (``output``, ``time_cost_ms``) or ``error``, ``ping``; with ``x-workflow-stream-mode: debug`` also
  ``node_start`` (``node_name``, ``input``) and ``node_end`` (``output``, ``time_cost_ms``).
- ``POST /async_run`` -> ``{"task_id", "status", "created_at", "deadline"}``; ``GET /task/{task_id}``;
  ``GET /graph_parameter`` (JSON Schemas); ``POST /cancel/{run_id}``.

Coze's ``task_id`` is the run's ``task_id``; ``/task/`` and ``/cancel/`` accept it or the run id
(the ``run_id`` of the stream frames). Timestamps are ISO 8601 with zone. Task statuses:
pending, running (also while waiting), completed (succeeded), failed (also stopped, with error
"stopped"), timeout. Errors are problem+json like the native API (docs/api-decisions.md), with
input paths relative to the body (``/amount``, not ``/inputs/amount``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import request_team
from config.errors import InvalidInput
from config.exceptions import problem_response
from runs.apis import request_run, run_start_from_request
from runs.dialects.common import (
    DialectView,
    app_entry_workflow,
    app_required,
    epoch_ms,
    error_message,
    stream_follow,
)
from runs.lifecycle import COZE, run_stop
from runs.models import Run, RunMode, RunStatus
from runs.representations import iso
from runs.sse import RunFollower, sse_frame, sse_response, sse_stream
from workflows.engine.graph import inputs_json_schema, outputs_json_schema

logger = logging.getLogger(__name__)

TAG = "coze"
DEBUG_HEADER = "HTTP_X_WORKFLOW_STREAM_MODE"

COZE_STATUS = {
    RunStatus.PENDING: "pending", RunStatus.RUNNING: "running", RunStatus.WAITING: "running",
    RunStatus.SUCCEEDED: "completed", RunStatus.FAILED: "failed", RunStatus.STOPPED: "failed",
    RunStatus.TIMEOUT: "timeout",
}


def coze_error(run: Run) -> str | None:
    if run.status == RunStatus.STOPPED:
        return "stopped"
    if run.status == RunStatus.TIMEOUT:
        return error_message(run.error) or "timeout"
    return error_message(run.error) if run.status == RunStatus.FAILED else None


def coze_task(run: Run) -> dict[str, Any]:
    finished = run.is_final
    return {
        "task_id": str(run.task_id), "status": COZE_STATUS[RunStatus(run.status)], "claim_count": run.claim_count,
        "created_at": iso(run.created_at), "started_at": iso(run.started_at), "completed_at": iso(run.finished_at),
        "heartbeat_at": None if finished else iso(run.heartbeat_at), "deadline": iso(run.deadline),
        "result": run.outputs if run.status == RunStatus.SUCCEEDED else None, "error": coze_error(run),
    }


def coze_inputs(request: Request) -> dict[str, Any]:
    """The request body, which is the inputs object."""
    data = request.data
    if isinstance(data, QueryDict):
        data = data.dict()
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object of the workflow's inputs.",
                           errors=[{"path": "/", "message": "must be an object"}])
    return data


def coze_run_start(request: Request, *, mode: str) -> Run:
    workflow = app_entry_workflow(app_required(request))
    try:
        return run_start_from_request(request, workflow=workflow, inputs=coze_inputs(request), mode=mode,
                                      origin=COZE, user=request.headers.get("X-User", "") or "")
    except InvalidInput as exc:
        # The body is the inputs: name fields from the body's root.
        errors = [{**e, "path": e["path"].removeprefix("/inputs") or "/"} for e in exc.errors]
        raise InvalidInput("; ".join(f"{e['path']}: {e['message']}" for e in errors) or exc.detail,
                           errors=errors) from None


def coze_frame_data(run: Run, event: dict[str, Any], *, debug: bool) -> dict[str, Any] | None:
    etype, data = event["type"], event["data"] or {}
    base = {"timestamp": epoch_ms(event["createdAt"]), "log_id": "", "run_id": str(run.pk)}
    if etype == "run_started":
        return {"type": "workflow_start", **base}
    if debug and etype == "node_started":
        return {"type": "node_start", **base, "node_name": data.get("node_id"), "node_title": data.get("title"),
                "node_type": data.get("node_type"), "input": data.get("inputs")}
    if debug and etype == "node_finished":
        frame = {"type": "node_end", **base, "node_name": data.get("node_id"), "node_title": data.get("title"),
                 "node_type": data.get("node_type"), "output": data.get("outputs"),
                 "time_cost_ms": int((data.get("elapsed_time") or 0) * 1000), "status": data.get("status")}
        if data.get("error"):
            frame["error"] = error_message(data["error"])
        return frame
    if etype == "run_finished":
        cost = int((data.get("elapsedTime") or 0) * 1000)
        status = data.get("status")
        if status == RunStatus.SUCCEEDED:
            return {"type": "workflow_end", **base, "output": data.get("outputs") or {}, "time_cost_ms": cost}
        message = "stopped" if status == RunStatus.STOPPED else (error_message(data.get("error")) or status)
        code = (data.get("error") or {}).get("code") if isinstance(data.get("error"), dict) else None
        return {"type": "error", **base, "status": COZE_STATUS.get(status, "failed"),
                "code": code or status, "message": message, "time_cost_ms": cost}
    return None


def coze_stream_response(run: Run, follower: RunFollower, *, debug: bool) -> Any:
    counter = iter(range(1 << 62))

    def frame(data: dict[str, Any]) -> bytes:
        return sse_frame(data, event="message", id=next(counter))

    def frames(event: dict[str, Any]) -> Iterable[bytes]:
        data = coze_frame_data(run, event, debug=debug)
        if data is not None:
            yield frame(data)

    def ping() -> bytes:
        return frame({"type": "ping", "timestamp": int(time.time() * 1000), "log_id": "", "run_id": str(run.pk)})

    def on_error(exc: Exception) -> bytes:
        logger.exception("stream of run %s failed", run.pk, exc_info=exc)
        return frame({"type": "error", "timestamp": int(time.time() * 1000), "log_id": "", "run_id": str(run.pk),
                      "status": "failed", "code": "stream_error", "message": str(exc)})

    return sse_response(sse_stream(follower, frames=frames, ping=ping, on_error=on_error))


# Schemas ----------------------------------------------------------------------------------------

InputsBody = OpenApiTypes.OBJECT  # the workflow's inputs (see /graph_parameter)
OutputsBody = OpenApiTypes.OBJECT  # the workflow's outputs object


class CozeFrameOut(serializers.Serializer):
    type = serializers.ChoiceField(choices=["workflow_start", "node_start", "node_end", "workflow_end", "error",
                                            "ping"])
    timestamp = serializers.IntegerField(help_text="milliseconds")
    log_id = serializers.CharField(allow_blank=True)
    run_id = serializers.UUIDField()
    node_name = serializers.CharField(required=False)
    input = serializers.JSONField(required=False)
    output = serializers.JSONField(required=False)
    time_cost_ms = serializers.IntegerField(required=False)
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)


class CozeTaskOut(serializers.Serializer):
    task_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "running", "completed", "failed", "timeout"])
    claim_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)


CozeAsyncOut = inline_serializer("CozeAsyncAccepted", {
    "task_id": serializers.UUIDField(), "status": serializers.CharField(), "created_at": serializers.DateTimeField(),
    "deadline": serializers.DateTimeField()})
ProblemOut = inline_serializer("CozeProblem", {
    "type": serializers.CharField(), "title": serializers.CharField(), "status": serializers.IntegerField(),
    "detail": serializers.CharField(), "code": serializers.CharField(),
    "errors": serializers.ListField(child=serializers.DictField(), required=False)})
PROBLEM, JSON = "application/problem+json", "application/json"
_ERRORS: dict[Any, Any] = {(status, PROBLEM): ProblemOut for status in (400, 401, 403, 404, 413, 429)}
_DEBUG = OpenApiParameter("x-workflow-stream-mode", str, OpenApiParameter.HEADER, required=False, enum=["debug"],
                          description="`debug` adds node_start and node_end events")


# Views ------------------------------------------------------------------------------------------

class CozeRunApi(DialectView):
    @extend_schema(operation_id="coze_run", tags=[TAG], request=InputsBody,
                   responses={(200, JSON): OutputsBody, (500, PROBLEM): ProblemOut, **_ERRORS},
                   description="Run synchronously; the answer is the outputs object. A run that does not succeed "
                               "is a problem+json 500 (`run_failed`, `run_stopped`, `run_timeout`) with `runId`.")
    def post(self, request: Request) -> Response:
        finished = coze_run_start(request, mode=RunMode.BLOCKING)
        if finished.status == RunStatus.SUCCEEDED:
            return Response(finished.outputs or {})
        response = problem_response(500, f"run_{finished.status}", coze_error(finished) or finished.status)
        response.data["runId"] = str(finished.pk)
        return response


class CozeStreamRunApi(DialectView):
    @extend_schema(operation_id="coze_stream_run", tags=[TAG], request=InputsBody, parameters=[_DEBUG],
                   responses={(200, "text/event-stream"): OpenApiResponse(
                       CozeFrameOut, description="`id: <n>` from 0, `event: message`, `data:` one of these objects; "
                                                 "`workflow_end` or `error` is last."), **_ERRORS})
    def post(self, request: Request) -> Any:
        run = coze_run_start(request, mode=RunMode.STREAMING)
        debug = request.META.get(DEBUG_HEADER, "").strip().lower() == "debug"
        return coze_stream_response(run, stream_follow(run), debug=debug)


class CozeRunStreamApi(CozeStreamRunApi):
    @extend_schema(operation_id="coze_run_stream", tags=[TAG], request=InputsBody, parameters=[_DEBUG],
                   responses={(200, "text/event-stream"): OpenApiResponse(CozeFrameOut), **_ERRORS},
                   description="The same as /stream_run.")
    def post(self, request: Request) -> Any:
        return super().post(request)


class CozeAsyncRunApi(DialectView):
    @extend_schema(operation_id="coze_async_run", tags=[TAG], request=InputsBody,
                   responses={(200, JSON): CozeAsyncOut, **_ERRORS},
                   description="Queue the run for a worker; poll GET /task/{task_id}.")
    def post(self, request: Request) -> Response:
        run = coze_run_start(request, mode=RunMode.ASYNC)
        return Response({"task_id": str(run.task_id), "status": "pending", "created_at": iso(run.created_at),
                         "deadline": iso(run.deadline)})


class CozeTaskApi(DialectView):
    required_scopes = "read"

    @extend_schema(operation_id="coze_task", tags=[TAG], responses={(200, JSON): CozeTaskOut, **_ERRORS})
    def get(self, request: Request, task_id: str) -> Response:
        return Response(coze_task(request_run(request, task_id, by="any")))


class CozeGraphParameterApi(DialectView):
    required_scopes = "read"

    @extend_schema(operation_id="coze_graph_parameter", tags=[TAG],
                   responses={(200, JSON): inline_serializer("CozeGraphParameter", {
                       "input_schema": serializers.JSONField(), "output_schema": serializers.JSONField()}),
                       **_ERRORS})
    def get(self, request: Request) -> Response:
        workflow = app_entry_workflow(app_required(request))
        graph = workflow.active_version.graph
        return Response({
            "input_schema": {"title": "GraphInput", "description": workflow.description or workflow.name,
                             **inputs_json_schema(graph)},
            "output_schema": {"title": "GraphOutput", **outputs_json_schema(graph)},
        })


class CozeCancelApi(DialectView):
    @extend_schema(operation_id="coze_cancel", tags=[TAG], request=None, responses={(200, JSON): CozeTaskOut, **_ERRORS},
                   description="Stop a run (by run id or task id); it ends within a second. Answers the task.")
    def post(self, request: Request, run_id: str) -> Response:
        run = request_run(request, run_id, by="any")
        return Response(coze_task(run_stop(team=request_team(request), run=run)))

