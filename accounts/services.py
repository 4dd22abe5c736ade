"""Writes for teams, memberships, tokens, credentials and global parameters.

Every function takes the team explicitly, is keyword-only, validates its input (``InvalidInput``
naming the field) before writing, and writes inside one transaction.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.crypto import secret_encrypt
from accounts.models import (
    ALL_SCOPES,
    CREDENTIAL_FIELDS,
    ApiToken,
    Credential,
    CredentialKind,
    GlobalParameter,
    Membership,
    Role,
    Team,
)
from accounts.tokens import token_generate, webhook_secret_new
from config.errors import Conflict, Forbidden, InvalidInput, team_owned
from workflows.engine.macros import has_macros, macro_errors

# The names ${name} can reach (workflows.engine.params.PARAM_RE).
PARAMETER_NAME = re.compile(r"[A-Za-z_][\w.\-]*")


def time_zone_check(value: str, path: str = "/timeZone") -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {value!r}.", errors=[{"path": path, "message": f"unknown time zone {value!r}"}]) from None
    return value


@transaction.atomic
def team_create(*, name: str, slug: str | None = None, owner: User, time_zone: str = "UTC") -> Team:
    slug = slugify(slug or name)[:64]
    if not slug:
        raise InvalidInput("A team needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
    if Team.objects.filter(slug=slug).exists():
        raise Conflict(f"A team with slug {slug!r} exists.", errors=[{"path": "/slug", "message": "already taken"}])
    team = Team.objects.create(
        name=name, slug=slug, time_zone=time_zone_check(time_zone), webhook_secret=webhook_secret_new()
    )
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def user_get_or_create(*, email: str, password: str | None = None) -> tuple[User, bool]:
    email = email.strip().lower()
    user = User.objects.filter(username=email).first()
    if user is not None:
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, False
    user = User(username=email, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user, True


@transaction.atomic
def membership_add(*, team: Team, email: str, role: str, password: str | None = None,
                   actor_role: str | None = Role.OWNER) -> Membership:
    owner_guard(actor_role, role)
    if role not in Role.values:
        raise InvalidInput("Unknown role.", errors=[{"path": "/role", "message": f"must be one of {', '.join(Role.values)}"}])
    # An existing user keeps their password: a team admin must not be able to reset the password
    # of an account that may belong to other teams too.
    user = User.objects.filter(username=email.strip().lower()).first()
    if user is None:
        user, _ = user_get_or_create(email=email, password=password)
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict("Already a member.", errors=[{"path": "/email", "message": "already a member of this team"}])
    return Membership.objects.create(team=team, user=user, role=role)


def owner_guard(actor_role: str | None, *roles: str) -> None:
    """Only an owner grants, changes or removes the owner role (``actor_role`` None: a team token)."""
    if Role.OWNER in roles and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can grant, change or remove the owner role.",
                        errors=[{"path": "/role", "message": "owner only"}])


def _owner_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


@transaction.atomic
def membership_update(*, team: Team, membership: Membership, role: str, actor_role: str | None = Role.OWNER) -> Membership:
    team_owned(team, membership, "Member")
    owner_guard(actor_role, role, membership.role)
    if role not in Role.values:
        raise InvalidInput("Unknown role.", errors=[{"path": "/role", "message": f"must be one of {', '.join(Role.values)}"}])
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(team) <= 1:
        raise Conflict("A team keeps at least one owner.", errors=[{"path": "/role", "message": "last owner"}])
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, team: Team, membership: Membership, actor_role: str | None = Role.OWNER) -> None:
    """Remove a member; the tokens they created in this team are revoked in the same transaction."""
    team_owned(team, membership, "Member")
    owner_guard(actor_role, membership.role)
    if membership.role == Role.OWNER and _owner_count(team) <= 1:
        raise Conflict("A team keeps at least one owner.", errors=[{"path": "/id", "message": "last owner"}])
    ApiToken.objects.filter(team=team, created_by_id=membership.user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now())
    membership.delete()


def scopes_check(scopes: Any) -> list[str]:
    if not isinstance(scopes, list) or not scopes or any(s not in ALL_SCOPES for s in scopes):
        raise InvalidInput("Invalid scopes.", errors=[{"path": "/scopes", "message": f"a non-empty list of {', '.join(ALL_SCOPES)}"}])
    return sorted(set(scopes))


def grant_check(scopes: list[str], grantor_scopes: set[str] | None) -> None:
    """A token never carries more than whoever creates it: a member's role or the creating token's
    scopes (``grantor_scopes``; None for the command line and the demo). 403 naming ``/scopes``."""
    if grantor_scopes is None:
        return
    above = sorted(set(scopes) - set(grantor_scopes))
    if above:
        raise Forbidden(f"You cannot grant scopes you do not hold: {', '.join(above)}.",
                        errors=[{"path": "/scopes", "message": f"above your own authority: {', '.join(above)}"}])


@transaction.atomic
def token_create(
    *, team: Team, name: str, scopes: list[str], app: Any = None, expires_at: datetime | None = None,
    created_by: User | None = None, grantor_scopes: set[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it with its secret, which is never stored and never shown again.

    ``created_by`` is the person it acts for (a token created by a token: that token's creator), so
    that removing them revokes it and its scopes stay within their role."""
    grant_check(scopes_check(scopes), grantor_scopes)
    if not name or not name.strip():
        raise InvalidInput("A token needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
    if app is not None and app.team_id != team.id:
        raise InvalidInput("Unknown app.", errors=[{"path": "/appId", "message": "no such app"}])
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("Expiry in the past.", errors=[{"path": "/expiresAt", "message": "must be in the future"}])
    full, prefix, secret_hash = token_generate()
    token = ApiToken.objects.create(
        team=team, app=app, name=name.strip(), prefix=prefix, secret_hash=secret_hash,
        scopes=scopes_check(scopes), expires_at=expires_at, created_by=created_by,
    )
    return token, full


def token_revoke(*, team: Team, token: ApiToken) -> ApiToken:
    team_owned(team, token, "Token")
    ApiToken.objects.filter(team=team, pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


# The URL schemes a connection credential may use (db nodes; queue nodes and queue triggers).
URL_SCHEMES: dict[str, tuple[str, ...]] = {
    CredentialKind.DATABASE: ("postgresql", "postgres", "mysql", "mariadb", "sqlite"),
    CredentialKind.BROKER: ("amqp", "amqps", "redis", "rediss"),
}


def credential_secrets_check(kind: str, secrets_: Any, *, partial: bool = False) -> dict[str, str]:
    if kind not in CREDENTIAL_FIELDS:
        raise InvalidInput("Unknown kind.", errors=[{"path": "/kind", "message": f"must be one of {', '.join(CredentialKind.values)}"}])
    if not isinstance(secrets_, dict):
        raise InvalidInput("Secrets must be an object.", errors=[{"path": "/secrets", "message": "must be an object"}])
    fields = CREDENTIAL_FIELDS[kind]
    errors = [{"path": f"/secrets/{k}", "message": "unknown field"} for k in secrets_ if k not in fields]
    if not partial:
        errors += [{"path": f"/secrets/{f}", "message": "required"} for f in fields if not secrets_.get(f)]
    errors += [{"path": f"/secrets/{k}", "message": "must be a string"} for k, v in secrets_.items()
               if k in fields and not isinstance(v, str)]
    url = secrets_.get("url")
    if kind in URL_SCHEMES and isinstance(url, str) and url:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in URL_SCHEMES[kind]:
            errors.append({"path": "/secrets/url", "message": f"must start with {', '.join(s + '://' for s in URL_SCHEMES[kind])}"})
    if errors:
        raise InvalidInput("Invalid credential secrets.", errors=errors)
    return {k: v for k, v in secrets_.items() if k in fields}


@transaction.atomic
def credential_create(*, team: Team, name: str, kind: str, secrets: dict[str, str]) -> Credential:
    if not name or not name.strip():
        raise InvalidInput("A credential needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
    data = credential_secrets_check(kind, secrets)
    try:
        with transaction.atomic():
            return Credential.objects.create(team=team, name=name.strip(), kind=kind, secret_encrypted=secret_encrypt(data))
    except IntegrityError:
        raise Conflict("A credential with this name exists.", errors=[{"path": "/name", "message": "already exists"}]) from None


@transaction.atomic
def credential_update(*, team: Team, credential: Credential, name: str | None = None, secrets: dict[str, str] | None = None,
                      kind: str | None = None) -> Credential:
    team_owned(team, credential, "Credential")
    fields = ["updated_at"]
    if name is not None:
        if not name.strip():
            raise InvalidInput("A credential needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
        if Credential.objects.filter(team=team, name=name.strip()).exclude(pk=credential.pk).exists():
            raise Conflict("A credential with this name exists.", errors=[{"path": "/name", "message": "already exists"}])
        credential.name = name.strip()
        fields.append("name")
    if kind is not None or secrets is not None:
        new_kind = kind or credential.kind
        if secrets is None:
            raise InvalidInput("Changing the kind needs new secrets.", errors=[{"path": "/secrets", "message": "required with kind"}])
        credential.kind = new_kind
        credential.secret_encrypted = secret_encrypt(credential_secrets_check(new_kind, secrets))
        fields += ["kind", "secret_encrypted"]
    credential.save(update_fields=fields)
    return credential


@transaction.atomic
def credential_delete(*, team: Team, credential: Credential) -> None:
    team_owned(team, credential, "Credential")
    Credential.objects.filter(team=team, pk=credential.pk).delete()


def team_webhook_secret_rotate(*, team: Team) -> str:
    """A new secret for the team's outgoing webhooks (batch completion callbacks). It signs every
    delivery from now on, retries of earlier ones included (they are signed when sent)."""
    secret = webhook_secret_new()
    Team.objects.filter(pk=team.pk).update(webhook_secret=secret)
    team.webhook_secret = secret
    return secret


@transaction.atomic
def parameters_replace(*, team: Team, values: dict[str, Any]) -> dict[str, str]:
    """Replace the team's global parameters with ``values`` (all or nothing)."""
    if not isinstance(values, dict):
        raise InvalidInput("Parameters must be an object.", errors=[{"path": "/", "message": "must be an object of name: string"}])
    errors = []
    for key, value in values.items():
        # A name must be writable as ${name} (the engine's parameter syntax).
        if (not isinstance(key, str) or len(key) > 120 or key.startswith("system.")
                or not PARAMETER_NAME.fullmatch(key)):
            errors.append({"path": f"/{key}", "message": "invalid name: a letter or _ first, then letters, digits, "
                                                         "_ . or - (120 at most), not starting with 'system.'"})
        elif not isinstance(value, (str, int, float, bool)):
            errors.append({"path": f"/{key}", "message": "must be a string, number or boolean"})
        elif isinstance(value, str) and has_macros(value):  # a macro that cannot expand fails every run using it
            errors.extend({"path": f"/{key}", "message": message} for message in macro_errors(value))
    if errors:
        raise InvalidInput("Invalid parameters.", errors=errors)
    GlobalParameter.objects.filter(team=team).delete()
    GlobalParameter.objects.bulk_create(
        [GlobalParameter(team=team, name=k, value=str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()]
    )
    return {k: str(v) for k, v in values.items()}
