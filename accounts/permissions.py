"""Permissions by scope: a token's scopes, or the scopes a member's role grants.

Views declare ``required_scopes = {"GET": "read", "POST": "manage", ...}`` (or one string for
every method). The team a request acts for comes from ``request_team``: the token's team, or the
signed-in user's current team (session), never from the URL.

An **app-bound token** reaches only its app: views that accept one declare ``app_tokens = True``
and narrow their lookups with ``request_app_id`` (the run APIs of every dialect); every other view
(team administration, apps, workflows, credentials, ...) answers 403 to it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from accounts.authentication import TokenUser
from accounts.models import ROLE_SCOPES, ApiToken, Membership, Team

SESSION_TEAM_KEY = "weft_team_id"


def request_membership(request: Any) -> Membership | None:
    """The signed-in user's membership in their current team (first team when none chosen)."""
    cached = getattr(request, "_weft_membership", False)
    if cached is not False:
        return cached
    user = getattr(request, "user", None)
    membership = None
    if user is not None and getattr(user, "is_authenticated", False) and not isinstance(user, TokenUser):
        memberships = Membership.objects.select_related("team").filter(user=user)
        team_id = request.session.get(SESSION_TEAM_KEY) if hasattr(request, "session") else None
        if team_id:
            membership = memberships.filter(team_id=team_id).first()
        if membership is None:
            membership = memberships.order_by("created_at").first()
    request._weft_membership = membership
    return membership


def request_team(request: Any) -> Team:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.team
    membership = request_membership(request)
    if membership is None:
        raise exceptions.PermissionDenied("You are not a member of any team.")
    return membership.team


def request_app_id(request: Any) -> Any:
    """The app an app-bound token is limited to, or None (team tokens and signed-in members)."""
    auth = getattr(request, "auth", None)
    return auth.app_id if isinstance(auth, ApiToken) else None


def request_user(request: Any) -> Any:
    """The signed-in Django user, or None for a token (a token acts for its team, not a person)."""
    user = getattr(request, "user", None)
    if user is None or isinstance(user, TokenUser) or not getattr(user, "is_authenticated", False):
        return None
    return user


def request_scopes(request: Any) -> set[str]:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        scopes = getattr(auth, "effective_scopes", None)
        return set(auth.scopes) if scopes is None else set(scopes)
    membership = request_membership(request)
    return set(ROLE_SCOPES.get(membership.role, set())) if membership else set()


def request_grantor(request: Any) -> tuple[Any, set[str]]:
    """Who a token created by this request acts for, and the most it may carry: a member's role
    scopes, or the creating token's own (effective) scopes and its creator."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return auth.created_by, request_scopes(request)
    return request_user(request), request_scopes(request)


# Reading runs: ``read`` reads every run the request may reach, ``run`` only the runs its token
# started (``runs.apis.request_run_owner``; API.md: "run (start, stop, read own runs)").
RUNS_READ = ("read", "run")


def required_scope(view: Any, method: str) -> str | tuple[str, ...] | None:
    """The scope a view needs for ``method``; a tuple: any one of them."""
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        return "read" if method in permissions.SAFE_METHODS else "manage"
    if isinstance(scopes, str | tuple):
        return scopes
    return scopes.get(method, scopes.get("*"))


class HasScope(permissions.BasePermission):
    """401 without credentials, 403 when the token or role lacks the view's scope."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "public", False):
            return True
        if request.user is None or not getattr(request.user, "is_authenticated", False):
            raise exceptions.NotAuthenticated()
        if request_app_id(request) is not None and not getattr(view, "app_tokens", False):
            raise exceptions.PermissionDenied("This token is bound to one app; this endpoint needs a team token.")
        needed = required_scope(view, request.method)
        if needed is None:
            return True
        have = request_scopes(request)
        alternatives = (needed,) if isinstance(needed, str) else needed
        if not have.intersection(alternatives):
            if not isinstance(request.auth, ApiToken) and request_membership(request) is None:
                raise exceptions.PermissionDenied("You are not a member of any team.")
            wanted = " or ".join(f"'{s}'" for s in alternatives)
            raise exceptions.PermissionDenied(f"This action needs the {wanted} scope.")
        return True
