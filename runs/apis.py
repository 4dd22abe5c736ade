"""Native run API (``/api/v1/``): start (blocking or async), read, list, stop, replay, follow a run's
events (SSE, ``runs.sse``) and the token webhook trigger.

Views are thin: parse input, call a service or selector with the request's team, answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.permissions import RUNS_READ, request_app_id, request_scopes, request_team
from accounts.serializers import input_validate, problem_responses
from config.errors import InvalidInput, NotFound
from config.fastjson import FastJSONRenderer
from runs import selectors
from runs.callbacks import callback_store
from runs.idempotency import HEADER, idempotency_request
from runs.lifecycle import NATIVE, NATIVE_WEBHOOK, Origin, run_replay, run_start, run_stop
from runs.models import Run, RunMode, RunStatus
from runs.representations import run_dict
from runs.sse import EventStreamRenderer, RunFollower, sse_frame, sse_response, sse_stream
from workflows.selectors import workflow_get
from workflows.services import draft_snapshot


def request_token(request: Request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def request_user(request: Request) -> Any:
    user = request.user
    return user if getattr(user, "pk", None) is not None else None


class NodeRunOut(serializers.Serializer):
    id = serializers.UUIDField()
    key = serializers.CharField()
    nodeId = serializers.CharField()
    nodeType = serializers.CharField()
    title = serializers.CharField()
    index = serializers.IntegerField()
    predecessorNodeId = serializers.CharField(allow_null=True)
    iterationId = serializers.CharField(allow_null=True)
    iterationIndex = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["running", "succeeded", "failed", "skipped", "stopped", "waiting"])
    attempt = serializers.IntegerField()
    port = serializers.CharField(allow_null=True)
    inputs = serializers.JSONField(allow_null=True)
    outputs = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(allow_null=True)
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)
    elapsedTime = serializers.FloatField()


class RunOut(serializers.Serializer):
    id = serializers.UUIDField()
    taskId = serializers.UUIDField()
    appId = serializers.UUIDField()
    workflowId = serializers.UUIDField()
    versionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RunStatus.values)
    mode = serializers.ChoiceField(choices=RunMode.values)
    dialect = serializers.CharField()
    trigger = serializers.CharField()
    user = serializers.CharField()
    inputs = serializers.JSONField()
    outputs = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(allow_null=True)
    totalSteps = serializers.IntegerField()
    claimCount = serializers.IntegerField()
    businessTime = serializers.DateTimeField()
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField()
    elapsedTime = serializers.FloatField(allow_null=True)
    parentRunId = serializers.UUIDField(allow_null=True)
    rootRunId = serializers.UUIDField(allow_null=True, help_text="A child run's top-level run")
    depth = serializers.IntegerField(help_text="Sub-workflow levels below the top-level run (0: top-level)")
    replayOfId = serializers.UUIDField(allow_null=True)
    draft = serializers.BooleanField(help_text="A test run of the saved draft")
    nodeRuns = NodeRunOut(many=True, required=False)


class RunStartIn(serializers.Serializer):
    workflowId = serializers.UUIDField()
    params = serializers.DictField(required=False, default=dict)
    mode = serializers.ChoiceField(choices=["blocking", "async"], default="blocking")
    user = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    draft = serializers.BooleanField(required=False, default=False,
                                     help_text="Run the saved draft (validated as at publish) instead of the "
                                               "active version: a test run, marked `draft` on the run.")


RunAccepted = inline_serializer("RunAccepted", {"runId": serializers.UUIDField(), "status": serializers.CharField()})


def run_start_from_request(request: Request, *, workflow: Any, inputs: Any, mode: str, origin: Origin,
                           user: str = "", version: Any = None, idempotency_key: str | None = None,
                           idempotency_header: str = HEADER, run_id: Any = None,
                           deadline_seconds: float | None = None,
                           on_recorded: Callable[[Run], None] | None = None) -> Run:
    """``run_start`` for the request's team, token and user (every API entry point starts runs here),
    with the request's ``Idempotency-Key`` (or the dialect's own key, ``idempotency_key``) bound to
    the endpoint and the body; ``on_recorded`` as ``run_start``'s (``runs.dialects.common.stream_start``)."""
    idempotency = request_idempotency(request, key=idempotency_key, header=idempotency_header)
    return run_start(team=request_team(request), workflow=workflow, inputs=inputs, mode=mode, origin=origin,
                     user=user, token=request_token(request), created_by=request_user(request), version=version,
                     idempotency=idempotency, run_id=run_id, deadline_seconds=deadline_seconds,
                     on_recorded=on_recorded)


READ_RUNS, MANAGE_RUNS = frozenset({"read"}), frozenset({"manage"})


def request_idempotency(request: Request, *, key: str | None = None, header: str = HEADER) -> Any:
    """The request's ``Idempotency-Key`` (or a dialect's own key) bound to its path and body."""
    key = key if key is not None else request.headers.get(HEADER)
    return idempotency_request(key=key, endpoint=request.path, body=request.data, header=header)


