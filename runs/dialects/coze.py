"""Coze-style deployment API at the root, so that the calls on a Coze deployment page work unchanged.

Shapes follow the Coze coding runtime (``coze-coding-utils``: ``helper/stream_runner.py``,
``async_tasks/runtime.py``; compared field by field in docs/api-decisions.md):

- ``POST /run``: the body is the inputs; the answer is the outputs object plus ``run_id``; a failed
  run is 500 ``{"detail": {"error_code", "error_message"}}``, a stopped or timed-out one 200
  ``{"status": "cancelled"|"timeout", "run_id", "message"}``.
- ``POST /stream_run`` (also ``/run/stream``): SSE frames ``id: <n>`` (from 1), ``event: message``,
  ``data: {"type", "timestamp" (ms), "log_id", "run_id", ...}``: ``workflow_start``, ``workflow_end``
  (``output``, ``time_cost_ms``) or ``error`` (``code``: ``CANCELED``, ``TIMEOUT`` or the error's
  code; ``error_msg``), ``ping`` every ``WEFT_COZE_PING_SECONDS`` (30); with
  ``x-workflow-stream-mode: debug`` also ``node_start`` and ``node_end``.
- ``POST /async_run`` -> ``{"task_id", "status", "created_at", "deadline"}`` (``x-task-deadline-sec``
  sets the deadline); ``GET /task/{task_id}`` (``error``: ``{"code", "message"}`` or null);
  ``GET /graph_parameter`` (JSON Schemas, ``code`` 0, ``msg``); ``POST /cancel/{run_id}`` ->
  ``{"status": "success"|"already_completed"|"not_found", "run_id", "message"}``; ``GET /health``.
- ``x-run-id`` (a UUID) sets the run and task id and makes the call idempotent (as
  ``Idempotency-Key``).

Coze's ``task_id`` is the run's ``task_id``; ``/task/`` and ``/cancel/`` accept it or the run id.
Errors are the runtime's FastAPI body, ``{"detail": {"error_code", "error_message"}}`` (plus
``errors`` naming the fields, paths from the body's root: ``/amount``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import RUNS_READ, request_team
from config.errors import InvalidInput, NotFound
from config.exceptions import error_normalize
from runs.apis import request_run, run_start_from_request
from runs.dialects.common import (
    DialectView,
    app_entry_workflow,
    app_required,
    epoch_ms,
    error_message,
    stream_start,
)
from runs.lifecycle import COZE, run_stop
from runs.models import Run, RunMode, RunStatus
from runs.representations import iso
from runs.sse import RunFollower, sse_frame, sse_response, sse_stream
from workflows.engine.graph import inputs_json_schema, outputs_json_schema

logger = logging.getLogger(__name__)

TAG = "coze"
RUN_ID_HEADER = "x-run-id"
DEADLINE_HEADER = "x-task-deadline-sec"
DEBUG_HEADER = "HTTP_X_WORKFLOW_STREAM_MODE"

COZE_STATUS = {
    RunStatus.PENDING: "pending", RunStatus.RUNNING: "running", RunStatus.WAITING: "running",
    RunStatus.SUCCEEDED: "completed", RunStatus.FAILED: "failed", RunStatus.STOPPED: "failed",
    RunStatus.TIMEOUT: "timeout",
}


def coze_error_body(code: str, message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The runtime's error body (FastAPI's ``HTTPException(detail=...)``)."""
    detail: dict[str, Any] = {"error_code": code, "error_message": message}
    if errors:
        detail["errors"] = errors
    return {"detail": detail}


def coze_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    normalized = error_normalize(exc)
    if normalized is None:
        logger.exception("unhandled error in a Coze-style view", exc_info=exc)
        return Response(coze_error_body("internal_error", "Internal Server Error"), status=500)
    status, code, detail, errors, headers = normalized
    return Response(coze_error_body(code, detail, errors), status=status, headers=headers)


class CozeView(DialectView):
    def get_exception_handler(self) -> Any:
        return coze_exception_handler


def coze_error(run: Run) -> dict[str, Any] | None:
    """A task's ``error``, as the runtime's ``{"code", "message"}``: a stop is ``CANCELED``, a
    timeout the runtime's ``deadline_exceeded``."""
    if run.status == RunStatus.STOPPED:
        return {"code": "CANCELED", "message": "stopped by request"}
    if run.status == RunStatus.TIMEOUT:
        return {"code": "deadline_exceeded", "message": error_message(run.error) or "timeout"}
    if run.status != RunStatus.FAILED:
        return None
    error = run.error if isinstance(run.error, dict) else {}
    return {"code": str(error.get("code") or "failed"), "message": error_message(run.error) or "failed"}


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


def coze_run_id(request: Request) -> uuid.UUID | None:
    raw = request.headers.get(RUN_ID_HEADER)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput(f"{RUN_ID_HEADER} must be a UUID.",
                           errors=[{"path": f"/{RUN_ID_HEADER}", "message": "not a UUID"}]) from None


