"""The team's webhook signing secret: shown to owners and admins only (API and the tokens page),
rotatable, and what signs batch completion callbacks (verified by a real receiver with a Standard
Webhooks library); a batch ``callbackUrl`` the outbound policy refuses is a 400 at submit."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.models import Role, Team
from runs.batches import batch_callback_deliver
from runs.models import BatchJob, BatchStatus, Run
from tests.bad_input import assert_bad_input
from tests.conftest import client_with_session, db_snapshot, member_make, page_client, published_make
from tests.durable.helpers import echo_graph
from tests.engine.http_servers import Reply, scripted_server

pytestmark = pytest.mark.django_db

URL = "/api/v1/team/webhook-secret"


def test_only_admins_see_and_rotate_the_secret(team_a: Team, team_b: Team, token_client: Any) -> None:
    admin = token_client(team_a, ["admin", "read"])
    shown = admin.get(URL)
    assert shown.status_code == 200, shown.content
    secret = shown.json()["secret"]
    assert secret.startswith("whsec_") and secret == Team.objects.get(pk=team_a.pk).webhook_secret
    for scopes in (["read"], ["manage"], ["run"], ["read", "manage", "run"]):
        client = token_client(team_a, scopes)
        before = db_snapshot()
        assert client.get(URL).status_code == 403
        assert client.post(f"{URL}/rotate").status_code == 403
        assert db_snapshot() == before
    editor = client_with_session(member_make(team_a, Role.EDITOR))
    assert editor.get(URL).status_code == 403
    assert token_client(team_b, ["admin"]).get(URL).json()["secret"] == Team.objects.get(pk=team_b.pk).webhook_secret
    assert Team.objects.get(pk=team_b.pk).webhook_secret != secret

    rotated = admin.post(f"{URL}/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != secret and new.startswith("whsec_")
    assert admin.get(URL).json()["secret"] == new == Team.objects.get(pk=team_a.pk).webhook_secret
    owner = client_with_session(team_a.memberships.get(role=Role.OWNER).user)
    assert owner.get(URL).json()["secret"] == new


def _callback_due(job: BatchJob) -> None:
    """What the end of the job's last item does: the job final, its callback due now."""
    BatchJob.objects.filter(pk=job.pk).update(status=BatchStatus.SUCCEEDED, callback_next_at=timezone.now(),
                                              callback_delivered_at=None)


def test_batch_callbacks_are_signed_with_the_shown_secret_and_its_rotation(client_a: APIClient, team_a: Team,
                                                                           token_client: Any) -> None:
    admin = token_client(team_a, ["admin"])
    workflow = published_make(team_a, echo_graph())
    with scripted_server() as receiver, override_settings(WEFT_HTTP_ALLOW_NETWORKS=["127.0.0.1/32"]):
        receiver.route("/done", Reply(200, {}))
        response = client_a.post("/api/v1/offline/submit", {
            "jobId": "signed_1", "workflowId": str(workflow.pk), "items": [{"n": 1}],
            "callbackUrl": receiver.url("/done")}, format="json")
        assert response.status_code == 202, response.content
        job = BatchJob.objects.get(job_id="signed_1")
        first_secret = admin.get(URL).json()["secret"]
        _callback_due(job)
        assert batch_callback_deliver(job_pk=job.pk) == "delivered"

        second_secret = admin.post(f"{URL}/rotate").json()["secret"]
        _callback_due(job)
        assert batch_callback_deliver(job_pk=job.pk) == "delivered"
    first, second = [r for r in receiver.requests if r.path == "/done"]
    expected = {"jobId": "signed_1", "status": "succeeded",
                "resultUrl": "http://127.0.0.1:8000/api/v1/offline/jobs/signed_1/result.csv"}
    assert Webhook(first_secret).verify(first.body, first.headers) == expected
    assert Webhook(second_secret).verify(second.body, second.headers) == expected
    with pytest.raises(WebhookVerificationError):
        Webhook(first_secret).verify(second.body, second.headers)  # the old secret signs nothing more


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/done", "http://localhost:9/done", "http://10.1.2.3/hook", "http://169.254.169.254/latest",
    "http://[::1]/hook", "http://[fec0::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook",
    "http://192.168.1.1:8080/hook", "https://example.com:99999/hook", "http:///nohost",
])
def test_a_refused_callback_url_is_a_400_at_submit(client_a: APIClient, team_a: Team, url: str) -> None:
    workflow = published_make(team_a, echo_graph())
    problem = assert_bad_input(client_a, "POST", "/api/v1/offline/submit", {
        "jobId": "refused_1", "workflowId": str(workflow.pk), "items": [{"n": 1}], "callbackUrl": url}, {"/callbackUrl"})
    assert not BatchJob.objects.exists() and not Run.objects.exists()
    assert problem["errors"][0]["path"] == "/callbackUrl"


def test_allowed_and_public_callback_urls_are_accepted(client_a: APIClient, team_a: Team) -> None:
    workflow = published_make(team_a, echo_graph())
    body = {"workflowId": str(workflow.pk), "items": [{"n": 1}]}
    assert client_a.post("/api/v1/offline/submit", {**body, "jobId": "public_1",
                                                    "callbackUrl": "http://93.184.215.14/hook"},
                         format="json").status_code == 202
    with override_settings(WEFT_HTTP_ALLOW_NETWORKS=["127.0.0.1/32"]):
        assert client_a.post("/api/v1/offline/submit", {**body, "jobId": "allowed_1",
                                                        "callbackUrl": "http://127.0.0.1:9/done"},
                             format="json").status_code == 202


def _page_client(user: Any, team: Team) -> Any:
    return page_client(user, team)


def test_the_tokens_page_shows_admins_the_secret_and_rotates_it(team_a: Team, owner_a: Any, team_b: Team) -> None:
    secret = Team.objects.get(pk=team_a.pk).webhook_secret
    owner = _page_client(owner_a, team_a)
    page = owner.get("/settings/tokens/")
    assert page.status_code == 200 and secret in page.content.decode()
    for role in (Role.VIEWER, Role.EDITOR):
        member = _page_client(member_make(team_a, role), team_a)
        assert secret not in member.get("/settings/tokens/").content.decode()
        assert member.post("/settings/webhook-secret/rotate/").status_code == 403
        assert Team.objects.get(pk=team_a.pk).webhook_secret == secret
    assert owner.get("/settings/webhook-secret/rotate/").status_code == 405
    admin = _page_client(member_make(team_a, Role.ADMIN), team_a)
    assert admin.post("/settings/webhook-secret/rotate/").status_code == 302
    new = Team.objects.get(pk=team_a.pk).webhook_secret
    assert new != secret and new in owner.get("/settings/tokens/").content.decode()
    assert Team.objects.get(pk=team_b.pk).webhook_secret != new