def request_run_owner(request: Request, *, acting: bool = False) -> Any:
    """The token whose own runs are all this request may reach, or None (no such narrowing).

    API.md: ``run`` is "start, stop, read own runs". A token without ``read`` reads only the runs it
    started; a token without ``manage`` stops and replays only those (``acting``). Other runs are
    404, exactly like another team's. Signed-in members act by their role."""
    token = request_token(request)
    if token is None:
        return None
    return None if (MANAGE_RUNS if acting else READ_RUNS) & request_scopes(request) else token.pk


def request_run(request: Request, value: Any, *, by: str = "id", acting: bool = False) -> Any:
    """A run of the request's team, and of its token's app for an app-bound token (else 404), by id,
    task id or either (``by``, as ``selectors.run_get``), narrowed to the token's own runs as
    ``request_run_owner`` says (``acting``: to stop or replay it). Every dialect looks runs up here."""
    return selectors.run_get(team=request_team(request), id=value, app_id=request_app_id(request), by=by,
                             token_id=request_run_owner(request, acting=acting))


def request_workflow(request: Request, workflow_id: Any) -> Any:
    """A workflow of the request's team, and of its token's app for an app-bound token (else 404)."""
    workflow = workflow_get(team=request_team(request), id=workflow_id)
    app_id = request_app_id(request)
    if app_id is not None and workflow.app_id != app_id:
        raise NotFound("Workflow not found.")
    return workflow


class RunStartApi(APIView):
    required_scopes = "run"
    app_tokens = True

    @extend_schema(operation_id="runs_start", tags=["runs"], request=RunStartIn,
                   responses={200: RunOut, 202: RunAccepted, **problem_responses(400, 404, 409, 413, 429)},
                   description="Start a run of the workflow's active version (or, with `draft: true`, of its saved "
                               "draft, validated as at publish). `blocking` answers with the finished "
                               "run; `async` answers 202 at once and a worker executes it.")
    def post(self, request: Request) -> Response:
        data = input_validate(RunStartIn, request.data)
        try:
            workflow = request_workflow(request, data["workflowId"])
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise InvalidInput("Unknown workflow.", errors=[{"path": "/workflowId", "message": "no such workflow"}]) from None
            raise
        mode = RunMode(data["mode"])
        # "draft": true runs a frozen snapshot of the saved draft, validated as at publish (400 with the errors).
        version = (draft_snapshot(team=request_team(request), workflow=workflow, created_by=request_user(request))
                   if data["draft"] else None)
        run = run_start_from_request(request, workflow=workflow, inputs=data["params"], mode=mode,
                                     origin=NATIVE, user=data["user"], version=version)
        if mode == RunMode.ASYNC:
            return Response({"runId": str(run.pk), "status": run.status}, status=202)
        return Response(run_dict(run, list(selectors.node_runs(run=run))))


