"""Dify-style workflow API (``/v1/``), as Dify's service API so that its SDKs work unchanged.

Field names, the blocking body, the ``data: {json}\\n\\n`` stream with ``event: ping`` frames, and the
error body ``{"code", "message", "status"}`` (plus ``params`` for ``invalid_param``) follow Dify's
``controllers/service_api/app/workflow.py``, ``core/app/entities/task_entities.py`` and
``libs/external_api.py``. Timestamps are Unix seconds. Dify's ``task_id`` is the run's ``task_id``,
``workflow_run_id`` the run's id. Every view answers errors in Dify's body
(``get_exception_handler``), 401 with ``WWW-Authenticate: Bearer realm="api"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import RUNS_READ, request_team
from config.errors import InvalidInput, NotFound
from config.exceptions import error_normalize
from runs import selectors
from runs.apis import request_run, request_run_owner, request_user, run_start_from_request
from runs.dialects.common import (
    DialectView,
    app_entry_workflow,
    app_required,
    epoch_seconds,
    error_message,
    request_workflow_version,
    stream_start,
)
from runs.files import NoFileUploaded, file_upload
from runs.lifecycle import DIFY, run_stop
from runs.models import ACTIVE_STATUSES, Run, RunMode, RunStatus
from runs.representations import elapsed_seconds
from runs.sse import RunFollower, sse_frame, sse_response, sse_stream
from workflows.models import App, Workflow, WorkflowVersion

logger = logging.getLogger(__name__)

TAG = "dify"

# Native error code -> Dify's code (Dify derives codes from werkzeug exception names).
_CODES = {
    "invalid_input": "invalid_param",
    "parse_error": "bad_request",
    "not_authenticated": "unauthorized",
    "authentication_failed": "unauthorized",
    "permission_denied": "forbidden",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "unsupported_media_type": "unsupported_media_type",
    "rate_limited": "too_many_requests",
    "payload_too_large": "request_entity_too_large",
    "not_acceptable": "not_acceptable",
    "conflict": "workflow_request_error",  # a reused Idempotency-Key (API.md)
}


def dify_error_body(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    dify_code = _CODES.get(code, code)
    body: dict[str, Any] = {"code": dify_code, "message": message, "status": status}
    if dify_code == "invalid_param" and errors:
        # Dify names the offending argument in "params"; ours is the field's path, dotted.
        body["params"] = errors[0]["path"].strip("/").replace("/", ".") or None
    return body


def dify_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    normalized = error_normalize(exc)
    if normalized is None:
        logger.exception("unhandled error in a Dify-style view", exc_info=exc)
        return Response({"code": "unknown", "message": "Internal Server Error", "status": 500}, status=500,
                        content_type="application/json")
    status, code, detail, errors, headers = normalized
    return Response(dify_error_body(status, code, detail, errors), status=status, headers=headers,
                    content_type="application/json")


class DifyView(DialectView):
    def get_exception_handler(self) -> Any:
        return dify_exception_handler


# Representations ------------------------------------------------------------------------------

def dify_status(status: str) -> str:
    """Dify's run statuses: running, succeeded, failed, stopped (a timeout is a failure there)."""
    if status in ACTIVE_STATUSES:
        return "running"
    return "failed" if status == RunStatus.TIMEOUT else status


def dify_run_error(run: Run) -> str | None:
    message = error_message(run.error)
    if run.status == RunStatus.TIMEOUT and message is None:
        return "timeout"
    return message


def dify_node_status(data: dict[str, Any]) -> str:
    """A node's status as Dify's: a failure the run went on past (``on_error: continue`` or
    ``branch``: the engine records its output ``{"error": ...}``, and port ``error`` for a branch)
    is ``exception``; a waiting node is ``running``."""
    status = data.get("status") or "running"
    if status == "failed" and (data.get("port") == "error" or data.get("outputs") is not None):
        return "exception"
    return "running" if status in ("waiting", "pending") else status


