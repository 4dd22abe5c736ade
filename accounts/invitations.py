"""Writes for sign-up, email verification and invitations (docs/accounts.md).

- Sign-up never says whether an address has an account: a new address gets a verification link,
  a known one a note that it already has an account (with the sign-in and reset links); the page
  answers the same either way.
- Verification: a signed, time-limited link (``WEFT_VERIFICATION_DAYS``) naming the user and the
  address; confirming it (a POST, so mail scanners that follow links change nothing) marks the
  address verified and creates the team chosen at sign-up.
- Invitations: adding a member by email creates an invitation mailed as a single-use link
  (``WEFT_INVITATION_DAYS``); only a signed-in user whose verified address is the invited one can
  accept it, which creates the membership. Nothing attaches an existing account silently.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.mail import absolute_url, mail_send
from accounts.models import Invitation, Membership, Role, Team, UserEmail
from accounts.services import owner_guard, team_create
from config.errors import Conflict, Forbidden, InvalidInput, NotFound, team_owned

_VERIFY_SALT = "weft.accounts.verify"


def email_normalize(email: str) -> str:
    return email.strip().lower()


def email_verified(user: Any) -> bool:
    return UserEmail.objects.filter(user_id=user.pk, verified_at__isnull=False).exists()


def email_mark_verified(user: User) -> None:
    UserEmail.objects.update_or_create(user=user, defaults={"verified_at": timezone.now()})


# Sign-up and verification --------------------------------------------------------------------

def verification_token(*, user: User, team_name: str = "", next_url: str = "") -> str:
    return signing.dumps({"u": user.pk, "e": user.email, "t": team_name, "n": next_url}, salt=_VERIFY_SALT,
                         compress=True)


def verification_send(*, user: User, team_name: str = "", next_url: str = "") -> bool:
    token = verification_token(user=user, team_name=team_name, next_url=next_url)
    return mail_send(to=user.email, subject="Confirm your email address for Weft", template="web/mail/verify.txt",
                     context={"link": absolute_url(reverse("web:verify", args=[token])), "email": user.email,
                              "days": settings.WEFT_VERIFICATION_DAYS})


def signup_start(*, email: str, password: str, team_name: str = "", next_url: str = "") -> None:
    """Start a sign-up. Answers nothing: the caller shows the same page whatever happened."""
    email = email_normalize(email)
    existing = User.objects.filter(username=email).first()
    if existing is not None:
        make_password(password)  # the same work either way, so timing does not tell either
        mail_send(to=email, subject="You already have a Weft account", template="web/mail/exists.txt",
                  context={"login": absolute_url(reverse("web:login")),
                           "reset": absolute_url(reverse("web:password-reset"))})
        return
    try:
        with transaction.atomic():
            user = User(username=email, email=email)
            user.set_password(password)
            user.save()
            UserEmail.objects.create(user=user, verified_at=None)
    except IntegrityError:  # signed up twice at once: the other request has it
        return
    verification_send(user=user, team_name=team_name, next_url=next_url)


def verification_read(token: str) -> dict[str, Any]:
    """The payload of a verification link, or ``NotFound`` when it is forged, stale or for an
    address the account no longer has."""
    try:
        data = signing.loads(token, salt=_VERIFY_SALT, max_age=timedelta(days=settings.WEFT_VERIFICATION_DAYS))
    except (signing.BadSignature, ValueError):
        raise NotFound("This confirmation link is invalid or has expired.") from None
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or user.email != data.get("e"):
        raise NotFound("This confirmation link is invalid or has expired.")
    return {"user": user, "team_name": data.get("t") or "", "next": data.get("n") or ""}


@transaction.atomic
def email_verify(*, token: str) -> tuple[User, Team | None, str]:
    """Confirm an address; creates the team chosen at sign-up (once). ``(user, team, next)``."""
    data = verification_read(token)
    user = data["user"]
    email_mark_verified(user)
    team = None
    if data["team_name"] and not Membership.objects.filter(user=user).exists():
        try:
            team = team_create(name=data["team_name"], owner=user)
        except Conflict:
            team = team_create(name=data["team_name"], slug=f"{data['team_name']}-{secrets.token_hex(3)}", owner=user)
    return user, team, data["next"]


# Invitations -----------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, team: Team, email: str, role: str, invited_by: User | None = None,
                      actor_role: str | None = Role.OWNER) -> Invitation:
    """Invite ``email`` to ``team`` as ``role``; mails the single-use link."""
    owner_guard(actor_role, role)
    if role not in Role.values:
        raise InvalidInput("Unknown role.", errors=[{"path": "/role", "message": f"must be one of {', '.join(Role.values)}"}])
    email = email_normalize(email)
    if Membership.objects.filter(team=team, user__username=email).exists():
        raise Conflict("Already a member.", errors=[{"path": "/email", "message": "already a member of this team"}])
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # An expired invitation no longer blocks a new one.
        Invitation.objects.filter(team=team, email=email, accepted_at__isnull=True, revoked_at__isnull=True,
                                  expires_at__lte=now).update(revoked_at=now)
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    team=team, email=email, role=role, token_hash=_hash(token), invited_by=invited_by,
                    expires_at=now + timedelta(days=settings.WEFT_INVITATION_DAYS))
        except IntegrityError:
            raise Conflict("This address is already invited.",
                           errors=[{"path": "/email", "message": "already invited (revoke the pending invitation first)"}]) from None
    mail_send(to=email, subject=f"You are invited to {team.name} on Weft", template="web/mail/invitation.txt",
              context={"team": team, "role": role, "inviter": getattr(invited_by, "email", "") or "A team admin",
                       "link": absolute_url(reverse("web:invitation", args=[token])),
                       "days": settings.WEFT_INVITATION_DAYS})
    return invitation


def invitation_revoke(*, team: Team, invitation: Invitation) -> None:
    team_owned(team, invitation, "Invitation")
    Invitation.objects.filter(team=team, pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now())


def invitation_by_token(token: str) -> Invitation:
    """The pending invitation of a link, or ``NotFound`` (unknown, used, revoked or expired alike)."""
    invitation = (Invitation.objects.select_related("team", "invited_by")
                  .filter(token_hash=_hash(token or ""), accepted_at__isnull=True, revoked_at__isnull=True,
                          expires_at__gt=timezone.now()).first())
    if invitation is None:
        raise NotFound("This invitation is invalid, used, revoked or expired.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Accept an invitation as ``user``: signed in, with the invited address, verified."""
    invitation = invitation_by_token(token)
    if email_normalize(user.email or user.username) != invitation.email:
        raise Forbidden("This invitation is for another email address.",
                        errors=[{"path": "/email", "message": "sign in with the invited address"}])
    if not email_verified(user):
        raise Forbidden("Confirm your email address first.",
                        errors=[{"path": "/email", "message": "not verified"}])
    # Single use: only the request that flips it from pending goes on.
    taken = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        accepted_at=timezone.now(), accepted_by=user)
    if not taken:
        raise NotFound("This invitation is invalid, used, revoked or expired.")
    membership, created = Membership.objects.get_or_create(team=invitation.team, user=user,
                                                           defaults={"role": invitation.role})
    if not created:
        raise Conflict("You are already a member of this team.", errors=[{"path": "/email", "message": "already a member"}])
    return membership
