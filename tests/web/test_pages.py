"""Pages through Django's test client: sign up, tenancy (another team's object is a 404), role
rules (a viewer sees no edit buttons and every POST is a 403), the editor's JSON endpoints."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.models import ApiToken, Credential, GlobalParameter, Membership, Team
from accounts.permissions import SESSION_TEAM_KEY
from runs.models import Run
from runs.tasks import run_task
from tests.web.factories import delay_graph, published_workflow, three_node_graph
from workflows.models import App, Workflow

pytestmark = pytest.mark.django_db


def post_json(client: Client, url: str, body: Any) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_sign_up_creates_the_team_once_the_address_is_confirmed(mailoutbox: list[Any]) -> None:
    client = Client()
    response = client.post("/signup/", {"email": "New@Example.com", "password": "long-enough-pw", "team_name": "Night Shift"})
    assert response.status_code == 200 and b'id="signup-sent"' in response.content
    assert not Team.objects.filter(slug="night-shift").exists()
    link = "/" + mailoutbox[0].body.split("://", 1)[1].split("/", 1)[1].split()[0]
    assert client.post(link).status_code == 302
    user = User.objects.get(username="new@example.com")
    team = Team.objects.get(slug="night-shift")
    assert Membership.objects.get(team=team, user=user).role == "owner"
    assert client.session[SESSION_TEAM_KEY] == str(team.pk)
    assert b"Night Shift" in client.get("/apps/").content
    # Same email again: the same answer, nothing created.
    again = Client().post("/signup/", {"email": "new@example.com", "password": "long-enough-pw", "team_name": "Other"})
    assert again.status_code == 200 and b'id="signup-sent"' in again.content
    assert not Team.objects.filter(slug="other").exists()


def test_sign_in_and_out(teams: dict[str, Any]) -> None:
    client = Client()
    assert client.get("/apps/")["Location"].startswith("/login/")
    assert client.post("/login/", {"username": "editor@acme.test", "password": "correct-horse-battery"}).status_code == 302
    assert client.get("/apps/").status_code == 200
    client.post("/logout/")
    assert client.get("/apps/").status_code == 302


def test_team_switcher_only_switches_to_own_teams(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("owner")
    mine = Team.objects.create(name="Second", slug="second")
    Membership.objects.create(team=mine, user=teams["acme_users"]["owner"], role="viewer")
    client.post("/teams/switch/", {"team": str(mine.pk)})
    assert client.session[SESSION_TEAM_KEY] == str(mine.pk)
    client.post("/teams/switch/", {"team": str(teams["other"].pk)})
    assert client.session[SESSION_TEAM_KEY] == str(mine.pk)


def test_members_add_change_remove_and_admin_only(teams: dict[str, Any], client_for: Any) -> None:
    admin = client_for("admin")
    assert admin.post("/settings/members/", {"email": "new@acme.test", "role": "viewer"}).status_code == 302
    assert not Membership.objects.filter(team=teams["acme"], user__username="new@acme.test").exists()  # invited
    assert b"new@acme.test" in admin.get("/settings/members/").content
    user = User.objects.create_user("new@acme.test", "new@acme.test", "long-enough-pw")
    member = Membership.objects.create(team=teams["acme"], user=user, role="viewer")
    admin.post(f"/settings/members/{member.pk}/role/", {"role": "editor"})
    member.refresh_from_db()
    assert member.role == "editor"
    editor = client_for("editor")
    page = editor.get("/settings/members/")
    assert page.status_code == 200 and b"Add a member" not in page.content
    assert editor.post(f"/settings/members/{member.pk}/remove/").status_code == 403
    assert admin.post(f"/settings/members/{member.pk}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    other_member = Membership.objects.filter(team=teams["other"]).first()
    assert admin.post(f"/settings/members/{other_member.pk}/remove/").status_code == 404


def test_viewer_sees_but_cannot_edit_or_run(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    viewer = client_for("viewer")
    editor_page = viewer.get(f"/workflows/{workflow.pk}/")
    assert editor_page.status_code == 200
    data = editor_page.context["editor_data"]
    # The editor (a script) renders no edit control for them; the browser tests check what shows.
    assert data["canEdit"] is False and data["canRun"] is False
    assert b"New app" not in viewer.get("/apps/").content
    refused = [
        ("/apps/", {"name": "x"}),
        (f"/apps/{workflow.app_id}/", {"name": "x"}),
        (f"/workflows/{workflow.pk}/draft", {}),
        (f"/workflows/{workflow.pk}/publish", {}),
        (f"/workflows/{workflow.pk}/run", {}),
        (f"/workflows/{workflow.pk}/run-node", {}),
        (f"/workflows/{workflow.pk}/versions/1/activate", {}),
        (f"/workflows/{workflow.pk}/delete/", {}),
        (f"/apps/{workflow.app_id}/delete/", {}),
        ("/settings/tokens/", {"name": "t", "scopes": ["run"]}),
        ("/settings/credentials/", {"name": "c", "kind": "bearer", "token": "s"}),
        ("/settings/parameters/", {"name": ["a"], "value": ["b"]}),
        ("/settings/members/", {"email": "x@y.z", "role": "owner"}),
    ]
    for url, data in refused:
        assert viewer.post(url, data).status_code == 403, url
    assert App.objects.filter(team=teams["acme"]).count() == 1 and Workflow.objects.filter(pk=workflow.pk).exists()
    assert not ApiToken.objects.exists() and not Credential.objects.exists() and not GlobalParameter.objects.exists()
    assert not Run.objects.exists()


def test_another_teams_objects_are_404(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["other"], teams["other_users"]["owner"])
    client = client_for("owner")
    for url in [f"/apps/{workflow.app_id}/", f"/apps/{workflow.app_id}/call/", f"/workflows/{workflow.pk}/",
                f"/workflows/{workflow.pk}/versions/", "/workflows/not-a-uuid/", "/runs/not-a-uuid/"]:
        assert client.get(url).status_code == 404, url
    assert post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "x"}}).status_code == 404
    assert post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": three_node_graph()}).status_code == 404
    assert client.post(f"/workflows/{workflow.pk}/delete/").status_code == 404
    assert client.post(f"/apps/{workflow.app_id}/delete/").status_code == 404
    assert Workflow.objects.filter(pk=workflow.pk).exists() and App.objects.filter(pk=workflow.app_id).exists()
    assert not Run.objects.exists()


def test_delete_a_workflow_then_the_app_and_not_while_a_run_is_active(teams: dict[str, Any],
                                                                      client_for: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    second = Workflow.objects.create(team=teams["acme"], app=workflow.app, name="second", graph=three_node_graph())
    editor = client_for("editor")
    page = editor.get(f"/apps/{workflow.app_id}/").content.decode()
    assert f"/workflows/{second.pk}/delete/" in page and f"/apps/{workflow.app_id}/delete/" in page
    assert b"/delete/" not in client_for("viewer").get(f"/apps/{workflow.app_id}/").content

    response = editor.post(f"/workflows/{second.pk}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == f"/apps/{workflow.app_id}/"
    assert "Workflow second deleted." in response.content.decode()
    assert not Workflow.objects.filter(pk=second.pk).exists() and Workflow.objects.filter(pk=workflow.pk).exists()

    now = timezone.now()
    active = Run.objects.create(team=teams["acme"], app=workflow.app, workflow=workflow,
                                version=workflow.active_version, status="running", mode="async", inputs={},
                                business_time=now, deadline=now + timedelta(hours=1))
    response = editor.post(f"/apps/{workflow.app_id}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == f"/apps/{workflow.app_id}/"
    assert "The app has runs in progress; stop them first." in response.content.decode()
    assert App.objects.filter(pk=workflow.app_id).exists() and Run.objects.filter(pk=active.pk).exists()

    Run.objects.filter(pk=active.pk).update(status="succeeded", finished_at=now)
    response = editor.post(f"/apps/{workflow.app_id}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/apps/"
    assert not App.objects.filter(pk=workflow.app_id).exists()
    assert not Workflow.objects.filter(app_id=workflow.app_id).exists() and not Run.objects.exists()


def test_editor_save_reports_errors_by_path_and_publish_refuses(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("editor")
    client.post("/apps/", {"name": "Shop"})
    app = App.objects.get(team=teams["acme"], name="Shop")
    client.post(f"/apps/{app.pk}/", {"name": "Notify"})
    workflow = Workflow.objects.get(app=app)
    graph = three_node_graph()
    graph["nodes"].append({"id": "call", "type": "http", "config": {"method": "GET"}})
    graph["edges"].append({"from": "shout", "to": "call"})
    saved = post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": graph}).json()
    assert saved["ok"] is True
    assert {"path": "/nodes/3/config/url", "message": saved_message(saved, "/nodes/3/config/url")} in saved["errors"]
    refused = post_json(client, f"/workflows/{workflow.pk}/publish", {})
    assert refused.status_code == 400 and any(e["path"] == "/nodes/3/config/url" for e in refused.json()["errors"])
    workflow.refresh_from_db()
    assert workflow.graph == graph and workflow.active_version is None
    # A draft that does not have the shape of a workflow is not saved.
    bad = post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": {"nodes": "x"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "/graph/nodes"
    assert post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": three_node_graph()}).json()["errors"] == []
    published = post_json(client, f"/workflows/{workflow.pk}/publish", {}).json()
    assert published["version"] == 1
    assert published["inputsSchema"]["required"] == ["name"]


def saved_message(saved: dict[str, Any], path: str) -> str:
    return next(e["message"] for e in saved["errors"] if e["path"] == path)


def test_versions_diff_and_roll_back(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    graph = three_node_graph()
    graph["nodes"][1]["config"]["mapping"]["extra"] = "v2"
    post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": graph})
    post_json(client, f"/workflows/{workflow.pk}/publish", {})
    page = client.get(f"/workflows/{workflow.pk}/versions/").content.decode()
    assert 'class="d-add">+' in page and "extra" in page
    assert client.post(f"/workflows/{workflow.pk}/versions/1/activate").status_code == 302
    workflow.refresh_from_db()
    assert workflow.active_version.number == 1


def test_test_panel_run_is_a_streaming_ui_run(teams: dict[str, Any], client_for: Any, transactional_db: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    invalid = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {}})
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["path"] == "/inputs/name"
    response = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "ada"}})
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["runId"])
    assert (run.mode, run.dialect, run.trigger, run.created_by) == ("streaming", "ui", "ui", teams["acme_users"]["editor"])
    deadline = time.monotonic() + 10
    while not run.is_final and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert run.status == "succeeded" and run.outputs == {"greeting": "hello ada"}
    detail = client.get(f"/runs/{run.pk}/").content.decode()
    assert "tl-bar st-succeeded" in detail and "run_finished" in detail
    listing = client.get(f"/runs/?workflow={workflow.pk}&status=succeeded&trigger=ui&since=1h").content.decode()
    assert str(run.pk)[:8] in listing
    assert str(run.pk)[:8] not in client.get("/runs/?status=failed").content.decode()


def test_stop_from_the_run_page(teams: dict[str, Any], client_for: Any, transactional_db: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=delay_graph(30), name="Slow")
    client = client_for("editor")
    run_id = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {}}).json()["runId"]
    time.sleep(0.5)
    assert client_for("viewer").post(f"/runs/{run_id}/stop").status_code == 403
    assert client.post(f"/runs/{run_id}/stop").status_code == 302
    run = Run.objects.get(pk=run_id)
    deadline = time.monotonic() + 5
    while not run.is_final and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert run.status == "stopped"


def test_token_secret_is_shown_once_and_revoked(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("admin")
    response = client.post("/settings/tokens/", {"name": "ci", "scopes": ["run", "read"]})
    # Post/redirect/get: the secret is on the page the redirect leads to, once; a reload creates nothing.
    assert response.status_code == 302 and response["Location"] == "/settings/tokens/"
    created = client.get("/settings/tokens/").content.decode()
    token = ApiToken.objects.get(team=teams["acme"], name="ci")
    assert 'id="token-secret"' in created and token.prefix in created
    secret = created.split('id="token-secret">', 1)[1].split("<", 1)[0]
    assert len(secret) > len(token.prefix) + 10
    listed = client.get("/settings/tokens/").content.decode()
    assert secret not in listed
    assert 'class="muted created-by">admin@acme.test<' in listed
    assert ApiToken.objects.filter(team=teams["acme"], name="ci").count() == 1
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_credentials_are_write_only(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("editor")
    client.post("/settings/credentials/", {"name": "risk-api", "kind": "bearer", "token": "s3cr3t-value"})
    credential = Credential.objects.get(team=teams["acme"], name="risk-api")
    page = client.get("/settings/credentials/").content.decode()
    assert "risk-api" in page and "s3cr3t-value" not in page and "token ••••" in page
    client.post(f"/settings/credentials/{credential.pk}/", {"name": "risk-api", "kind": "api_key", "key": "k2"})
    credential.refresh_from_db()
    assert credential.kind == "api_key"
    client.post(f"/settings/credentials/{credential.pk}/", {"action": "delete"})
    assert not Credential.objects.filter(pk=credential.pk).exists()


def test_global_parameters_replace(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("editor")
    client.post("/settings/parameters/", {"name": ["region", ""], "value": ["eu", ""]})
    assert dict(GlobalParameter.objects.filter(team=teams["acme"]).values_list("name", "value")) == {"region": "eu"}
    for bad in ("system.x", "Bad Name!", "1st"):
        page = client.post("/settings/parameters/", {"name": ["region", bad], "value": ["us", "1"]})
        body = page.content.decode()
        assert page.status_code == 400 and "invalid name" in body and 'aria-invalid="true"' in body, bad
        assert f'value="{bad}"' in body  # the typed rows come back
        assert dict(GlobalParameter.objects.filter(team=teams["acme"]).values_list("name", "value")) == {"region": "eu"}
    assert client.post("/settings/parameters/", {"name": ["region", "my-param.v2"], "value": ["eu", "2"]}).status_code == 302


def test_app_call_page_shows_the_three_dialects(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    page = client_for("viewer").get(f"/apps/{workflow.app_id}/call/").content.decode()
    for needle in ("/v1/workflows/run", "/run'", "/api/v1/workflows/run", "Authorization: Bearer", "/api/docs/",
                   str(workflow.pk)):
        assert needle in page, needle


def test_replay_from_the_run_page(teams: dict[str, Any], client_for: Any, transactional_db: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    run_id = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "ada"}}).json()["runId"]
    run = Run.objects.get(pk=run_id)
    deadline = time.monotonic() + 10
    while not run.is_final and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert client_for("viewer").post(f"/runs/{run.pk}/replay").status_code == 403
    response = client.post(f"/runs/{run.pk}/replay")
    replay = Run.objects.get(replay_of=run)
    assert response["Location"] == f"/runs/{replay.pk}/"
    assert replay.inputs == run.inputs and replay.trigger == "replay"
    # A replay is an async run queued for the workers, like an API replay: a worker executes it.
    assert (replay.mode, replay.status) == ("async", "pending")
    assert run_task(replay.pk) == "succeeded"
    assert 'id="replay-btn"' not in client_for("viewer").get(f"/runs/{run.pk}/").content.decode()
