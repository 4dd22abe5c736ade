"""Management API for the team's tokens, credentials, global parameters and members (``/api/v1/``).

Thin views: parse with an input serializer, call a service or selector with the request's team,
answer with an output serializer. Reads need ``read``, writes ``manage``; member and token
administration needs ``admin`` (owner/admin role, or a token with ``admin``; ``manage`` does not
administer people or tokens). A new token never carries more than its creator. Secrets are
write-only: a token's secret is returned once by its creation, a credential's never.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.connections import credential_test
from accounts.invitations import invitation_create, invitation_revoke
from accounts.models import ALL_SCOPES, ApiToken, CredentialKind, Role
from accounts.permissions import request_grantor, request_membership, request_team
from accounts.selectors import (
    credential_fields,
    credential_get,
    credential_list,
    invitation_get,
    invitation_list,
    member_get,
    member_list,
    parameters_get,
    token_get,
    token_list,
)
from accounts.serializers import StrictCharField, input_validate, problem_responses
from accounts.services import (
    credential_create,
    membership_remove,
    membership_update,
    parameters_replace,
    team_webhook_secret_rotate,
    token_create,
    token_revoke,
)
from config.errors import InvalidInput, NotFound
from runs.signing import team_webhook_secret
from workflows.selectors import app_get
from workflows.services import credential_change, credential_remove

READ_MANAGE = {"GET": "read", "POST": "manage", "PATCH": "manage", "PUT": "manage", "DELETE": "manage"}
READ_ADMIN = {"GET": "read", "POST": "admin", "PATCH": "admin", "DELETE": "admin"}


def path_id(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)


# Tokens

class TokenOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The public part of the token (weft_<prefix>_...).")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ALL_SCOPES))
    appId = serializers.UUIDField(source="app_id", allow_null=True)
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", allow_null=True)
    lastUsedAt = serializers.DateTimeField(source="last_used_at", allow_null=True)
    createdBy = serializers.EmailField(source="created_by.email", allow_null=True, default=None,
                                       help_text="Email of the member who created it (null: command line or demo).")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        ref_name = "Token"


class TokenCreatedOutputSerializer(TokenOutputSerializer):
    token = serializers.CharField(help_text="The secret, shown this once and never again.")

    class Meta:
        ref_name = "TokenCreated"


class TokenListOutputSerializer(serializers.Serializer):
    data = TokenOutputSerializer(many=True)

    class Meta:
        ref_name = "TokenList"


class TokenListApi(APIView):
    required_scopes = READ_ADMIN

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120)
        scopes = serializers.ListField(child=serializers.ChoiceField(choices=ALL_SCOPES), allow_empty=False)
        appId = serializers.UUIDField(required=False, allow_null=True, help_text="Bind the token to this app.")
        expiresAt = serializers.DateTimeField(required=False, allow_null=True)

        class Meta:
            ref_name = "TokenCreateInput"

    @extend_schema(operation_id="tokens_list", tags=["tokens"],
                   responses={200: TokenListOutputSerializer, **problem_responses()})
    def get(self, request: Request) -> Response:
        tokens = token_list(team=request_team(request))
        return Response({"data": TokenOutputSerializer(tokens, many=True).data})

    @extend_schema(operation_id="tokens_create", tags=["tokens"], request=InputSerializer,
                   responses={201: TokenCreatedOutputSerializer, **problem_responses(400)},
                   description="Scopes above the creator's own (a member's role, or the calling token's scopes) "
                               "are a 403 naming /scopes; `admin` is granted only by owners and admins.")
    def post(self, request: Request) -> Response:
        team = request_team(request)
        data = input_validate(self.InputSerializer, request.data)
        app = None
        if data.get("appId") is not None:
            try:
                app = app_get(team=team, id=data["appId"])
            except NotFound:
                raise InvalidInput("Unknown app.", errors=[{"path": "/appId", "message": "no such app"}]) from None
        created_by, grantor_scopes = request_grantor(request)
        token, secret = token_create(
            team=team, name=data["name"], scopes=data["scopes"], app=app, expires_at=data.get("expiresAt"),
            created_by=created_by, grantor_scopes=grantor_scopes,
        )
        token.token = secret
        return Response(TokenCreatedOutputSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    required_scopes = READ_ADMIN

    @extend_schema(operation_id="tokens_revoke", tags=["tokens"], parameters=[path_id("token_id")],
                   responses={204: None, **problem_responses(404)})
    def delete(self, request: Request, token_id: str) -> Response:
        team = request_team(request)
        token_revoke(team=team, token=token_get(team=team, id=token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# Credentials

class CredentialOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=CredentialKind.choices)
    # The method is not "get_fields": that name is DRF's own hook on every serializer.
    fields = serializers.SerializerMethodField(
        method_name="get_secret_fields", help_text="Names of the stored secret fields (never their values)."
    )
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        ref_name = "Credential"

    def get_secret_fields(self, credential: Any) -> list[str]:
        return credential_fields(credential)


class CredentialListOutputSerializer(serializers.Serializer):
    data = CredentialOutputSerializer(many=True)

    class Meta:
        ref_name = "CredentialList"


SECRETS_HELP = ("api_key: {key}; bearer: {token}; basic: {username, password}; database: {url} (postgresql://, "
                "mysql://, sqlite:///); broker: {url} (amqp://, amqps://, redis://, rediss://). Write-only.")


class CredentialListApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120)
        kind = serializers.ChoiceField(choices=CredentialKind.choices)
        secrets = serializers.DictField(child=serializers.JSONField(), help_text=SECRETS_HELP)

        class Meta:
            ref_name = "CredentialCreateInput"

    @extend_schema(operation_id="credentials_list", tags=["credentials"],
                   responses={200: CredentialListOutputSerializer, **problem_responses()})
    def get(self, request: Request) -> Response:
        credentials = credential_list(team=request_team(request))
        return Response({"data": CredentialOutputSerializer(credentials, many=True).data})

    @extend_schema(operation_id="credentials_create", tags=["credentials"], request=InputSerializer,
                   responses={201: CredentialOutputSerializer, **problem_responses(400, 409)})
    def post(self, request: Request) -> Response:
        team = request_team(request)
        data = input_validate(self.InputSerializer, request.data)
        credential = credential_create(team=team, **data)
        return Response(CredentialOutputSerializer(credential).data, status=status.HTTP_201_CREATED)


class CredentialDetailApi(APIView):
    required_scopes = READ_MANAGE

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(max_length=120, required=False)
        kind = serializers.ChoiceField(choices=CredentialKind.choices, required=False)
        secrets = serializers.DictField(child=serializers.JSONField(), required=False,
                                        help_text=SECRETS_HELP + " Replaces every stored field.")

        class Meta:
            ref_name = "CredentialUpdateInput"

    @extend_schema(operation_id="credentials_update", tags=["credentials"], parameters=[path_id("credential_id")],
                   request=InputSerializer, responses={200: CredentialOutputSerializer, **problem_responses(400, 404, 409)})
    def patch(self, request: Request, credential_id: str) -> Response:
        team = request_team(request)
        credential = credential_get(team=team, id=credential_id)
        data = input_validate(self.InputSerializer, request.data, partial=True)
        credential = credential_change(team=team, credential=credential, **data)
        return Response(CredentialOutputSerializer(credential).data)

    @extend_schema(operation_id="credentials_delete", tags=["credentials"], parameters=[path_id("credential_id")],
                   responses={204: None, **problem_responses(404, 409)})
    def delete(self, request: Request, credential_id: str) -> Response:
        team = request_team(request)
        credential_remove(team=team, credential=credential_get(team=team, id=credential_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialTestOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = inline_serializer("CredentialTestError", {
        "code": serializers.CharField(help_text="address_refused, connection_refused, connection_error, auth_failed, "
                                                "unknown_database, access_denied, invalid_url, timeout"),
        "message": serializers.CharField(help_text="What failed; never the URL or its password."),
    }, allow_null=True)

    class Meta:
        ref_name = "CredentialTest"


class CredentialTestApi(APIView):
    required_scopes = READ_MANAGE

    @extend_schema(operation_id="credentials_test", tags=["credentials"], parameters=[path_id("credential_id")],
                   request=None, responses={200: CredentialTestOutputSerializer, **problem_responses(400, 404)},
                   description="Connect once with a `database` or `broker` credential (under the same address "
                               "policy as the nodes) and report whether it worked; other kinds are a 400.")
    def post(self, request: Request, credential_id: str) -> Response:
        team = request_team(request)
        result = credential_test(team=team, credential=credential_get(team=team, id=credential_id))
        return Response(result)


# Global parameters

PARAMETERS_HELP = 'The team\'s global parameters, one object name -> value, e.g. {"region": "eu"}.'


class ParametersApi(APIView):
    required_scopes = READ_MANAGE

    @extend_schema(operation_id="parameters_get", tags=["parameters"],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses()}, description=PARAMETERS_HELP)
    def get(self, request: Request) -> Response:
        return Response(parameters_get(team=request_team(request)))

    @extend_schema(operation_id="parameters_replace", tags=["parameters"], request=OpenApiTypes.OBJECT,
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400)},
                   description=PARAMETERS_HELP + " PUT replaces them all; values are strings, numbers or booleans.")
    def put(self, request: Request) -> Response:
        team = request_team(request)
        parameters_replace(team=team, values=request.data)
        return Response(parameters_get(team=team))


# Members

class MemberOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    userId = serializers.IntegerField(source="user_id")
    email = serializers.CharField(source="user.email")
    role = serializers.ChoiceField(choices=Role.choices)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        ref_name = "Member"


class MemberListOutputSerializer(serializers.Serializer):
    data = MemberOutputSerializer(many=True)

    class Meta:
        ref_name = "MemberList"


class InvitationOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    status = serializers.SerializerMethodField()
    invitedBy = serializers.EmailField(source="invited_by.email", allow_null=True, default=None)
    createdAt = serializers.DateTimeField(source="created_at")
    expiresAt = serializers.DateTimeField(source="expires_at")

    class Meta:
        ref_name = "Invitation"

    def get_status(self, invitation: Any) -> str:
        return "pending"


class InvitationListOutputSerializer(serializers.Serializer):
    data = InvitationOutputSerializer(many=True)

    class Meta:
        ref_name = "InvitationList"


class MemberListApi(APIView):
    required_scopes = READ_ADMIN

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=Role.choices)

        class Meta:
            ref_name = "MemberCreateInput"

    @extend_schema(operation_id="members_list", tags=["members"],
                   responses={200: MemberListOutputSerializer, **problem_responses()})
    def get(self, request: Request) -> Response:
        members = member_list(team=request_team(request))
        return Response({"data": MemberOutputSerializer(members, many=True).data})

    @extend_schema(operation_id="members_add", tags=["members"], request=InputSerializer,
                   responses={202: InvitationOutputSerializer, **problem_responses(400, 409)},
                   description="Invites the address: a single-use link is mailed, and the membership exists "
                               "once a signed-in user with that verified address accepts it. 409 when it is "
                               "already a member or has a pending invitation.")
    def post(self, request: Request) -> Response:
        team = request_team(request)
        data = input_validate(self.InputSerializer, request.data)
        created_by, _ = request_grantor(request)
        invitation = invitation_create(team=team, invited_by=created_by, actor_role=actor_role(request), **data)
        return Response(InvitationOutputSerializer(invitation).data, status=status.HTTP_202_ACCEPTED)


class InvitationListApi(APIView):
    required_scopes = READ_ADMIN

    @extend_schema(operation_id="invitations_list", tags=["members"],
                   responses={200: InvitationListOutputSerializer, **problem_responses()})
    def get(self, request: Request) -> Response:
        rows = invitation_list(team=request_team(request))
        return Response({"data": InvitationOutputSerializer(rows, many=True).data})


class InvitationDetailApi(APIView):
    required_scopes = READ_ADMIN

    @extend_schema(operation_id="invitations_revoke", tags=["members"], parameters=[path_id("invitation_id")],
                   responses={204: None, **problem_responses(404)})
    def delete(self, request: Request, invitation_id: str) -> Response:
        team = request_team(request)
        invitation_revoke(team=team, invitation=invitation_get(team=team, id=invitation_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# The team's webhook signing secret

class WebhookSecretOutputSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Standard Webhooks secret (whsec_ + base64): verify the "
                                             "webhook-signature of batch completion callbacks with it.")

    class Meta:
        ref_name = "WebhookSecret"


class WebhookSecretApi(APIView):
    """Owners and admins only (``admin``): whoever holds the secret can forge the team's callbacks."""

    required_scopes = "admin"

    @extend_schema(operation_id="team_webhook_secret_get", tags=["members"],
                   responses={200: WebhookSecretOutputSerializer, **problem_responses()},
                   description="The secret that signs the team's outgoing webhooks (batch completion callbacks, "
                               "Standard Webhooks headers webhook-id, webhook-timestamp, webhook-signature).")
    def get(self, request: Request) -> Response:
        return Response({"secret": team_webhook_secret(request_team(request))})


