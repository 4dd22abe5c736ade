"""Sign-up with a verified address, password reset, and invitations by a single-use link that only
a signed-in, verified owner of the invited address can accept. Sign-up and reset answer the same
whether or not an address has an account; nothing attaches an existing account silently."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts.invitations import email_mark_verified
from accounts.models import Invitation, Membership, Team, UserEmail
from tests.conftest import PASSWORD, client_with_session, db_snapshot

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+")


def _link(message: Any) -> str:
    """The path of the first link in a mail."""
    return "/" + LINK.findall(message.body)[0].split("://", 1)[1].split("/", 1)[1]


def _signup(client: Client, email: str, team_name: str = "", next_url: str = "") -> Any:
    return client.post("/signup/", {"email": email, "password": "a-long-password", "team_name": team_name,
                                    "next": next_url})


def _invite(client: Any, email: str, role: str = "editor") -> Any:
    return client.post("/api/v1/members", {"email": email, "role": role}, format="json")


def test_sign_up_answers_the_same_whether_or_not_the_address_exists(mailoutbox: list[Any], owner_a: User) -> None:
    new = _signup(Client(), "fresh@example.com", "Fresh")
    taken = _signup(Client(), "OWNER@a.example", "Squat")
    assert new.status_code == taken.status_code == 200
    assert new.content.replace(b"fresh@example.com", b"X") == taken.content.replace(b"owner@a.example", b"X")
    assert "_auth_user_id" not in new.client.session and "_auth_user_id" not in taken.client.session
    # nothing exists before the address is confirmed: no team, an unverified user
    assert not Team.objects.filter(name__in=["Fresh", "Squat"]).exists()
    assert UserEmail.objects.get(user__username="fresh@example.com").verified_at is None
    owner_a.refresh_from_db()
    assert owner_a.check_password(PASSWORD)  # the existing account is untouched
    assert [m.to for m in mailoutbox] == [["fresh@example.com"], ["owner@a.example"]]
    assert "Confirm" in mailoutbox[0].subject and "/verify/" in mailoutbox[0].body
    assert "already" in mailoutbox[1].subject and "/verify/" not in mailoutbox[1].body


def test_the_mailed_link_confirms_the_address_creates_the_team_and_signs_in(mailoutbox: list[Any]) -> None:
    client = Client()
    _signup(client, "maker@example.com", "Makers")
    link = _link(mailoutbox[0])
    shown = client.get(link)
    assert shown.status_code == 200 and b'id="verify-form"' in shown.content
    assert UserEmail.objects.get(user__username="maker@example.com").verified_at is None  # GET writes nothing
    confirmed = client.post(link)
    assert confirmed.status_code == 302
    user = User.objects.get(username="maker@example.com")
    assert UserEmail.objects.get(user=user).verified_at is not None
    team = Team.objects.get(name="Makers")
    assert Membership.objects.get(team=team, user=user).role == "owner"
    assert client.get("/apps/").status_code == 200 and b"Makers" in client.get("/apps/").content
    # the link again: still the one team
    Client().post(link)
    assert Team.objects.filter(name="Makers").count() == 1
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa/") else "bbb") + "/"
    assert Client().get(tampered).status_code == 404 and Client().post(tampered).status_code == 404


def test_a_squatter_cannot_accept_an_invitation_to_the_address(mailoutbox: list[Any], team_a: Team,
                                                               owner_a: User, team_b: Team) -> None:
    squatter = Client()
    _signup(squatter, "victim@example.com", "Squatters")
    assert squatter.login(username="victim@example.com", password="a-long-password")
    mailoutbox.clear()
    assert _invite(client_with_session(owner_a), "victim@example.com").status_code == 202
    link = _link(mailoutbox[0])
    before = db_snapshot()
    page = squatter.get(link)
    assert b"Confirm your address first" in page.content and b'id="accept-form"' not in page.content
    squatter.post(link)
    assert db_snapshot() == before
    assert not Membership.objects.filter(team=team_a, user__username="victim@example.com").exists()


def test_only_the_verified_invited_address_accepts_and_only_once(mailoutbox: list[Any], team_a: Team,
                                                                 owner_a: User, user_b: User, team_b: Team) -> None:
    assert _invite(client_with_session(owner_a), "owner@b.example", "viewer").status_code == 202
    link = _link(mailoutbox[0])
    assert not Membership.objects.filter(team=team_a, user=user_b).exists()  # no silent attach
    # someone else, verified, signed in
    other = User.objects.create_user("other@example.com", "other@example.com", PASSWORD)
    email_mark_verified(other)
    before = db_snapshot()
    client_with_session(other).post(link)
    assert db_snapshot() == before
    anonymous = Client().get(link)
    assert anonymous.status_code == 200 and b"Sign in" in anonymous.content
    assert Client().post(link).status_code == 404
    # the invited person, verified
    email_mark_verified(user_b)
    invitee = client_with_session(user_b)
    assert b'id="accept-form"' in invitee.get(link).content
    accepted = invitee.post(link)
    assert accepted.status_code == 302 and accepted["Location"] == "/apps/"
    assert Membership.objects.get(team=team_a, user=user_b).role == "viewer"
    assert Invitation.objects.get(email="owner@b.example").accepted_by == user_b
    assert invitee.get(link).status_code == 404  # single use


def test_signing_up_from_an_invitation_leads_back_to_it(mailoutbox: list[Any], team_a: Team, owner_a: User) -> None:
    _invite(client_with_session(owner_a), "newbie@example.com")
    invitation_link = _link(mailoutbox[0])
    client = Client()
    _signup(client, "newbie@example.com", next_url=invitation_link)
    confirmed = client.post(_link(mailoutbox[1]))
    assert confirmed["Location"] == invitation_link
    assert not Team.objects.filter(memberships__user__username="newbie@example.com").exclude(pk=team_a.pk).exists()
    client.post(invitation_link)
    assert Membership.objects.get(team=team_a, user__username="newbie@example.com").role == "editor"


def test_the_inviter_lists_and_revokes_pending_invitations(mailoutbox: list[Any], team_a: Team, owner_a: User,
                                                           client_b: Any, user_b: User) -> None:
    owner = client_with_session(owner_a)
    invited = _invite(owner, "later@example.com", "viewer").json()
    listed = owner.get("/api/v1/invitations").json()["data"]
    assert [(i["id"], i["email"], i["role"], i["invitedBy"]) for i in listed] == [
        (invited["id"], "later@example.com", "viewer", owner_a.email)]
    assert client_b.get("/api/v1/invitations").json()["data"] == []
    assert client_b.delete(f"/api/v1/invitations/{invited['id']}").status_code == 404
    page = owner.get("/settings/members/").content.decode()
    assert 'id="invitations"' in page and "later@example.com" in page
    assert owner.delete(f"/api/v1/invitations/{invited['id']}").status_code == 204
    assert owner.get("/api/v1/invitations").json()["data"] == []
    later = User.objects.create_user("later@example.com", "later@example.com", PASSWORD)
    email_mark_verified(later)
    client_with_session(later).post(_link(mailoutbox[0]))
    assert not Membership.objects.filter(team=team_a, user=later).exists()
    # revoked from the page too
    _invite(owner, "again@example.com")
    pending = Invitation.objects.get(email="again@example.com")
    assert owner.post(f"/settings/invitations/{pending.pk}/revoke/").status_code == 302
    assert Invitation.objects.get(pk=pending.pk).revoked_at is not None


def test_password_reset_answers_the_same_and_the_link_works_once(mailoutbox: list[Any], owner_a: User) -> None:
    old_session = client_with_session(owner_a)
    assert old_session.get("/teams/new/").status_code == 200
    known = Client().post("/password/reset/", {"email": "owner@a.example"})
    unknown = Client().post("/password/reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302 and known["Location"] == unknown["Location"]
    assert [m.to for m in mailoutbox] == [["owner@a.example"]]
    link = _link(mailoutbox[0])
    client = Client()
    form = client.get(link, follow=True)
    assert b'id="reset-confirm-form"' in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "brand-new-password-9",
                                                    "new_password2": "brand-new-password-9"})
    assert done.status_code == 302
    owner_a.refresh_from_db()
    assert owner_a.check_password("brand-new-password-9")
    # the old session is signed out, and the link does not work twice
    assert old_session.get("/teams/new/")["Location"].startswith("/login/")
    again = Client().get(link, follow=True)
    assert b'id="reset-confirm-form"' not in again.content
