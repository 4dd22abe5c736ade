"""Roles: viewers read, editors build but do not manage members, owners and admins manage members;
a team always keeps an owner."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import Membership, Role, Team
from tests.conftest import PASSWORD, client_with_session, member_make, member_of, workflow_make


def test_viewer_reads_but_cannot_write(team_a: Team, viewer_a: User) -> None:
    client = client_with_session(viewer_a)
    workflow = workflow_make(team_a)
    assert client.get("/api/v1/apps").status_code == 200
    assert client.get(f"/api/v1/workflows/{workflow.id}").status_code == 200
    assert client.get("/api/v1/members").status_code == 200
    for method, url, body in [
        ("post", "/api/v1/apps", {"name": "x"}),
        ("patch", f"/api/v1/workflows/{workflow.id}", {"name": "y"}),
        ("post", f"/api/v1/workflows/{workflow.id}/publish", {}),
        ("post", "/api/v1/tokens", {"name": "t", "scopes": ["read"]}),
        ("put", "/api/v1/parameters", {}),
        ("post", "/api/v1/members", {"email": "x@a.example", "role": "viewer"}),
    ]:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)


def test_editor_builds_but_cannot_manage_members(team_a: Team, editor_a: User, viewer_a: User) -> None:
    client = client_with_session(editor_a)
    app = client.post("/api/v1/apps", {"name": "Orders"}, format="json")
    assert app.status_code == 201
    workflow = client.post(f"/api/v1/apps/{app.json()['id']}/workflows", {"name": "notify"}, format="json")
    assert workflow.status_code == 201
    assert client.post(f"/api/v1/workflows/{workflow.json()['id']}/publish", {}, format="json").status_code == 201
    viewer = member_of(team_a, viewer_a)
    assert client.post("/api/v1/members", {"email": "x@a.example", "role": "viewer"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/members/{viewer.id}", {"role": "owner"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/members/{viewer.id}").status_code == 403
    assert Membership.objects.get(pk=viewer.id).role == Role.VIEWER


def _manage_members(client: APIClient, team: Team) -> None:
    invited = client.post("/api/v1/members", {"email": "New@A.example", "role": "editor"}, format="json")
    assert invited.status_code == 202, invited.content
    assert invited.json()["email"] == "new@a.example" and invited.json()["status"] == "pending"
    again = client.post("/api/v1/members", {"email": "new@a.example", "role": "viewer"}, format="json")
    assert again.status_code == 409
    # the invitee joins by accepting with their verified address (tests/accounts/test_invitations.py)
    user = User.objects.create_user("new@a.example", "new@a.example", PASSWORD)
    membership = Membership.objects.create(team=team, user=user, role=Role.EDITOR)
    already = client.post("/api/v1/members", {"email": "new@a.example", "role": "viewer"}, format="json")
    assert already.status_code == 409
    changed = client.patch(f"/api/v1/members/{membership.pk}", {"role": "viewer"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert client.delete(f"/api/v1/members/{membership.pk}").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_owner_manages_members(team_a: Team, owner_a: User) -> None:
    _manage_members(client_with_session(owner_a), team_a)


def test_admin_manages_members(team_a: Team, admin_a: User) -> None:
    _manage_members(client_with_session(admin_a), team_a)


def test_admin_token_manages_members(token_client: Any, team_a: Team) -> None:
    _manage_members(token_client(team_a, ["admin"]), team_a)


def test_last_owner_cannot_be_demoted_or_removed(session_client_a: APIClient, team_a: Team, owner_a: User) -> None:
    owner = member_of(team_a, owner_a)
    demote = session_client_a.patch(f"/api/v1/members/{owner.id}", {"role": "admin"}, format="json")
    assert demote.status_code == 409 and demote["Content-Type"].startswith("application/problem+json")
    assert session_client_a.delete(f"/api/v1/members/{owner.id}").status_code == 409
    assert Membership.objects.get(pk=owner.id).role == Role.OWNER
    # with a second owner, the first may step down
    second = session_client_a.post("/api/v1/members", {"email": "co@a.example", "role": "owner"}, format="json")
    assert second.status_code == 202  # an owner may invite an owner
    member_make(team_a, Role.OWNER, "co@a.example")
    assert session_client_a.patch(f"/api/v1/members/{owner.id}", {"role": "admin"}, format="json").status_code == 200


def test_adding_an_existing_user_attaches_nothing(session_client_a: APIClient, team_a: Team, team_b: Team,
                                                   user_b: Any) -> None:
    response = session_client_a.post("/api/v1/members", {"email": user_b.email, "role": "viewer"}, format="json")
    assert response.status_code == 202
    assert not Membership.objects.filter(team=team_a, user=user_b).exists()
    user_b.refresh_from_db()
    assert user_b.check_password(PASSWORD)


def test_members_list_shows_only_the_team(session_client_a: APIClient, team_b: Team, owner_a: User) -> None:
    emails = [m["email"] for m in session_client_a.get("/api/v1/members").json()["data"]]
    assert emails == [owner_a.email]


def test_only_an_owner_touches_the_owner_role(team_a, owner_a, admin_a, session_client_for, client_a):
    from accounts.models import Membership

    admin = session_client_for(admin_a)
    owner_membership = Membership.objects.get(team=team_a, user=owner_a)
    admin_membership = Membership.objects.get(team=team_a, user=admin_a)
    before = list(Membership.objects.order_by("pk").values_list("pk", "role"))
    for response in (
        admin.post("/api/v1/members", {"email": "boss@a.example", "role": "owner"}, format="json"),
        admin.patch(f"/api/v1/members/{admin_membership.pk}", {"role": "owner"}, format="json"),
        admin.patch(f"/api/v1/members/{owner_membership.pk}", {"role": "viewer"}, format="json"),
        admin.delete(f"/api/v1/members/{owner_membership.pk}"),
        client_a.patch(f"/api/v1/members/{admin_membership.pk}", {"role": "owner"}, format="json"),  # a token
    ):
        assert response.status_code == 403, response.content
        assert response.json()["errors"] == [{"path": "/role", "message": "owner only"}]
    assert list(Membership.objects.order_by("pk").values_list("pk", "role")) == before
    owner = session_client_for(owner_a)
    assert owner.patch(f"/api/v1/members/{admin_membership.pk}", {"role": "owner"}, format="json").status_code == 200