class WebhookSecretRotateApi(APIView):
    required_scopes = "admin"

    @extend_schema(operation_id="team_webhook_secret_rotate", tags=["members"], request=None,
                   responses={200: WebhookSecretOutputSerializer, **problem_responses()},
                   description="Replace the signing secret: every delivery from now on (retries included) is "
                               "signed with the new one, the old one signs nothing more.")
    def post(self, request: Request) -> Response:
        return Response({"secret": team_webhook_secret_rotate(team=request_team(request))})


def actor_role(request: Request) -> str | None:
    """The signed-in member's role; None for a team token (which may not touch owners)."""
    membership = request_membership(request)
    return membership.role if membership is not None and not isinstance(request.auth, ApiToken) else None


class MemberDetailApi(APIView):
    required_scopes = READ_ADMIN

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

        class Meta:
            ref_name = "MemberUpdateInput"

    @extend_schema(operation_id="members_update", tags=["members"], parameters=[path_id("member_id")],
                   request=InputSerializer, responses={200: MemberOutputSerializer, **problem_responses(400, 404, 409)})
    def patch(self, request: Request, member_id: str) -> Response:
        team = request_team(request)
        membership = member_get(team=team, id=member_id)
        data = input_validate(self.InputSerializer, request.data)
        membership = membership_update(team=team, membership=membership, role=data["role"], actor_role=actor_role(request))
        return Response(MemberOutputSerializer(membership).data)

    @extend_schema(operation_id="members_remove", tags=["members"], parameters=[path_id("member_id")],
                   responses={204: None, **problem_responses(404, 409)})
    def delete(self, request: Request, member_id: str) -> Response:
        team = request_team(request)
        membership_remove(team=team, membership=member_get(team=team, id=member_id), actor_role=actor_role(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