class RunListApi(APIView):
    required_scopes = RUNS_READ
    app_tokens = True

    class FilterIn(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
        cursor = serializers.CharField(required=False)
        status = serializers.ChoiceField(choices=RunStatus.values, required=False)
        workflowId = serializers.UUIDField(required=False)
        appId = serializers.UUIDField(required=False)
        trigger = serializers.CharField(required=False)
        since = serializers.DateTimeField(required=False)

    @extend_schema(operation_id="runs_list", tags=["runs"], parameters=[FilterIn],
                   responses={200: inline_serializer("RunPage", {"data": RunOut(many=True),
                                                                 "nextCursor": serializers.CharField(allow_null=True)}),
                              **problem_responses(400, 429)})
    def get(self, request: Request) -> Response:
        filters = self.FilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        app_id = request_app_id(request)
        if app_id is not None and f.get("appId") not in (None, app_id):
            return Response({"data": [], "nextCursor": None})  # another app: nothing this token may see
        rows, next_cursor = selectors.run_list(
            team=request_team(request), limit=f["limit"], cursor=f.get("cursor"), status=f.get("status"),
            workflow_id=f.get("workflowId"), app_id=app_id or f.get("appId"), trigger=f.get("trigger"),
            since=f.get("since"), token_id=request_run_owner(request),
        )
        return Response({"data": [run_dict(r) for r in rows], "nextCursor": next_cursor})


class RunDetailApi(APIView):
    required_scopes = RUNS_READ
    app_tokens = True

    @extend_schema(operation_id="runs_get", tags=["runs"], responses={200: RunOut, **problem_responses(404, 429)})
    def get(self, request: Request, run_id: str) -> Response:
        run = request_run(request, run_id)
        return Response(run_dict(run, list(selectors.node_runs(run=run))))


class RunStopApi(APIView):
    required_scopes = "run"
    app_tokens = True

    @extend_schema(operation_id="runs_stop", tags=["runs"], request=None,
                   responses={200: RunOut, **problem_responses(404, 429)},
                   description="Request a stop: the run ends as `stopped` within a second.")
    def post(self, request: Request, run_id: str) -> Response:
        run = run_stop(team=request_team(request), run=request_run(request, run_id, acting=True))
        return Response(run_dict(run))


class RunReplayApi(APIView):
    required_scopes = "run"
    app_tokens = True

    @extend_schema(operation_id="runs_replay", tags=["runs"], request=None,
                   responses={202: RunAccepted, **problem_responses(404, 409, 429)},
                   description="A new async run of the same workflow with the same inputs, linked to this one.")
    def post(self, request: Request, run_id: str) -> Response:
        run = run_replay(team=request_team(request), run=request_run(request, run_id, acting=True),
                         token=request_token(request), created_by=request_user(request),
                         idempotency=request_idempotency(request))
        return Response({"runId": str(run.pk), "status": run.status}, status=202)



CALLBACK_RESULT = {"$ref": "#/components/schemas/CallbackResult"}


class CallbackApi(APIView):
    """The webhook URL handed to async HTTP steps; authenticated by its receipt token, not a token."""

    public = True
    authentication_classes: list = []
    parser_classes: list = []

    @extend_schema(operation_id="callbacks_receive", tags=["runs"], auth=[],
                   # one component (config.settings APPEND_COMPONENTS) for both media types: one body model
                   request={"application/json": CALLBACK_RESULT, "application/problem+json": CALLBACK_RESULT},
                   responses={200: inline_serializer("CallbackAccepted", {"accepted": serializers.BooleanField()}),
                              **{s: r for s, r in problem_responses(400, 404, 413).items() if s not in (401, 403)}},
                   description="Result of an async HTTP step: a JSON object (success) or application/problem+json "
                               "(failure). The first callback wins; repeats get 200 with accepted=false.")
    def post(self, request: Request, run_id: str, node_id: str, receipt_token: str) -> Response:
        accepted = callback_store(run_id=run_id, node_id=node_id, token=receipt_token,
                                  content_type=request.content_type or "", raw=request.body)
        return Response({"accepted": accepted})


# Streaming and triggers (issue 6) ---------------------------------------------------------------

class RunEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    data = serializers.JSONField()
    createdAt = serializers.DateTimeField()


def last_event_id(request: Request) -> int:
    """Where a reader resumes: the ``Last-Event-ID`` header (an EventSource reconnecting) or ``?after=``."""
    raw = request.META.get("HTTP_LAST_EVENT_ID") or request.query_params.get("after") or "0"
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput("Last-Event-ID must be an event sequence number.",
                           errors=[{"path": "/Last-Event-ID", "message": "not a non-negative integer"}])
    return value


class RunEventsApi(APIView):
    required_scopes = RUNS_READ
    app_tokens = True
    renderer_classes = [FastJSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="runs_events", tags=["runs"],
        parameters=[OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, required=False,
                                     description="Resume after this event sequence number"),
                    OpenApiParameter("after", int, OpenApiParameter.QUERY, required=False,
                                     description="The same as Last-Event-ID, for clients that cannot set headers")],
        responses={(200, "text/event-stream"): OpenApiResponse(
            RunEventOut, description="SSE: `id: <seq>`, `event: <type>`, `data: {seq, type, data, createdAt}`; the "
                                     "log from Last-Event-ID on, then live; ends after `run_finished`; `: ping` "
                                     "comments keep the connection open."),
            **{(s, "application/problem+json"): r for s, r in problem_responses(400, 404, 429).items()}},
        description="The run's event log from `Last-Event-ID` on, then its live events.")
    def get(self, request: Request, run_id: str) -> Any:
        run = request_run(request, run_id)
        token = request_token(request)
        follower = RunFollower(run.pk, after=last_event_id(request), team_id=run.team_id,  # subscribed first
                               token_id=token.pk if token else None, user_id=getattr(request_user(request), "pk", None))

        def frames(event: dict[str, Any]) -> list[bytes]:
            return [sse_frame(event, event=event["type"], id=event["seq"])]

        return sse_response(sse_stream(follower, frames=frames, ping=lambda: sse_frame(comment="ping")))


class WorkflowTriggerIn(serializers.Serializer):
    payload = serializers.DictField(required=False, default=dict, help_text="Becomes the run's inputs")


class WorkflowTriggerApi(APIView):
    required_scopes = "run"
    app_tokens = True

    @extend_schema(operation_id="workflows_trigger", tags=["runs"], request=WorkflowTriggerIn,
                   responses={202: inline_serializer("TriggerAccepted", {"runId": serializers.UUIDField()}),
                              **problem_responses(400, 404, 409, 413, 429)},
                   description="Webhook trigger with a token: the payload becomes the inputs of an async run.")
    def post(self, request: Request, workflow_id: str) -> Response:
        workflow = request_workflow(request, workflow_id)
        data = input_validate(WorkflowTriggerIn, request.data)
        run = run_start_from_request(request, workflow=workflow, inputs=data["payload"],
                                     mode=RunMode.ASYNC, origin=NATIVE_WEBHOOK)
        return Response({"runId": str(run.pk)}, status=202)
