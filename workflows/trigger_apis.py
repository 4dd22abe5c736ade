"""Trigger API: manage a workflow's schedule and webhook triggers (``/api/v1/``), and the public
webhook receiver ``POST /hooks/{trigger_key}`` (no token: the unguessable key and, when the
trigger has a secret, the Standard Webhooks signature are the credential).

Thin views: the object in the URL is looked up first with the request's team (another team's
trigger is a 404), then input is validated and a service in ``workflows.triggers`` is called.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_team
from accounts.serializers import StrictBooleanField, StrictCharField, input_validate, problem_responses
from config.errors import PayloadTooLarge
from workflows import queue_triggers, triggers
from workflows.apis import READ_MANAGE, path_id
from workflows.models import Trigger, TriggerKind
from workflows.selectors import workflow_get


class ConsumerStatusSerializer(serializers.Serializer):
    connected = serializers.BooleanField(help_text="A live consumer process is connected to the broker.")
    consumers = serializers.IntegerField(help_text="Consumer processes that reported recently.")
    lag = serializers.IntegerField(allow_null=True, help_text="Messages waiting (queue depth; stream lag + pending).")
    lastError = serializers.CharField(source="last_error", allow_null=True)
    lastErrorAt = serializers.DateTimeField(source="last_error_at", allow_null=True)
    lastMessageAt = serializers.DateTimeField(source="last_message_at", allow_null=True)
    messages = serializers.IntegerField(help_text="Messages handled (all processes).")
    deadLetters = serializers.IntegerField(source="dead_letters")

    class Meta:
        ref_name = "QueueConsumerStatus"


class TriggerOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    workflowId = serializers.UUIDField(source="workflow_id")
    kind = serializers.ChoiceField(choices=TriggerKind.choices)
    name = serializers.CharField()
    cron = serializers.CharField(help_text="5-field cron expression (schedule triggers).")
    timeZone = serializers.CharField(source="time_zone", help_text="IANA zone the cron expression is read in.")
    inputs = serializers.JSONField(help_text="Inputs of the runs a schedule starts.")
    enabled = serializers.BooleanField()
    url = serializers.SerializerMethodField(help_text="Public URL of a webhook trigger; null for schedules.")
    signed = serializers.SerializerMethodField(help_text="Whether /hooks requests must be signed (Standard Webhooks).")
    lastFiredAt = serializers.DateTimeField(source="last_fired_at", allow_null=True)
    nextFireAt = serializers.DateTimeField(source="next_fire_at", allow_null=True)
    credential = serializers.CharField(help_text="Queue triggers: the team's broker credential (by name).")
    source = serializers.CharField(help_text="Queue triggers: the RabbitMQ queue or the Redis stream.")
    group = serializers.CharField(help_text="Queue triggers on Redis Streams: the consumer group (default weft).")
    consumer = serializers.SerializerMethodField(help_text="Queue triggers: what the consumer processes report "
                                                           "(connected, lag, last error); null for other kinds.")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        ref_name = "Trigger"

    @extend_schema_field(ConsumerStatusSerializer(allow_null=True))
    def get_consumer(self, trigger: Trigger) -> dict[str, Any] | None:
        if trigger.kind != TriggerKind.QUEUE:
            return None
        return ConsumerStatusSerializer(queue_triggers.consumer_status(trigger=trigger)).data

    def get_url(self, trigger: Trigger) -> str | None:
        return f"{settings.WEFT_PUBLIC_URL}/hooks/{trigger.key}" if trigger.kind == TriggerKind.WEBHOOK else None

    def get_signed(self, trigger: Trigger) -> bool:
        return bool(trigger.signing_secret)


class TriggerSecretOutputSerializer(TriggerOutputSerializer):
    signingSecret = serializers.CharField(source="signing_secret", allow_null=True,
                                          help_text="Shown only when created or rotated: the whsec_ secret to sign with.")

    class Meta:
        ref_name = "TriggerWithSecret"


class TriggerListOutputSerializer(serializers.Serializer):
    data = TriggerOutputSerializer(many=True)

    class Meta:
        ref_name = "TriggerList"


def _service_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    renames = {"timeZone": "time_zone", "rotateSecret": "rotate_secret"}
    return {renames.get(k, k): v for k, v in data.items()}


class TriggerListApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=TriggerKind.choices)
        name = StrictCharField(required=False, allow_blank=True, max_length=120, default="")
        cron = StrictCharField(required=False, allow_blank=True, max_length=120, default="")
        timeZone = StrictCharField(required=False, max_length=64, help_text="Default: the team's time zone.")
        inputs = serializers.DictField(required=False, default=dict)
        enabled = StrictBooleanField(required=False, default=True)
        signed = StrictBooleanField(required=False, default=True,
                                    help_text="Webhook triggers: require Standard Webhooks signatures (default true).")
        credential = StrictCharField(required=False, allow_blank=True, max_length=120, default="",
                                     help_text="Queue triggers: a broker credential of the team (by name).")
        source = StrictCharField(required=False, allow_blank=True, max_length=255, default="",
                                 help_text="Queue triggers: the queue (RabbitMQ) or stream (Redis) to consume.")
        group = StrictCharField(required=False, allow_blank=True, max_length=120, default="",
                                help_text="Queue triggers on Redis Streams: the consumer group (default weft).")

        class Meta:
            ref_name = "TriggerCreateInput"

    @extend_schema(operation_id="triggers_list", tags=["triggers"], parameters=[path_id("workflow_id")],
                   responses={200: TriggerListOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        rows = triggers.trigger_list(team=team, workflow=workflow_get(team=team, id=workflow_id))
        return Response({"data": TriggerOutputSerializer(rows, many=True).data})

    @extend_schema(operation_id="triggers_create", tags=["triggers"], parameters=[path_id("workflow_id")],
                   request=InputSerializer, responses={201: TriggerSecretOutputSerializer, **problem_responses(400, 404)},
                   description="A `schedule` (cron + time zone), a `webhook` (public URL, signed by default; the "
                               "signing secret is shown once, here) or a `queue` trigger (a broker credential and "
                               "a queue or stream: each message, a JSON object, starts a run with it as inputs).")
    def post(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        data = input_validate(self.InputSerializer, request.data)
        trigger = triggers.trigger_create(team=team, workflow=workflow, **_service_kwargs(data))
        return Response(TriggerSecretOutputSerializer(trigger).data, status=status.HTTP_201_CREATED)


class TriggerDetailApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(required=False, allow_blank=True, max_length=120)
        cron = StrictCharField(required=False, allow_blank=True, max_length=120)
        timeZone = StrictCharField(required=False, max_length=64)
        inputs = serializers.DictField(required=False)
        enabled = StrictBooleanField(required=False)
        signed = StrictBooleanField(required=False)
        rotateSecret = StrictBooleanField(required=False, default=False)
        credential = StrictCharField(required=False, allow_blank=True, max_length=120)
        source = StrictCharField(required=False, allow_blank=True, max_length=255)
        group = StrictCharField(required=False, allow_blank=True, max_length=120)

        class Meta:
            ref_name = "TriggerUpdateInput"

    @extend_schema(operation_id="triggers_get", tags=["triggers"], parameters=[path_id("trigger_id")],
                   responses={200: TriggerOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, trigger_id: str) -> Response:
        trigger = triggers.trigger_get(team=request_team(request), id=trigger_id)
        return Response(TriggerOutputSerializer(trigger).data)

    @extend_schema(operation_id="triggers_update", tags=["triggers"], parameters=[path_id("trigger_id")],
                   request=InputSerializer, responses={200: TriggerSecretOutputSerializer, **problem_responses(400, 404)},
                   description="The signing secret is in the answer only when it changed (`signed` turned on, "
                               "`rotateSecret`).")
    def patch(self, request: Request, trigger_id: str) -> Response:
        team = request_team(request)
        trigger = triggers.trigger_get(team=team, id=trigger_id)
        before = trigger.signing_secret
        data = input_validate(self.InputSerializer, request.data, partial=True)
        trigger = triggers.trigger_update(team=team, trigger=trigger, **_service_kwargs(data))
        out = TriggerSecretOutputSerializer(trigger).data
        if trigger.signing_secret == before:
            out["signingSecret"] = None
        return Response(out)

    @extend_schema(operation_id="triggers_delete", tags=["triggers"], parameters=[path_id("trigger_id")],
                   responses={204: None, **problem_responses(404)})
    def delete(self, request: Request, trigger_id: str) -> Response:
        team = request_team(request)
        triggers.trigger_delete(team=team, trigger=triggers.trigger_get(team=team, id=trigger_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


HookAccepted = inline_serializer("HookAccepted", {
    "runId": serializers.UUIDField(),
    "duplicate": serializers.BooleanField(help_text="True when this webhook-id was seen before: no new run."),
})


class HookApi(APIView):
    """Public webhook trigger; the body is read raw so that the signature covers the exact bytes."""

    public = True
    authentication_classes: list = []
    parser_classes: list = []

    @extend_schema(
        operation_id="hooks_receive", tags=["triggers"], auth=[],
        parameters=[
            OpenApiParameter("trigger_key", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("webhook-id", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("webhook-timestamp", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("webhook-signature", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
        ],
        request={"application/json": dict},
        responses={202: HookAccepted, **problem_responses(400, 401, 404, 413)},
        description="Start the trigger's workflow asynchronously with the JSON body as inputs. Signed triggers "
                    "need `webhook-id`, `webhook-timestamp` (within 5 minutes) and `webhook-signature` (Standard "
                    "Webhooks); a replayed `webhook-id` answers with the first run and starts nothing.",
    )
    def post(self, request: Request, trigger_key: str) -> Response:
        limit = settings.WEFT_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        try:
            body = request.body
        except (RequestDataTooBig, RawPostDataException):
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.") from None
        if len(body) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        run_id, created = triggers.hook_receive(key=trigger_key, body=body, headers=dict(request.headers))
        return Response({"runId": str(run_id), "duplicate": not created}, status=status.HTTP_202_ACCEPTED)


class TriggerDeadLetterSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    messageId = serializers.CharField(source="message_id")
    reason = serializers.CharField(help_text="not_json, not_object, too_large, invalid_inputs, workflow_unavailable")
    detail = serializers.JSONField(allow_null=True)
    body = serializers.CharField(help_text="The message as received (truncated).")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        ref_name = "TriggerDeadLetter"


class TriggerDeadLetterListSerializer(serializers.Serializer):
    data = TriggerDeadLetterSerializer(many=True)

    class Meta:
        ref_name = "TriggerDeadLetterList"


class TriggerDeadLetterListApi(APIView):
    required_scopes = READ_MANAGE

    @extend_schema(operation_id="triggers_dead_letters", tags=["triggers"], parameters=[path_id("trigger_id")],
                   responses={200: TriggerDeadLetterListSerializer, **problem_responses(404)},
                   description="Messages of a queue trigger that started no run (not JSON, not an object, too "
                               "large, invalid inputs, no published version), newest first (at most 100).")
    def get(self, request: Request, trigger_id: str) -> Response:
        team = request_team(request)
        trigger = triggers.trigger_get(team=team, id=trigger_id)
        rows = queue_triggers.dead_letter_list(team=team, trigger=trigger)[:100]
        return Response({"data": TriggerDeadLetterSerializer(rows, many=True).data})
