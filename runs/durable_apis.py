"""Offline batch and dead-letter APIs (``/api/v1/``). Thin: services in ``runs.batches`` and
``runs.deadletters``; the team comes from the request, never from the URL."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_team
from accounts.serializers import StrictBooleanField, StrictCharField, input_validate, problem_responses
from config.errors import InvalidInput
from runs import batches, deadletters
from runs.apis import RunAccepted, request_token, request_user
from runs.lifecycle import dead_letter_replay
from runs.models import BatchJob, BatchStatus, DeadLetter
from runs.representations import iso
from workflows.selectors import workflow_get

JOB_ID = OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The jobId given at submit.")
DEAD_LETTER_ID = OpenApiParameter("dead_letter_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


# Offline batches

class BatchCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Items whose run has not started yet.")
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Items that ended failed, stopped or timeout.")

    class Meta:
        ref_name = "BatchCounts"


class BatchJobOutputSerializer(serializers.Serializer):
    jobId = serializers.CharField()
    workflowId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=BatchStatus.values)
    total = serializers.IntegerField()
    counts = BatchCountsSerializer()
    concurrency = serializers.IntegerField()
    resultUrl = serializers.URLField()
    callbackUrl = serializers.CharField(allow_blank=True)
    callback = serializers.DictField(help_text="{delivered, attempts, lastError, deliveredAt}")
    createdAt = serializers.DateTimeField()
    finishedAt = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "BatchJob"


def batch_job_dict(job: BatchJob) -> dict[str, Any]:
    return {
        "jobId": job.job_id, "workflowId": str(job.workflow_id), "status": job.status, "total": job.total,
        "counts": batches.batch_counts(job), "concurrency": job.concurrency, "resultUrl": batches.batch_result_url(job),
        "callbackUrl": job.callback_url,
        "callback": {"delivered": job.callback_delivered_at is not None, "attempts": job.callback_attempts,
                     "lastError": job.callback_error or None, "deliveredAt": iso(job.callback_delivered_at)},
        "createdAt": iso(job.created_at), "finishedAt": iso(job.finished_at),
    }


class BatchSubmitApi(APIView):
    required_scopes = "run"

    class InputSerializer(serializers.Serializer):
        jobId = StrictCharField(max_length=120)
        workflowId = serializers.UUIDField()
        items = serializers.ListField(child=serializers.JSONField(), allow_empty=False, max_length=batches.MAX_ITEMS,
                                      help_text="One inputs object per item; each is validated before anything runs.")
        callbackUrl = serializers.URLField(required=False, allow_blank=True, default="", max_length=2000)
        concurrency = serializers.IntegerField(required=False, min_value=1, max_value=1000,
                                               help_text="Runs of this job at once (default WEFT_BATCH_CONCURRENCY).")

        class Meta:
            ref_name = "BatchSubmitInput"

    @extend_schema(
        operation_id="offline_submit", tags=["offline"], request=InputSerializer,
        responses={202: OpenApiResponse(BatchJobOutputSerializer, description="{jobId, status: pending, total, ...}"),
                   **problem_responses(400, 409)},
        description="One async run per item. Every item is validated first: one bad item rejects the whole job "
                    "(400 with `errors` naming `/items/<i>/<field>`) and nothing is written. A repeated `jobId` is 409.",
    )
    def post(self, request: Request) -> Response:
        team = request_team(request)
        data = input_validate(self.InputSerializer, request.data)
        try:
            workflow = workflow_get(team=team, id=data["workflowId"])
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise InvalidInput("Unknown workflow.", errors=[{"path": "/workflowId", "message": "no such workflow"}]) from None
            raise
        job = batches.batch_submit(team=team, job_id=data["jobId"], workflow=workflow, items=data["items"],
                                   callback_url=data["callbackUrl"], token=request_token(request),
                                   concurrency=data.get("concurrency"))
        out = batch_job_dict(job)
        out["status"] = BatchStatus.PENDING  # as accepted; GET the job for its progress
        return Response(out, status=status.HTTP_202_ACCEPTED)


class BatchJobApi(APIView):
    required_scopes = "read"

    @extend_schema(operation_id="offline_job_get", tags=["offline"], parameters=[JOB_ID],
                   responses={200: BatchJobOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, job_id: str) -> Response:
        job = batches.batch_get(team=request_team(request), job_id=job_id)
        return Response(batch_job_dict(job))


class BatchResultApi(APIView):
    required_scopes = "read"

    @extend_schema(operation_id="offline_job_result", tags=["offline"], parameters=[JOB_ID],
                   responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=(
                       "One row per item: index, the item fields, status, runId, outputs (JSON), error, errorCode.")),
                       **problem_responses(404)})
    def get(self, request: Request, job_id: str) -> StreamingHttpResponse:
        job = batches.batch_get(team=request_team(request), job_id=job_id)
        response = StreamingHttpResponse(batches.batch_result_rows(job=job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{job.job_id}.csv"'
        return response


# Dead letters

class DeadLetterOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    runId = serializers.UUIDField(source="run_id")
    workflowId = serializers.UUIDField(source="workflow_id")
    reason = serializers.ChoiceField(choices=["retries_exhausted", "max_claims", "timeout"])
    attempts = serializers.IntegerField(help_text="Attempts made, counting workflow-level retries.")
    error = serializers.JSONField(source="detail", allow_null=True)
    runStatus = serializers.CharField(source="run.status")
    inputs = serializers.JSONField(source="run.inputs")
    createdAt = serializers.DateTimeField(source="created_at")
    replayedRunId = serializers.UUIDField(source="replayed_run_id", allow_null=True)
    replayedAt = serializers.DateTimeField(source="replayed_at", allow_null=True)

    class Meta:
        ref_name = "DeadLetter"


class DeadLetterListApi(APIView):
    required_scopes = "read"

    class FilterIn(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
        cursor = serializers.CharField(required=False)
        replayed = StrictBooleanField(required=False)
        workflowId = serializers.UUIDField(required=False)

        class Meta:
            ref_name = "DeadLetterFilter"

    @extend_schema(operation_id="dead_letters_list", tags=["runs"], parameters=[FilterIn],
                   responses={200: inline_serializer("DeadLetterPage", {
                       "data": DeadLetterOutputSerializer(many=True),
                       "nextCursor": serializers.CharField(allow_null=True)}), **problem_responses(400)},
                   description="Runs that need manual review, newest first: `{data: [DeadLetter], nextCursor}`.")
    def get(self, request: Request) -> Response:
        params = dict(request.query_params.items())
        if "replayed" in params:
            params["replayed"] = {"true": True, "false": False}.get(params["replayed"], params["replayed"])
        f = input_validate(self.FilterIn, params, refuse_unknown=False)
        rows, next_cursor = deadletters.dead_letter_list(
            team=request_team(request), limit=f["limit"], cursor=f.get("cursor"), replayed=f.get("replayed"),
            workflow_id=f.get("workflowId"),
        )
        return Response({"data": DeadLetterOutputSerializer(rows, many=True).data, "nextCursor": next_cursor})


class DeadLetterReplayApi(APIView):
    required_scopes = "run"

    @extend_schema(operation_id="dead_letters_replay", tags=["runs"], parameters=[DEAD_LETTER_ID], request=None,
                   responses={202: RunAccepted, **problem_responses(404, 409)},
                   description="A new async run with the same version and inputs, linked to the dead run; once per entry.")
    def post(self, request: Request, dead_letter_id: str) -> Response:
        team = request_team(request)
        entry: DeadLetter = deadletters.dead_letter_get(team=team, id=dead_letter_id)
        run = dead_letter_replay(team=team, dead_letter=entry, token=request_token(request),
                                 created_by=request_user(request))
        return Response({"runId": str(run.pk), "status": run.status}, status=status.HTTP_202_ACCEPTED)
