"""Sign-up, confirmation and an invitation end to end on a real Daphne: forms over HTTP with CSRF,
the mail read from the server's file backend, the rows checked in the database."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.invitations import email_mark_verified
from accounts.models import Membership, Team, UserEmail
from accounts.services import team_create, user_get_or_create
from tests.accounts.live import Browser, mail_links
from tests.support.processes import daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[tuple[str, Path]]:
    mail_dir = Path(tempfile.mkdtemp(prefix="weft-mail-"))
    with daphne(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                EMAIL_FILE_PATH=str(mail_dir)) as (_, url):
        yield url, mail_dir


def test_sign_up_confirm_invite_and_accept_over_http(server: tuple[str, Path]) -> None:
    url, mail_dir = server
    owner, _ = user_get_or_create(email="boss@live.example", password="boss-password-1")
    email_mark_verified(owner)
    team = team_create(name="Live Team", owner=owner)

    newcomer = Browser(url)
    sent = newcomer.form("/signup/", {"email": "newcomer@live.example", "password": "newcomer-pw-1",
                                      "team_name": "Newcomers"})
    assert sent.status_code == 200 and "Check your email" in sent.text
    assert not Team.objects.filter(name="Newcomers").exists()
    verify_link = mail_links(mail_dir, "newcomer@live.example")[-1]
    confirmed = newcomer.form(verify_link)
    assert confirmed.status_code == 302
    assert UserEmail.objects.get(user__username="newcomer@live.example").verified_at is not None
    assert Team.objects.filter(name="Newcomers", memberships__role="owner").exists()

    boss = Browser(url)
    assert boss.form("/login/", {"username": "boss@live.example", "password": "boss-password-1"}).status_code == 302
    assert boss.form("/settings/members/", {"email": "newcomer@live.example", "role": "editor"}).status_code == 302
    assert not Membership.objects.filter(team=team, user__username="newcomer@live.example").exists()
    invitation_link = mail_links(mail_dir, "newcomer@live.example")[-1]
    assert "/invitations/" in invitation_link

    # a stranger holding the link cannot use it
    assert Browser(url).form(invitation_link).status_code in (403, 404)  # no session: no CSRF token either
    assert not Membership.objects.filter(team=team, user__username="newcomer@live.example").exists()
    accepted = newcomer.form(invitation_link)
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/apps/"
    assert Membership.objects.get(team=team, user__username="newcomer@live.example").role == "editor"
    assert newcomer.get(newcomer.url(invitation_link), timeout=30).status_code == 404  # used
