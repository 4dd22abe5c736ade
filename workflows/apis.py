"""Management API for apps, workflows and published versions (``/api/v1/``).

Thin views: parse with an input serializer, call a service or selector with the request's team,
answer with an output serializer. The object named in the URL is looked up first, so another
team's object is a 404 before any input is read. Reads need the ``read`` scope, writes ``manage``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_scopes, request_team, request_user
from accounts.serializers import StrictBooleanField, StrictCharField, input_validate, problem_responses
from workflows.engine.graph import inline_secrets_masked
from workflows.selectors import app_get, app_list, version_get, version_list, workflow_get, workflow_list
from workflows.services import (
    app_create,
    app_delete,
    app_update,
    version_activate,
    workflow_create,
    workflow_delete,
    workflow_publish,
    workflow_update,
    workflow_validate,
)

READ_MANAGE = {"GET": "read", "POST": "manage", "PATCH": "manage", "PUT": "manage", "DELETE": "manage"}


def path_id(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)


NUMBER = OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH, description="Version number (1, 2, ...)")


# Output serializers, shared by the views of one resource.

class AppOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    entryWorkflowId = serializers.UUIDField(source="entry_workflow_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        ref_name = "App"


class AppListOutputSerializer(serializers.Serializer):
    data = AppOutputSerializer(many=True)

    class Meta:
        ref_name = "AppList"


class WorkflowSummaryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    appId = serializers.UUIDField(source="app_id")
    name = serializers.CharField()
    description = serializers.CharField()
    activeVersion = serializers.IntegerField(source="active_version.number", allow_null=True,
                                             help_text="Number of the active published version; null before the first publish.")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        ref_name = "WorkflowSummary"


class WorkflowOutputSerializer(WorkflowSummaryOutputSerializer):
    graph = serializers.JSONField(help_text="The draft graph (WORKFLOW_FORMAT.md).")

    class Meta:
        ref_name = "Workflow"


class WorkflowListOutputSerializer(serializers.Serializer):
    data = WorkflowSummaryOutputSerializer(many=True)

    class Meta:
        ref_name = "WorkflowList"


class VersionSummaryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.IntegerField()
    workflowId = serializers.UUIDField(source="workflow_id")
    publishedAt = serializers.DateTimeField(source="published_at")
    publishedBy = serializers.CharField(source="published_by.email", allow_null=True,
                                        help_text="Email of the publishing user; null when published with a token.")

    class Meta:
        ref_name = "VersionSummary"


class VersionListItemOutputSerializer(VersionSummaryOutputSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        ref_name = "VersionListItem"

    def get_active(self, version: Any) -> bool:
        return version.workflow.active_version_id == version.id


class VersionOutputSerializer(VersionSummaryOutputSerializer):
    graph = serializers.JSONField(help_text="The frozen graph of this version.")

    class Meta:
        ref_name = "Version"


class VersionListOutputSerializer(serializers.Serializer):
    data = VersionListItemOutputSerializer(many=True)

    class Meta:
        ref_name = "VersionList"


class ValidationOutputSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.DictField(child=serializers.CharField()),
                                   help_text='[{"path": "/nodes/3/config/url", "message": "..."}]')

    class Meta:
        ref_name = "WorkflowValidation"


class EmptyInputSerializer(serializers.Serializer):
    """Actions without parameters still take (an empty) JSON object, so a malformed body is a 400."""

    class Meta:
        ref_name = "EmptyInput"


# Apps

class AppListApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120)
        description = StrictCharField(required=False, allow_blank=True, max_length=10000, default="")
        tags = serializers.ListField(child=StrictCharField(max_length=64), required=False, max_length=50, default=list)
        enabled = StrictBooleanField(required=False, default=True)

        class Meta:
            ref_name = "AppCreateInput"

    @extend_schema(operation_id="apps_list", tags=["apps"], responses={200: AppListOutputSerializer, **problem_responses()})
    def get(self, request: Request) -> Response:
        apps = app_list(team=request_team(request))
        return Response({"data": AppOutputSerializer(apps, many=True).data})

    @extend_schema(operation_id="apps_create", tags=["apps"], request=InputSerializer,
                   responses={201: AppOutputSerializer, **problem_responses(400, 409)})
    def post(self, request: Request) -> Response:
        team = request_team(request)
        data = input_validate(self.InputSerializer, request.data)
        app = app_create(team=team, created_by=request_user(request), **data)
        return Response(AppOutputSerializer(app).data, status=status.HTTP_201_CREATED)


class AppDetailApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120, required=False)
        description = StrictCharField(required=False, allow_blank=True, max_length=10000)
        tags = serializers.ListField(child=StrictCharField(max_length=64), required=False, max_length=50)
        enabled = StrictBooleanField(required=False)
        entryWorkflowId = serializers.UUIDField(required=False, help_text="One of the app's workflows.")

        class Meta:
            ref_name = "AppUpdateInput"

    @extend_schema(operation_id="apps_get", tags=["apps"], parameters=[path_id("app_id")],
                   responses={200: AppOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, app_id: str) -> Response:
        app = app_get(team=request_team(request), id=app_id)
        return Response(AppOutputSerializer(app).data)

    @extend_schema(operation_id="apps_update", tags=["apps"], parameters=[path_id("app_id")], request=InputSerializer,
                   responses={200: AppOutputSerializer, **problem_responses(400, 404, 409)})
    def patch(self, request: Request, app_id: str) -> Response:
        team = request_team(request)
        app = app_get(team=team, id=app_id)
        data = input_validate(self.InputSerializer, request.data, partial=True)
        if "entryWorkflowId" in data:
            data["entry_workflow_id"] = data.pop("entryWorkflowId")
        app = app_update(team=team, app=app, **data)
        return Response(AppOutputSerializer(app).data)

    @extend_schema(operation_id="apps_delete", tags=["apps"], parameters=[path_id("app_id")],
                   responses={204: None, **problem_responses(404, 409)})
    def delete(self, request: Request, app_id: str) -> Response:
        team = request_team(request)
        app_delete(team=team, app=app_get(team=team, id=app_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# Workflows

class WorkflowListApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120)
        description = StrictCharField(required=False, allow_blank=True, max_length=10000, default="")
        graph = serializers.JSONField(required=False, help_text="Draft graph; default: start -> end.")

        class Meta:
            ref_name = "WorkflowCreateInput"

    @extend_schema(operation_id="workflows_list", tags=["workflows"], parameters=[path_id("app_id")],
                   responses={200: WorkflowListOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, app_id: str) -> Response:
        team = request_team(request)
        workflows = workflow_list(team=team, app=app_get(team=team, id=app_id))
        return Response({"data": WorkflowSummaryOutputSerializer(workflows, many=True).data})

    @extend_schema(operation_id="workflows_create", tags=["workflows"], parameters=[path_id("app_id")],
                   request=InputSerializer, responses={201: WorkflowOutputSerializer, **problem_responses(400, 404, 409)})
    def post(self, request: Request, app_id: str) -> Response:
        team = request_team(request)
        app = app_get(team=team, id=app_id)
        data = input_validate(self.InputSerializer, request.data)
        workflow = workflow_create(team=team, app=app, created_by=request_user(request), **data)
        return Response(WorkflowOutputSerializer(workflow).data, status=status.HTTP_201_CREATED)


def graph_for_reader(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its graph's inline secrets masked unless the caller may edit workflows
    (``manage``): drafts and old versions may still hold some (docs/accounts.md)."""
    if "manage" in request_scopes(request):
        return data
    return {**data, "graph": inline_secrets_masked(data.get("graph"))}


class WorkflowDetailApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120, required=False)
        description = StrictCharField(required=False, allow_blank=True, max_length=10000)
        graph = serializers.JSONField(required=False, help_text="The draft; may be invalid, must have nodes and edges lists.")

        class Meta:
            ref_name = "WorkflowUpdateInput"

    @extend_schema(operation_id="workflows_get", tags=["workflows"], parameters=[path_id("workflow_id")],
                   responses={200: WorkflowOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, workflow_id: str) -> Response:
        workflow = workflow_get(team=request_team(request), id=workflow_id)
        return Response(graph_for_reader(request, WorkflowOutputSerializer(workflow).data))

    @extend_schema(operation_id="workflows_update", tags=["workflows"], parameters=[path_id("workflow_id")],
                   request=InputSerializer, responses={200: WorkflowOutputSerializer, **problem_responses(400, 404, 409)})
    def patch(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        data = input_validate(self.InputSerializer, request.data, partial=True)
        workflow = workflow_update(team=team, workflow=workflow, **data)
        return Response(WorkflowOutputSerializer(workflow).data)

    @extend_schema(operation_id="workflows_delete", tags=["workflows"], parameters=[path_id("workflow_id")],
                   responses={204: None, **problem_responses(404, 409)})
    def delete(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow_delete(team=team, workflow=workflow_get(team=team, id=workflow_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowValidateApi(APIView):
    required_scopes = {"POST": "manage"}

    class InputSerializer(serializers.Serializer):
        graph = serializers.JSONField(required=False, help_text="Validate this graph instead of the saved draft.")

        class Meta:
            ref_name = "WorkflowValidateInput"

    @extend_schema(operation_id="workflows_validate", tags=["workflows"], parameters=[path_id("workflow_id")],
                   request=InputSerializer, responses={200: ValidationOutputSerializer, **problem_responses(400, 404)})
    def post(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        data = input_validate(self.InputSerializer, request.data)
        errors = workflow_validate(team=team, workflow=workflow, graph=data.get("graph"))
        return Response({"valid": not errors, "errors": errors})


class WorkflowPublishApi(APIView):
    required_scopes = {"POST": "manage"}

    @extend_schema(operation_id="workflows_publish", tags=["versions"], parameters=[path_id("workflow_id")],
                   request=EmptyInputSerializer, responses={201: VersionOutputSerializer, **problem_responses(400, 404)})
    def post(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        input_validate(EmptyInputSerializer, request.data)
        version = workflow_publish(team=team, workflow=workflow, published_by=request_user(request))
        return Response(VersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


# Versions

class VersionListApi(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(operation_id="versions_list", tags=["versions"], parameters=[path_id("workflow_id")],
                   responses={200: VersionListOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, workflow_id: str) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        versions = list(version_list(team=team, workflow=workflow))
        for version in versions:
            version.workflow = workflow  # for "active", without a query per row
        return Response({"data": VersionListItemOutputSerializer(versions, many=True).data})


class VersionDetailApi(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(operation_id="versions_get", tags=["versions"], parameters=[path_id("workflow_id"), NUMBER],
                   responses={200: VersionOutputSerializer, **problem_responses(404)})
    def get(self, request: Request, workflow_id: str, number: int) -> Response:
        team = request_team(request)
        version = version_get(team=team, workflow=workflow_get(team=team, id=workflow_id), number=number)
        return Response(graph_for_reader(request, VersionOutputSerializer(version).data))


class VersionActivateApi(APIView):
    required_scopes = {"POST": "manage"}

    @extend_schema(operation_id="versions_activate", tags=["versions"], parameters=[path_id("workflow_id"), NUMBER],
                   request=EmptyInputSerializer, responses={200: VersionOutputSerializer, **problem_responses(400, 404)})
    def post(self, request: Request, workflow_id: str, number: int) -> Response:
        team = request_team(request)
        workflow = workflow_get(team=team, id=workflow_id)
        input_validate(EmptyInputSerializer, request.data)
        version = version_activate(team=team, workflow=workflow, number=number)
        return Response(VersionOutputSerializer(version).data)