def dify_outputs(value: Any) -> dict[str, Any] | None:
    """Dify's ``outputs`` are objects: a loop's list (or any other value) becomes ``{"output": value}``."""
    if value is None or isinstance(value, dict):
        return value
    return {"output": value}


def dify_run_data(run: Run, exceptions_count: int = 0) -> dict[str, Any]:
    """The blocking ``data`` object (also ``workflow_finished``'s fields)."""
    return {
        "id": str(run.pk), "workflow_id": str(run.workflow_id), "status": dify_status(run.status),
        "outputs": run.outputs if run.outputs is not None else {}, "error": dify_run_error(run),
        "elapsed_time": elapsed_seconds(run) or 0.0, "total_tokens": 0, "total_steps": run.total_steps,
        "created_at": epoch_seconds(run.created_at), "finished_at": epoch_seconds(run.finished_at),
        "exceptions_count": exceptions_count,
    }


def dify_run_detail(run: Run, exceptions_count: int = 0) -> dict[str, Any]:
    return {
        "id": str(run.pk), "workflow_id": str(run.workflow_id), "status": dify_status(run.status),
        "inputs": run.inputs, "outputs": run.outputs, "error": dify_run_error(run),
        "total_steps": run.total_steps, "total_tokens": 0, "created_at": epoch_seconds(run.created_at),
        "finished_at": epoch_seconds(run.finished_at), "elapsed_time": elapsed_seconds(run) or 0.0,
        "exceptions_count": exceptions_count,
    }


def _node_common(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data.get("id") or data.get("key"), "node_id": data.get("node_id"), "node_type": data.get("node_type"),
        "title": data.get("title") or data.get("node_id"), "index": data.get("index"),
        "predecessor_node_id": data.get("predecessor_node_id"), "inputs": data.get("inputs"),
        "created_at": epoch_seconds(data.get("created_at")), "extras": {},
        "parallel_id": data.get("parallel_id"), "parallel_start_node_id": data.get("parallel_start_node_id"),
        "parent_parallel_id": None, "parent_parallel_start_node_id": None,
        "iteration_id": data.get("iteration_id"), "loop_id": None, "parallel_run_id": None,
    }


def _node_finished(data: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in (("iteration_id", data.get("iteration_id")),
                                  ("iteration_index", data.get("iteration_index")),
                                  ("parallel_id", data.get("parallel_id"))) if v is not None}
    return _node_common(data) | {
        "process_data": data.get("process_data"), "outputs": dify_outputs(data.get("outputs")),
        "status": dify_node_status(data),
        "error": error_message(data.get("error")), "elapsed_time": data.get("elapsed_time") or 0.0,
        "execution_metadata": metadata or None, "finished_at": epoch_seconds(data.get("finished_at")), "files": [],
    }


NODE_EVENTS = frozenset({"node_started", "node_finished", "node_retry", "iteration_started", "iteration_next",
                         "iteration_completed"})