def coze_deadline(request: Request) -> int | None:
    """``x-task-deadline-sec``: a positive integer (as the runtime's ``parse_deadline_sec``)."""
    raw = request.headers.get(DEADLINE_HEADER)
    if not raw:
        return None
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise InvalidInput(f"{DEADLINE_HEADER} must be a positive integer.",
                           errors=[{"path": f"/{DEADLINE_HEADER}", "message": "not a positive integer"}])
    return seconds


def coze_run_start(request: Request, *, mode: str, on_recorded: Callable[[Run], None] | None = None) -> Run:
    workflow = app_entry_workflow(app_required(request))
    run_id = coze_run_id(request)
    deadline = coze_deadline(request) if mode == RunMode.ASYNC else None
    try:
        return run_start_from_request(
            request, workflow=workflow, inputs=coze_inputs(request), mode=mode, origin=COZE,
            user=request.headers.get("X-User", "") or "", run_id=run_id, deadline_seconds=deadline,
            # x-run-id means Idempotency-Key (API.md); the explicit header wins when both are sent
            idempotency_key=request.headers.get("Idempotency-Key") or (str(run_id) if run_id else None),
            idempotency_header="Idempotency-Key" if request.headers.get("Idempotency-Key") else RUN_ID_HEADER,
            on_recorded=on_recorded)
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
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        if status == RunStatus.STOPPED:
            code, message = "CANCELED", "Stream execution cancelled"
        elif status == RunStatus.TIMEOUT:
            code, message = "TIMEOUT", error_message(data.get("error")) or "Execution timeout"
        else:
            code, message = str(error.get("code") or "failed"), error_message(data.get("error")) or "failed"
        # The runtime says error_msg for failures and message for a cancel or timeout: both are sent.
        return {"type": "error", **base, "code": code, "error_msg": message, "message": message,
                "status": COZE_STATUS.get(status, "failed"), "time_cost_ms": cost}
    return None


def coze_stream_response(run: Run, follower: RunFollower, *, debug: bool) -> Any:
    counter = iter(range(1, 1 << 62))  # the runtime numbers frames from 1

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
                      "status": "failed", "code": "stream_error", "error_msg": str(exc), "message": str(exc)})

    return sse_response(sse_stream(follower, frames=frames, ping=ping, on_error=on_error,
                                   ping_interval=float(settings.WEFT_COZE_PING_SECONDS)))


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
    code = serializers.CharField(required=False, help_text="error: CANCELED, TIMEOUT or the error's code")
    error_msg = serializers.CharField(required=False)
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
    error = inline_serializer("CozeTaskError", {"code": serializers.CharField(), "message": serializers.CharField()},
                              allow_null=True)


CozeAsyncOut = inline_serializer("CozeAsyncAccepted", {
    "task_id": serializers.UUIDField(), "status": serializers.CharField(), "created_at": serializers.DateTimeField(),
    "deadline": serializers.DateTimeField()})
CozeErrorOut = inline_serializer("CozeError", {"detail": inline_serializer("CozeErrorDetail", {
    "error_code": serializers.CharField(), "error_message": serializers.CharField(),
    "errors": serializers.ListField(child=serializers.DictField(), required=False,
                                    help_text="The fields at fault: [{path, message}]")})})
CozeStoppedOut = inline_serializer("CozeRunStopped", {
    "status": serializers.ChoiceField(choices=["cancelled", "timeout"]), "run_id": serializers.UUIDField(),
    "message": serializers.CharField()})
CozeCancelOut = inline_serializer("CozeCancelResult", {
    "status": serializers.ChoiceField(choices=["success", "already_completed", "not_found"]),
    "run_id": serializers.CharField(), "message": serializers.CharField()})
JSON = "application/json"
_ERRORS: dict[Any, Any] = {(status, JSON): CozeErrorOut for status in (400, 401, 403, 404, 409, 413, 429)}
_RUN_ID = OpenApiParameter(RUN_ID_HEADER, str, OpenApiParameter.HEADER, required=False,
                           description="A UUID: the run's id and task id; repeating it answers that run (idempotent)")
_DEADLINE = OpenApiParameter(DEADLINE_HEADER, int, OpenApiParameter.HEADER, required=False,
                             description="The async run's deadline in seconds (a positive integer)")
_DEBUG = OpenApiParameter("x-workflow-stream-mode", str, OpenApiParameter.HEADER, required=False, enum=["debug"],
                          description="`debug` adds node_start and node_end events")


# Views ------------------------------------------------------------------------------------------

