"""DRF authentication by API token: ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``."""

from __future__ import annotations

import copy
from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ROLE_SCOPES, ApiToken, Membership
from accounts.tokens import token_hash, token_matches, token_split
from config.stamp import StampedCache


class TokenUser:
    """The principal behind an API token: authenticated, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.username = f"token:{token.prefix}"

    def __str__(self) -> str:
        return self.username


def token_from_header(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = request.META.get("HTTP_X_API_KEY", "")
    return key.strip() or None


def _token_load(prefix: str, secret: str) -> ApiToken | None:
    creator_role = Membership.objects.filter(team=OuterRef("team_id"), user=OuterRef("created_by_id")).values("role")[:1]
    token = (ApiToken.objects.select_related("team", "app").annotate(creator_role=Subquery(creator_role))
             .filter(prefix=prefix).first())
    if token is None or not token_matches(secret, token.secret_hash):
        return None
    token.effective_scopes = token_effective_scopes(token)
    return token


# Resolved tokens per process, keyed by the presented token's hash, valid while the resolution
# stamp holds (config.stamp: any revocation, role change, deletion... moves it in its own commit).
_resolved: StampedCache[ApiToken] = StampedCache()


def token_authenticate(raw: str) -> ApiToken:
    """The live token for ``raw``, or ``AuthenticationFailed``. Revoked and expired tokens fail."""
    parts = token_split(raw)
    if parts is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    prefix, secret = parts
    cached = _resolved.get_or_load(token_hash(raw), lambda: _token_load(prefix, secret))
    if cached is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    token = copy.copy(cached)  # this request's own instance; the cached one stays as loaded
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("Token revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("Token expired.")
    # last_used_at is informational: write it at most once a minute to keep the hot path cheap.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = cached.last_used_at = now
    return token


def token_effective_scopes(token: ApiToken) -> set[str]:
    """The token's scopes within its creator's current role in the team: a demoted creator's
    tokens lose what the role lost, a removed creator's (revoked anyway) keep nothing. A token
    without a creator (command line, demo) has its scopes."""
    scopes = set(token.scopes)
    if token.created_by_id is None:
        return scopes
    return scopes & ROLE_SCOPES.get(getattr(token, "creator_role", None) or "", set())


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[TokenUser, ApiToken] | None:
        raw = token_from_header(request)
        if raw is None:
            if request.META.get("HTTP_AUTHORIZATION"):
                raise exceptions.AuthenticationFailed("Unsupported authorization scheme; use Bearer.")
            return None
        token = token_authenticate(raw)
        return TokenUser(token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