def dify_stream_event(run: Run, event: dict[str, Any], exceptions_count: int = 0) -> tuple[str, dict[str, Any]] | None:
    """A run event as Dify's ``(event, data)``, or None when Dify has no such event. A skipped node
    (``run: skip``) sends nothing: Dify never announces a node that did not run."""
    etype, data = event["type"], event["data"] or {}
    if etype in NODE_EVENTS and data.get("status") == "skipped":
        return None
    if etype == "run_started":
        return "workflow_started", {"id": str(run.pk), "workflow_id": str(run.workflow_id),
                                    "sequence_number": 1, "inputs": data.get("inputs", run.inputs),
                                    "created_at": epoch_seconds(data.get("createdAt") or run.created_at)}
    if etype == "node_started":
        return "node_started", _node_common(data)
    if etype == "node_finished":
        return "node_finished", _node_finished(data)
    if etype == "node_retry":
        return "node_retry", _node_finished(data) | {"retry_index": data.get("retry_index")}
    if etype == "iteration_started":
        return "iteration_started", _node_common(data) | {"metadata": {"iterator_length": None}}
    if etype == "iteration_next":
        return "iteration_next", _node_common(data) | {"index": data.get("iteration_index"),
                                                       "pre_iteration_output": None}
    if etype == "iteration_completed":
        return "iteration_completed", _node_finished(data) | {"steps": len(data.get("outputs") or []),
                                                              "total_tokens": 0}
    if etype in ("parallel_branch_started", "parallel_branch_finished"):
        out = {"parallel_id": data.get("parallel_id"), "parallel_branch_id": data.get("parallel_start_node_id"),
               "parent_parallel_id": data.get("parent_parallel_id"), "parent_parallel_start_node_id": None,
               "iteration_id": data.get("iteration_id"),
               "created_at": epoch_seconds(data.get("created_at") or data.get("finished_at") or event["createdAt"])}
        if etype == "parallel_branch_finished":
            out |= {"status": data.get("status"), "error": error_message(data.get("error"))}
        return etype, out
    if etype == "run_finished":
        status = data.get("status", run.status)
        error = error_message(data.get("error"))
        return "workflow_finished", {
            "id": str(run.pk), "workflow_id": str(run.workflow_id), "status": dify_status(status),
            "outputs": data.get("outputs") if data.get("outputs") is not None else {},
            "error": error if error is not None or status != RunStatus.TIMEOUT else "timeout",
            "elapsed_time": data.get("elapsedTime") or 0.0, "total_tokens": 0,
            "total_steps": data.get("totalSteps", 0), "created_by": {},
            "created_at": epoch_seconds(data.get("createdAt")), "finished_at": epoch_seconds(data.get("finishedAt")),
            "exceptions_count": exceptions_count, "files": [],
        }
    return None  # run_resumed, run_waiting: internal to Weft


def dify_stream_response(run: Run, follower: RunFollower) -> Any:
    envelope = {"task_id": str(run.task_id), "workflow_run_id": str(run.pk)}
    exceptions = [0]  # node failures the run went on past, counted as their events pass
    # ``workflow_started`` goes out as soon as the run is recorded (claimed, handed to its executor),
    # from the run's row: a client sees its run begin without waiting for the executor's first
    # commit; the log's own ``run_started`` (the same values) is not sent a second time.
    started = dify_stream_event(run, {"type": "run_started", "data": {"inputs": run.inputs}})
    assert started is not None
    prelude = [sse_frame({"event": started[0], **envelope, "data": started[1]})]

    def frames(event: dict[str, Any]) -> Iterable[bytes]:
        if event["type"] == "run_started":
            return
        if event["type"] == "node_finished" and dify_node_status(event["data"] or {}) == "exception":
            exceptions[0] += 1
        mapped = dify_stream_event(run, event, exceptions[0])
        if mapped is not None:
            yield sse_frame({"event": mapped[0], **envelope, "data": mapped[1]})

    def on_error(exc: Exception) -> bytes:
        logger.exception("stream of run %s failed", run.pk, exc_info=exc)
        return sse_frame({"event": "error", **envelope, "code": "unknown", "message": str(exc), "status": 500})

    return sse_response(sse_stream(follower, frames=frames, ping=lambda: sse_frame(event="ping"), on_error=on_error,
                                   prelude=prelude))


# Schemas ----------------------------------------------------------------------------------------

class DifyErrorOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    status = serializers.IntegerField()
    params = serializers.CharField(required=False, help_text="invalid_param only: the offending field")


class DifyRunIn(serializers.Serializer):
    inputs = serializers.DictField(help_text="Values of the workflow's declared inputs")
    response_mode = serializers.ChoiceField(choices=["blocking", "streaming"], required=False, default="blocking")
    user = serializers.CharField(max_length=255, help_text="End-user identifier, recorded on the run")
    files = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class DifyRunDataOut(serializers.Serializer):
    id = serializers.UUIDField()
    workflow_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["running", "succeeded", "failed", "stopped"])
    outputs = serializers.JSONField()
    error = serializers.CharField(allow_null=True)
    elapsed_time = serializers.FloatField()
    total_tokens = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    created_at = serializers.IntegerField(help_text="Unix seconds")
    finished_at = serializers.IntegerField(allow_null=True, help_text="Unix seconds")
    exceptions_count = serializers.IntegerField(help_text="Node failures the run went on past (`on_error`)")


