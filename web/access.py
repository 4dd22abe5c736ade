"""Who may see and do what in the pages: the session's current team and the member's role.

Pages enforce the same rules as the API (``accounts.models.ROLE_SCOPES``): a viewer reads, an
editor builds and runs (``manage``/``run``), owners and admins also manage members (``admin``).
``team_view`` (pages) and ``team_action`` (POST-only views that change something) give every view
its ``Access`` and turn the services' domain errors into what a page shows: ``NotFound`` (another
team's object, a malformed id) is a 404, a missing scope a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ROLE_SCOPES, Membership, Team
from accounts.permissions import request_membership
from accounts.selectors import user_teams
from config.errors import NotFound


@dataclass(frozen=True)
class Access:
    """The signed-in member's view of their current team."""

    membership: Membership

    @property
    def team(self) -> Team:
        return self.membership.team

    @property
    def role(self) -> str:
        return self.membership.role

    @property
    def scopes(self) -> set[str]:
        return set(ROLE_SCOPES.get(self.role, set()))

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def can_edit(self) -> bool:
        return self.can("manage")

    @property
    def can_run(self) -> bool:
        return self.can("run")

    @property
    def can_admin(self) -> bool:
        return self.can("admin")


def _with_access(view: Callable[..., HttpResponse], needed: Callable[[HttpRequest], str]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = request_membership(request)
        if membership is None:
            return redirect("web:team-new")
        access = Access(membership)
        if not access.can(needed(request)):
            raise PermissionDenied(f"Your role ({access.role}) cannot do this.")
        try:
            return view(request, access, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.detail) from None

    return wrapper


def team_view(read: str = "read", write: str = "manage") -> Callable:
    """Decorate a page view ``view(request, access, ...)`` that shows something on GET and may take
    a form on POST (list pages with a "create" form): GET/HEAD need the ``read`` scope, a POST the
    ``write`` scope (403 otherwise). The view changes nothing unless the method is POST."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        return _with_access(view, lambda request: read if request.method in ("GET", "HEAD") else write)

    return decorate


def team_action(scope: str) -> Callable:
    """Decorate a view that changes something (activate, restore, stop, replay, delete, revoke, ...):
    POST only (405 for any other method, before anything is looked up) and the ``scope`` whatever
    the method (CSRF applies to every POST)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        action = require_POST(_with_access(view, lambda request: scope))
        action.weft_action_scope = scope  # type: ignore[attr-defined]  # read by the page matrix test
        return action

    return decorate


def page(request: HttpRequest, access: Access, template: str, context: dict[str, Any] | None = None,
         status: int = 200) -> HttpResponse:
    """Render a team page with what the layout needs: the access, and the teams for the switcher."""
    base = {"access": access, "team": access.team, "my_teams": [m.team for m in user_teams(user=request.user)]}
    return render(request, template, {**base, **(context or {})}, status=status)