class CozeRunApi(CozeView):
    @extend_schema(operation_id="coze_run", tags=[TAG], request=InputsBody, parameters=[_RUN_ID],
                   responses={(200, JSON): OpenApiResponse(OutputsBody, description=(
                       "The outputs object plus `run_id`; a stopped or timed-out run answers "
                       "`{status: cancelled|timeout, run_id, message}`")),
                       (500, JSON): CozeErrorOut, **_ERRORS},
                   description="Run synchronously. A failed run is a 500 `{detail: {error_code, error_message}}`.")
    def post(self, request: Request) -> Response:
        finished = coze_run_start(request, mode=RunMode.BLOCKING)
        run_id = str(finished.pk)
        if finished.status == RunStatus.SUCCEEDED:
            return Response({**(finished.outputs or {}), "run_id": run_id})
        error = coze_error(finished) or {"code": finished.status, "message": finished.status}
        if finished.status in (RunStatus.STOPPED, RunStatus.TIMEOUT):
            status = "cancelled" if finished.status == RunStatus.STOPPED else "timeout"
            return Response({"status": status, "run_id": run_id, "message": error["message"]})
        return Response(coze_error_body(error["code"], error["message"]), status=500)


class CozeStreamRunApi(CozeView):
    @extend_schema(operation_id="coze_stream_run", tags=[TAG], request=InputsBody, parameters=[_DEBUG, _RUN_ID],
                   responses={(200, "text/event-stream"): OpenApiResponse(
                       CozeFrameOut, description="`id: <n>` from 1, `event: message`, `data:` one of these objects; "
                                                 "`workflow_end` or `error` is last."), **_ERRORS})
    def post(self, request: Request) -> Any:
        run, follower = stream_start(request, lambda recorded: coze_run_start(
            request, mode=RunMode.STREAMING, on_recorded=recorded))
        debug = request.META.get(DEBUG_HEADER, "").strip().lower() == "debug"
        return coze_stream_response(run, follower, debug=debug)


class CozeRunStreamApi(CozeStreamRunApi):
    @extend_schema(operation_id="coze_run_stream", tags=[TAG], request=InputsBody, parameters=[_DEBUG, _RUN_ID],
                   responses={(200, "text/event-stream"): OpenApiResponse(CozeFrameOut), **_ERRORS},
                   description="The same as /stream_run.")
    def post(self, request: Request) -> Any:
        return super().post(request)


class CozeAsyncRunApi(CozeView):
    @extend_schema(operation_id="coze_async_run", tags=[TAG], request=InputsBody, parameters=[_RUN_ID, _DEADLINE],
                   responses={(200, JSON): CozeAsyncOut, **_ERRORS},
                   description="Queue the run for a worker; poll GET /task/{task_id}.")
    def post(self, request: Request) -> Response:
        run = coze_run_start(request, mode=RunMode.ASYNC)
        return Response({"task_id": str(run.task_id), "status": "pending", "created_at": iso(run.created_at),
                         "deadline": iso(run.deadline)})


class CozeTaskApi(CozeView):
    required_scopes = RUNS_READ

    @extend_schema(operation_id="coze_task", tags=[TAG], responses={(200, JSON): CozeTaskOut, **_ERRORS})
    def get(self, request: Request, task_id: str) -> Response:
        return Response(coze_task(request_run(request, task_id, by="any")))


class CozeGraphParameterApi(CozeView):
    required_scopes = "read"

    @extend_schema(operation_id="coze_graph_parameter", tags=[TAG],
                   responses={(200, JSON): inline_serializer("CozeGraphParameter", {
                       "code": serializers.IntegerField(), "msg": serializers.CharField(allow_blank=True),
                       "input_schema": serializers.JSONField(), "output_schema": serializers.JSONField()}),
                       **_ERRORS})
    def get(self, request: Request) -> Response:
        workflow = app_entry_workflow(app_required(request))
        graph = workflow.active_version.graph
        return Response({
            "code": 0, "msg": "",
            "input_schema": {"title": "GraphInput", "description": workflow.description or workflow.name,
                             **inputs_json_schema(graph)},
            "output_schema": {"title": "GraphOutput", **outputs_json_schema(graph)},
        })


class CozeCancelApi(CozeView):
    @extend_schema(operation_id="coze_cancel", tags=[TAG], request=None,
                   responses={(200, JSON): CozeCancelOut, (404, JSON): CozeCancelOut,
                              **{k: v for k, v in _ERRORS.items() if k[0] != 404}},
                   description="Stop a run (by run id or task id); it ends within a second. `already_completed` "
                               "for a run that had ended; an unknown run (or another team's) is 404 `not_found`.")
    def post(self, request: Request, run_id: str) -> Response:
        try:
            run = request_run(request, run_id, by="any", acting=True)
        except NotFound:
            return Response({"status": "not_found", "run_id": run_id, "message": "run not found"}, status=404)
        if run.is_final:
            return Response({"status": "already_completed", "run_id": str(run.pk),
                             "message": f"the run already ended ({COZE_STATUS[RunStatus(run.status)]})"})
        run_stop(team=request_team(request), run=run)
        return Response({"status": "success", "run_id": str(run.pk), "message": "cancel requested"})


class CozeHealthApi(CozeView):
    """Liveness, as the runtime's ``GET /health``: no token needed."""

    public = True
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    @extend_schema(operation_id="coze_health", tags=[TAG], auth=[],
                   responses={(200, JSON): inline_serializer("CozeHealth", {"status": serializers.CharField(),
                                                                            "message": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok", "message": "running"})