class DifyBlockingOut(serializers.Serializer):
    task_id = serializers.UUIDField()
    workflow_run_id = serializers.UUIDField()
    data = DifyRunDataOut()


class DifyRunDetailOut(serializers.Serializer):
    id = serializers.UUIDField()
    workflow_id = serializers.UUIDField()
    status = serializers.CharField()
    inputs = serializers.JSONField()
    outputs = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    total_steps = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    created_at = serializers.IntegerField()
    finished_at = serializers.IntegerField(allow_null=True)
    elapsed_time = serializers.FloatField()
    exceptions_count = serializers.IntegerField()


class DifyStopIn(serializers.Serializer):
    user = serializers.CharField(max_length=255)


DifyStopOut = inline_serializer("DifyStopResult", {"result": serializers.CharField()})

_STREAM_DESCRIPTION = (
    "`response_mode: streaming`: each event is one `data: {json}\\n\\n` frame (`event`, `task_id`, "
    "`workflow_run_id`, `data`); `event: ping\\n\\n` keeps the connection open; `workflow_finished` is last.")
# One media type per status: the blocking answer is the 200 (generated clients parse it); the
# stream of `response_mode: streaming` is described in the operation (docs/api-decisions.md).
_RUN_RESPONSES = {
    (200, "application/json"): OpenApiResponse(DifyBlockingOut, description="`response_mode: blocking`. "
                                               + _STREAM_DESCRIPTION),
    **{(status, "application/json"): DifyErrorOut for status in (400, 401, 403, 404, 413, 429)},
}
_ERRORS: dict[Any, Any] = {(status, "application/json"): DifyErrorOut for status in (400, 401, 403, 404, 429)}
JSON = "application/json"


# Views ------------------------------------------------------------------------------------------

