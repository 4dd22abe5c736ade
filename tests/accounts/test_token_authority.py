"""Token authority: a token never carries more than its creator's role. ``manage`` builds but does
not administer members or tokens (``admin`` does, granted only by owners and admins); tokens show
``createdBy``; a member's removal revokes their tokens in the same transaction; a demoted creator's
tokens lose what the role lost."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership, Role, Team
from tests.conftest import client_with_session, db_snapshot, member_of


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _mint(client: APIClient, scopes: list[str], name: str = "t") -> Any:
    return client.post("/api/v1/tokens", {"name": name, "scopes": scopes}, format="json")


def test_an_editor_cannot_mint_tokens_nor_promote_themselves(team_a: Team, editor_a: User, admin_a: User) -> None:
    editor = client_with_session(editor_a)
    before = db_snapshot()
    for scopes in (["manage"], ["admin"], ["read"]):
        response = _mint(editor, scopes)
        assert response.status_code == 403, response.content
    mine = member_of(team_a, editor_a)
    admin = member_of(team_a, admin_a)
    assert editor.patch(f"/api/v1/members/{mine.pk}", {"role": "admin"}, format="json").status_code == 403
    assert editor.patch(f"/api/v1/members/{admin.pk}", {"role": "viewer"}, format="json").status_code == 403
    assert db_snapshot() == before


def test_a_manage_token_administers_neither_members_nor_tokens(client_a_manage: APIClient, team_a: Team,
                                                               admin_a: User) -> None:
    before = db_snapshot()
    admin = member_of(team_a, admin_a)
    for response in (
        _mint(client_a_manage, ["manage"]),
        client_a_manage.delete(f"/api/v1/tokens/{ApiToken.objects.filter(team=team_a).first().pk}"),
        client_a_manage.post("/api/v1/members", {"email": "out@side.example", "role": "admin"}, format="json"),
        client_a_manage.patch(f"/api/v1/members/{admin.pk}", {"role": "viewer"}, format="json"),
        client_a_manage.delete(f"/api/v1/members/{admin.pk}"),
    ):
        assert response.status_code == 403, response.content
        assert "'admin' scope" in response.json()["detail"]
    assert db_snapshot() == before
    # it still builds
    assert client_a_manage.post("/api/v1/apps", {"name": "still builds"}, format="json").status_code == 201


def test_owners_and_admins_grant_admin_and_tokens_show_their_creator(team_a: Team, admin_a: User,
                                                                     owner_a: User) -> None:
    for user in (owner_a, admin_a):
        created = _mint(client_with_session(user), ["admin", "read"], name=f"by-{user.pk}")
        assert created.status_code == 201, created.content
        assert created.json()["createdBy"] == user.email
    listed = {t["name"]: t for t in client_with_session(owner_a).get("/api/v1/tokens").json()["data"]}
    assert listed[f"by-{admin_a.pk}"]["createdBy"] == admin_a.email


def test_a_token_mints_nothing_above_its_own_scopes(team_a: Team, admin_a: User) -> None:
    secret = _mint(client_with_session(admin_a), ["admin", "read"]).json()["token"]
    client = _bearer(secret)
    before = db_snapshot()
    refused = _mint(client, ["read", "manage"])
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"path": "/scopes", "message": "above your own authority: manage"}]
    assert db_snapshot() == before
    child = _mint(client, ["read"], name="child")
    assert child.status_code == 201
    # the child acts for the same person: it is theirs, and goes when they go
    assert child.json()["createdBy"] == admin_a.email


def test_a_demoted_creator_s_token_loses_what_the_role_lost(team_a: Team, admin_a: User, owner_a: User) -> None:
    secret = _mint(client_with_session(admin_a), ["admin", "manage", "read"]).json()["token"]
    client = _bearer(secret)
    assert client.get("/api/v1/members").status_code == 200
    membership = member_of(team_a, admin_a)
    owner = client_with_session(owner_a)
    assert owner.patch(f"/api/v1/members/{membership.pk}", {"role": "viewer"}, format="json").status_code == 200
    assert client.post("/api/v1/members", {"email": "x@a.example", "role": "viewer"}, format="json").status_code == 403
    assert client.post("/api/v1/apps", {"name": "x"}, format="json").status_code == 403
    assert client.get("/api/v1/apps").status_code == 200  # read is still within a viewer's role


def test_removing_a_member_revokes_their_tokens(team_a: Team, admin_a: User, owner_a: User) -> None:
    admin = client_with_session(admin_a)
    first = _mint(admin, ["admin", "read"], name="first").json()
    second = _mint(_bearer(first["token"]), ["read"], name="second").json()
    kept = _mint(client_with_session(owner_a), ["read"], name="owner's").json()
    for token in (first, second, kept):
        assert _bearer(token["token"]).get("/api/v1/apps").status_code == 200
    membership = member_of(team_a, admin_a)
    assert client_with_session(owner_a).delete(f"/api/v1/members/{membership.pk}").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    for token in (first, second):
        assert ApiToken.objects.get(pk=token["id"]).revoked_at is not None
        assert _bearer(token["token"]).get("/api/v1/apps").status_code == 401
    assert ApiToken.objects.get(pk=kept["id"]).revoked_at is None
    assert _bearer(kept["token"]).get("/api/v1/apps").status_code == 200


def test_the_tokens_page_is_for_admins(team_a: Team, editor_a: User, admin_a: User) -> None:
    editor = client_with_session(editor_a)
    assert editor.post("/settings/tokens/", {"name": "t", "scopes": ["read"]}).status_code == 403
    assert not ApiToken.objects.filter(name="t").exists()
    admin = client_with_session(admin_a)
    assert b"New token" in admin.get("/settings/tokens/").content
    assert b"New token" not in editor.get("/settings/tokens/").content
    assert admin.post("/settings/tokens/", {"name": "too-much", "scopes": ["admin"]}).status_code == 302  # created, then redirected (post/redirect/get)
    # an admin may grant admin, and the page shows who created the token
    assert ApiToken.objects.get(name="too-much").created_by == admin_a
    assert Role.ADMIN in ApiToken.objects.get(name="too-much").scopes
