"""Management API routes for tokens, credentials, parameters and members (mounted at ``/api/v1/``).

Also registers the ``objid`` path converter used by every management route with an object id:
hex digits and dashes (a UUID, or a malformed one that the selector answers with a problem+json
404 like a missing row), never a word, so ``/api/v1/workflows/run`` stays free for the run API.
"""

from django.urls import path, register_converter

from accounts import apis


class ObjectIdConverter:
    regex = "[0-9a-fA-F-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: object) -> str:
        return str(value)


register_converter(ObjectIdConverter, "objid")

urlpatterns = [
    path("tokens", apis.TokenListApi.as_view(), name="tokens"),
    path("tokens/<objid:token_id>", apis.TokenDetailApi.as_view(), name="token"),
    path("credentials", apis.CredentialListApi.as_view(), name="credentials"),
    path("credentials/<objid:credential_id>", apis.CredentialDetailApi.as_view(), name="credential"),
    path("credentials/<objid:credential_id>/test", apis.CredentialTestApi.as_view(), name="credential-test"),
    path("parameters", apis.ParametersApi.as_view(), name="parameters"),
    path("members", apis.MemberListApi.as_view(), name="members"),
    path("members/<objid:member_id>", apis.MemberDetailApi.as_view(), name="member"),
    path("team/webhook-secret", apis.WebhookSecretApi.as_view(), name="team-webhook-secret"),
    path("team/webhook-secret/rotate", apis.WebhookSecretRotateApi.as_view(), name="team-webhook-secret-rotate"),
    path("invitations", apis.InvitationListApi.as_view(), name="invitations"),
    path("invitations/<objid:invitation_id>", apis.InvitationDetailApi.as_view(), name="invitation"),
]