def dify_run_body(data: Any) -> dict[str, Any]:
    """``DifyRunIn``'s validated data. The usual body (an inputs object, a known response mode, a
    user, no files) is checked here with the serializer's own rules (the user stripped, not blank,
    at most 255 characters); anything else goes through the serializer, which says what is wrong
    exactly as before. The serializer cost more than the rest of the request's validation."""
    if isinstance(data, dict) and data.keys() <= _RUN_BODY_KEYS and type(data.get("inputs")) is dict:
        mode, user, files = data.get("response_mode", "blocking"), data.get("user"), data.get("files", [])
        if mode in ("blocking", "streaming") and type(user) is str and files == [] and 0 < len(user := user.strip()) <= 255:
            return {"inputs": dict(data["inputs"]), "response_mode": mode, "user": user, "files": []}
    body = DifyRunIn(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


_RUN_BODY_KEYS = frozenset({"inputs", "response_mode", "user", "files"})


def _run_and_answer(request: Request, *, workflow: Workflow, version: WorkflowVersion | None) -> Any:
    data = dify_run_body(request.data)
    if data["response_mode"] == "streaming":
        return dify_stream_response(*stream_start(request, lambda recorded: run_start_from_request(
            request, workflow=workflow, inputs=data["inputs"], user=data["user"], origin=DIFY, mode=RunMode.STREAMING,
            version=version, on_recorded=recorded)))
    run = run_start_from_request(request, workflow=workflow, inputs=data["inputs"], user=data["user"], origin=DIFY,
                                 mode=RunMode.BLOCKING, version=version)
    return Response({"task_id": str(run.task_id), "workflow_run_id": str(run.pk),
                     "data": dify_run_data(run, _exceptions(request, run))})


def _exceptions(request: Request, run: Run) -> int:
    return selectors.run_exception_count(team=request_team(request), run=run)


class DifyWorkflowRunApi(DifyView):
    @extend_schema(operation_id="dify_workflows_run", tags=[TAG], request=DifyRunIn, responses=_RUN_RESPONSES,
                   description="Run the app's workflow (the entry workflow's active version).")
    def post(self, request: Request) -> Any:
        workflow = app_entry_workflow(app_required(request))
        return _run_and_answer(request, workflow=workflow, version=None)


class DifyWorkflowRunVersionApi(DifyView):
    @extend_schema(operation_id="dify_workflows_run_version", tags=[TAG], request=DifyRunIn,
                   responses=_RUN_RESPONSES,
                   description="Run one given published version (`workflow_id`: a version id, or a workflow id "
                               "for its active version) of the token's app.")
    def post(self, request: Request, workflow_id: str) -> Any:
        workflow, version = request_workflow_version(request, workflow_id)
        return _run_and_answer(request, workflow=workflow, version=version)


class DifyTaskStopApi(DifyView):
    @extend_schema(operation_id="dify_workflows_task_stop", tags=[TAG], request=DifyStopIn,
                   responses={(200, JSON): DifyStopOut, **_ERRORS},
                   description="Stop a run by its `task_id` (every mode): it ends as `stopped` within a second. "
                               "As Dify, the answer is `{\"result\": \"success\"}` for any task id: only a run "
                               "of the token's app started by the same `user` is stopped.")
    def post(self, request: Request, task_id: str) -> Response:
        body = DifyStopIn(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = request_run(request, task_id, by="task", acting=True)
        except NotFound:
            run = None  # Dify answers success for a task it does not know (or another app's)
        if run is not None and (not run.user or body.validated_data["user"] == run.user):
            run_stop(team=request_team(request), run=run)
        return Response({"result": "success"})


class DifyTaskStopLegacyApi(DifyTaskStopApi):
    @extend_schema(operation_id="dify_workflows_stop_legacy", tags=[TAG], request=DifyStopIn,
                   responses={(200, JSON): DifyStopOut, **_ERRORS}, description="The older path of the stop endpoint.")
    def post(self, request: Request, task_id: str) -> Response:
        return super().post(request, task_id)


class DifyWorkflowRunDetailApi(DifyView):
    required_scopes = RUNS_READ

    @extend_schema(operation_id="dify_workflows_run_detail", tags=[TAG], responses={(200, JSON): DifyRunDetailOut, **_ERRORS})
    def get(self, request: Request, workflow_run_id: str) -> Response:
        run = request_run(request, workflow_run_id, by="id")
        return Response(dify_run_detail(run, _exceptions(request, run)))


class DifyLogsIn(serializers.Serializer):
    keyword = serializers.CharField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=["succeeded", "failed", "stopped", "running"], required=False)
    created_at__before = serializers.DateTimeField(required=False)
    created_at__after = serializers.DateTimeField(required=False)
    created_by_end_user_session_id = serializers.CharField(
        required=False, max_length=255, help_text="Only runs started by this end user (the run's `user`)")
    created_by_account = serializers.CharField(
        required=False, max_length=254, help_text="Only runs started by this account (its email address)")
    page = serializers.IntegerField(min_value=1, max_value=99999, default=1)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


_STATUS_FILTER = {
    "succeeded": [RunStatus.SUCCEEDED], "failed": [RunStatus.FAILED, RunStatus.TIMEOUT],
    "stopped": [RunStatus.STOPPED], "running": list(ACTIVE_STATUSES),
}


def dify_log_entry(run: Run, exceptions_count: int = 0) -> dict[str, Any]:
    end_user = ({"id": run.user, "type": "service_api", "is_anonymous": False, "session_id": run.user}
                if run.user else None)
    author = run.created_by if end_user is None else None
    account = ({"id": str(author.pk), "name": author.get_full_name() or author.username, "email": author.email}
               if author is not None else None)
    return {
        "id": str(run.pk),
        "workflow_run": {
            "id": str(run.pk), "version": str(run.version.number), "status": dify_status(run.status),
            "triggered_from": "app-run", "error": dify_run_error(run), "elapsed_time": elapsed_seconds(run) or 0.0,
            "total_tokens": 0, "total_steps": run.total_steps, "created_at": epoch_seconds(run.created_at),
            "finished_at": epoch_seconds(run.finished_at), "exceptions_count": exceptions_count,
        },
        "created_from": "service-api" if run.dialect in ("dify", "coze", "native") else "web-app",
        "created_by_role": "end_user" if end_user else "account",
        "created_by_account": account,
        "created_by_end_user": end_user,
        "created_at": epoch_seconds(run.created_at),
    }


class DifyWorkflowLogsApi(DifyView):
    required_scopes = RUNS_READ

    @extend_schema(operation_id="dify_workflows_logs", tags=[TAG], parameters=[DifyLogsIn],
                   responses={(200, JSON): inline_serializer("DifyLogPage", {
                       "page": serializers.IntegerField(), "limit": serializers.IntegerField(),
                       "total": serializers.IntegerField(), "has_more": serializers.BooleanField(),
                       "data": serializers.ListField(child=serializers.JSONField())}), **_ERRORS})
    def get(self, request: Request) -> Response:
        app = app_required(request)
        query = DifyLogsIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        f = query.validated_data
        qs = Run.objects.filter(team_id=app.team_id, app=app, parent_run__isnull=True, draft=False).select_related(
            "version", "created_by")
        owner = request_run_owner(request)
        if owner is not None:  # a token without read: the runs it started
            qs = qs.filter(token_id=owner)
        if f.get("created_by_end_user_session_id"):
            qs = qs.filter(user=f["created_by_end_user_session_id"])
        if f.get("created_by_account"):
            qs = qs.filter(user="", created_by__email__iexact=f["created_by_account"])
        if f.get("status"):
            qs = qs.filter(status__in=_STATUS_FILTER[f["status"]])
        if f.get("created_at__before"):
            qs = qs.filter(created_at__lt=f["created_at__before"])
        if f.get("created_at__after"):
            qs = qs.filter(created_at__gt=f["created_at__after"])
        if f.get("keyword"):
            keyword = f["keyword"]
            match = (Q(inputs_text__icontains=keyword) | Q(outputs_text__icontains=keyword)
                     | Q(user__icontains=keyword))
            if _uuidish(keyword):
                match |= Q(pk=keyword) | Q(task_id=keyword)
            qs = qs.annotate(inputs_text=Cast("inputs", TextField()), outputs_text=Cast("outputs", TextField()))
            qs = qs.filter(match)
        total = qs.count()
        page, limit = f["page"], f["limit"]
        rows = list(qs.order_by("-created_at", "-id")[(page - 1) * limit: page * limit])
        exceptions = selectors.node_exception_counts(team=request_team(request), run_ids=[r.pk for r in rows])
        return Response({"page": page, "limit": limit, "total": total, "has_more": page * limit < total,
                         "data": [dify_log_entry(r, exceptions.get(str(r.pk), 0)) for r in rows]})


def _uuidish(text: str) -> bool:
    return len(text) == 36 and all(c in "0123456789abcdefABCDEF-" for c in text)


# Parameters and info ----------------------------------------------------------------------------

def user_input_form(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Dify's ``user_input_form`` (its "old structure": ``[{"<type>": {...}}]``) from declared inputs:
    string -> ``text-input`` (``paragraph`` when declared ``format: paragraph`` or longer than 256),
    enum -> ``select``, number/integer -> ``number``, boolean -> ``checkbox``, file -> ``file``
    (``file-list`` when ``multiple``), object/array -> ``json_object``."""
    form = []
    for name, decl in (graph.get("inputs") or {}).items():
        kind = decl.get("type", "string")
        max_length = decl.get("maxLength")
        entry: dict[str, Any] = {"label": decl.get("title") or decl.get("description") or name, "variable": name,
                                 "required": bool(decl.get("required")), "default": decl.get("default", "")}
        if "enum" in decl:
            form_type = "select"
            entry["options"] = [str(o) for o in decl["enum"]]
        elif kind == "string":
            long_text = decl.get("format") in ("paragraph", "textarea") or (max_length or 0) > 256
            form_type = "paragraph" if long_text else "text-input"
            entry["max_length"] = max_length or (None if long_text else 256)
        elif kind in ("number", "integer"):
            form_type = "number"
        elif kind == "boolean":
            form_type = "checkbox"
        elif kind == "file":
            form_type = "file-list" if decl.get("multiple") else "file"
            entry |= dify_file_rules(decl.get("accept") or [])
            entry["default"] = [] if decl.get("multiple") else None
        else:
            form_type = "json_object"
        if decl.get("description"):
            entry["description"] = decl["description"]
        form.append({form_type: entry})
    return form


# Dify's file types, by the MIME type family an ``accept`` entry names.
_DIFY_FILE_TYPES = {"image": "image", "audio": "audio", "video": "video", "text": "document",
                    "application": "document"}


def dify_file_rules(accept: list[str]) -> dict[str, Any]:
    """A file field's ``allowed_file_types`` / ``allowed_file_extensions`` from the declaration's
    ``accept`` (MIME types such as ``image/*`` or ``application/pdf``, or extensions ``.csv``);
    nothing declared: every type."""
    types: list[str] = []
    extensions = [a.lower() for a in accept if a.startswith(".")]
    for item in accept:
        if "/" in item:
            kind = _DIFY_FILE_TYPES.get(item.split("/", 1)[0].lower(), "custom")
            if kind not in types:
                types.append(kind)
    if extensions and "custom" not in types:
        types.append("custom")
    return {"allowed_file_types": types or ["document", "image", "audio", "video", "custom"],
            "allowed_file_extensions": extensions, "allowed_file_upload_methods": list(FILE_UPLOAD_METHODS)}


FILE_UPLOAD_METHODS = ("local_file", "remote_url")


def app_parameters(app: App) -> dict[str, Any]:
    workflow = app_entry_workflow(app)
    mb = max(1, int(settings.WEFT_UPLOAD_MAX_BYTES) // (1024 * 1024))  # Dify states the limits in MB
    return {
        "opening_statement": None, "suggested_questions": [],
        "suggested_questions_after_answer": {"enabled": False}, "speech_to_text": {"enabled": False},
        "text_to_speech": {"enabled": False}, "retriever_resource": {"enabled": False},
        "annotation_reply": {"enabled": False}, "more_like_this": {"enabled": False},
        "user_input_form": user_input_form(workflow.active_version.graph),
        "sensitive_word_avoidance": {"enabled": False, "type": "", "configs": []},
        "file_upload": {"image": {"enabled": False, "number_limits": 3, "detail": "high",
                                  "transfer_methods": list(FILE_UPLOAD_METHODS)}},
        "system_parameters": {"file_size_limit": mb, "image_file_size_limit": mb, "audio_file_size_limit": mb,
                              "video_file_size_limit": mb, "workflow_file_upload_limit": 10},
    }


class DifyParametersApi(DifyView):
    required_scopes = "read"

    @extend_schema(operation_id="dify_parameters", tags=[TAG],
                   responses={(200, JSON): inline_serializer("DifyParameters", {
                       "user_input_form": serializers.ListField(child=serializers.JSONField()),
                       "file_upload": serializers.JSONField(), "system_parameters": serializers.JSONField()}),
                       **_ERRORS},
                   description="The input form generated from the declared inputs of the app's workflow.")
    def get(self, request: Request) -> Response:
        return Response(app_parameters(app_required(request)))


class DifyInfoApi(DifyView):
    required_scopes = "read"

    @extend_schema(operation_id="dify_info", tags=[TAG],
                   responses={(200, JSON): inline_serializer("DifyInfo", {
                       "name": serializers.CharField(), "description": serializers.CharField(),
                       "tags": serializers.ListField(child=serializers.CharField()), "mode": serializers.CharField(),
                       "author_name": serializers.CharField()}), **_ERRORS})
    def get(self, request: Request) -> Response:
        app = app_required(request)
        author = app.created_by
        return Response({"name": app.name, "description": app.description, "tags": list(app.tags or []),
                         "mode": "workflow", "author_name": (author.get_full_name() or author.email or author.username)
                         if author else ""})



class DifyUploadIn(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The file (multipart/form-data)")
    user = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


DifyUploadOut = inline_serializer("DifyUploadedFile", {
    "id": serializers.UUIDField(), "name": serializers.CharField(), "size": serializers.IntegerField(),
    "extension": serializers.CharField(), "mime_type": serializers.CharField(),
    "created_by": serializers.CharField(), "created_at": serializers.IntegerField(help_text="Unix seconds")})


class DifyFileUploadApi(DifyView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="dify_files_upload", tags=[TAG], request={"multipart/form-data": DifyUploadIn},
                   responses={(201, JSON): DifyUploadOut,
                              **{(s, JSON): DifyErrorOut for s in (400, 401, 403, 413, 415, 429)}},
                   description="Upload a file for a `file` input (then pass `{\"type\": \"document\", "
                               "\"transfer_method\": \"local_file\", \"upload_file_id\": id}`). Size and type "
                               "limits: WEFT_UPLOAD_MAX_BYTES, WEFT_UPLOAD_ALLOWED_TYPES.")
    def post(self, request: Request) -> Response:
        app = app_required(request)
        uploads = request.FILES.getlist("file")
        if not uploads:
            raise NoFileUploaded("No file uploaded: send it as the multipart field `file`.",
                                 errors=[{"path": "/file", "message": "required"}])
        if len(uploads) > 1:
            raise InvalidInput("Only one file per upload.", errors=[{"path": "/file", "message": "one file only"}])
        user = str(request.data.get("user") or "")[:255]
        row = file_upload(team=request_team(request), app=app, upload=uploads[0], user=user,
                          created_by=request_user(request))
        return Response({"id": str(row.pk), "name": row.name, "size": row.size, "extension": row.extension,
                         "mime_type": row.mime_type, "created_by": row.user or str(row.created_by_id or ""),
                         "created_at": epoch_seconds(row.created_at)}, status=201)


class DifyMetaApi(DifyView):
    required_scopes = "read"

    @extend_schema(operation_id="dify_meta", tags=[TAG],
                   responses={(200, JSON): inline_serializer("DifyMeta", {"tool_icons": serializers.DictField()}),
                              **_ERRORS},
                   description="The app's tool icons, as Dify's `/v1/meta` (Weft has no tool nodes: empty).")
    def get(self, request: Request) -> Response:
        app_required(request)
        return Response({"tool_icons": {}})


def app_site(app: App) -> dict[str, Any]:
    """Dify's ``/v1/site`` (the web app's settings) for an app: its name and description; the
    rest are Dify's defaults (Weft serves no public web app)."""
    return {
        "title": app.name, "chat_color_theme": None, "chat_color_theme_inverted": False, "icon_type": "emoji",
        "icon": None, "icon_background": None, "icon_url": None, "description": app.description or None,
        "copyright": None, "privacy_policy": None, "custom_disclaimer": "", "default_language": "en-US",
        "prompt_public": False, "show_workflow_steps": True, "use_icon_as_answer_icon": False,
    }


class DifySiteApi(DifyView):
    required_scopes = "read"

    @extend_schema(operation_id="dify_site", tags=[TAG],
                   responses={(200, JSON): inline_serializer("DifySite", {
                       "title": serializers.CharField(), "description": serializers.CharField(allow_null=True),
                       "icon_type": serializers.CharField(), "default_language": serializers.CharField(),
                       "show_workflow_steps": serializers.BooleanField()}), **_ERRORS},
                   description="The app's web-app settings, as Dify's `/v1/site`.")
    def get(self, request: Request) -> Response:
        return Response(app_site(app_required(request)))


class DifyNotFoundApi(DifyView):
    """Every ``/v1/...`` path Weft does not serve: Dify's JSON 404 body, for any method and whoever
    asks (Dify answers an unknown route before it looks at the token)."""

    public = True
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []

    def _not_found(self, request: Request, path: str = "") -> Response:
        raise NotFound(f"The requested URL /v1/{path} was not found on this server.")

    get = post = put = patch = delete = _not_found


NOT_FOUND_VIEW = extend_schema(exclude=True)(DifyNotFoundApi)
