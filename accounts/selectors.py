"""Reads for accounts. Every lookup names the team; another team's row is ``NotFound``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone

from accounts.crypto import secret_decrypt
from accounts.models import ApiToken, Credential, GlobalParameter, Invitation, Membership, Team
from config.errors import NotFound
from config.stamp import StampedCache


def row_get(qs: QuerySet, what: str, **lookup: Any) -> Any:
    # A malformed id (not a UUID) is answered exactly like a missing row.
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFound(f"{what} not found.") from None


def token_list(*, team: Team) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(team=team).select_related("app", "created_by").order_by("-created_at")


def token_get(*, team: Team, id: Any) -> ApiToken:
    return row_get(ApiToken.objects.filter(team=team), "Token", pk=id)


def credential_list(*, team: Team) -> QuerySet[Credential]:
    return Credential.objects.filter(team=team).order_by("name")


def credential_get(*, team: Team, id: Any) -> Credential:
    return row_get(Credential.objects.filter(team=team), "Credential", pk=id)


def credential_names(*, team: Team) -> set[str]:
    return set(Credential.objects.filter(team=team).values_list("name", flat=True))


def credential_kinds(*, team: Team) -> dict[str, str]:
    """The team's credentials as ``{name: kind}`` (what publish checks node references against)."""
    return dict(Credential.objects.filter(team=team).values_list("name", "kind"))


def credential_fields(credential: Credential) -> list[str]:
    """The names (never the values) of the secret fields stored in ``credential``."""
    return sorted(secret_decrypt(credential.secret_encrypted))


def credential_secret(*, team: Team, name: str) -> dict[str, str]:
    """The decrypted credential ``name`` for an HTTP node, as ``{"kind", **fields}``."""
    credential = row_get(Credential.objects.filter(team=team), "Credential", name=name)
    return {"kind": credential.kind, **secret_decrypt(credential.secret_encrypted)}


# Team parameters per process, valid while the resolution stamp holds (config.stamp: any change
# to a team's parameters moves it): every run reads them.
_parameters: StampedCache[dict[str, str]] = StampedCache()


def parameters_get(*, team: Team) -> dict[str, str]:
    """The team's global parameters, ``{name: value}`` in name order (a copy the caller may change)."""
    found = _parameters.get_or_load(str(team.pk), lambda: dict(
        GlobalParameter.objects.filter(team=team).order_by("name").values_list("name", "value")))
    return dict(found or {})


def member_list(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("created_at")


def member_get(*, team: Team, id: Any) -> Membership:
    return row_get(Membership.objects.filter(team=team).select_related("user"), "Member", pk=id)


def user_teams(*, user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def invitation_list(*, team: Team) -> QuerySet[Invitation]:
    """The team's pending invitations (neither accepted, revoked nor expired)."""
    return (Invitation.objects.filter(team=team, accepted_at__isnull=True, revoked_at__isnull=True,
                                      expires_at__gt=timezone.now())
            .select_related("invited_by").order_by("-created_at"))


def invitation_get(*, team: Team, id: Any) -> Invitation:
    return row_get(invitation_list(team=team), "Invitation", pk=id)
