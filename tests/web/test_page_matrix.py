"""The isolation matrix for pages, generated from ``web/urls.py`` (the API's is tests/test_isolation_matrix.py).

For every page URL (objects made by the API matrix's ``URL_KWARG_FACTORIES``):
1. a GET by a viewer of the team changes nothing (every row the same, ``db_snapshot``), and never
   answers 5xx;
2. every view that changes something answers only POST: a GET (by anyone, even an owner) is 405
   and changes nothing; the list of such views is pinned here, so a new one is added deliberately;
3. a page of team A's object requested by a signed-in member of team B is 404 (GET for pages, POST
   for actions), and nothing changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from accounts.models import Role, Team
from tests.conftest import db_snapshot, member_make, page_client
from tests.test_isolation_matrix import URL_KWARG_FACTORIES
from web import urls as web_urls

# Views that change something: POST only, with the scope they need.
ACTIONS = {
    "member-role": "admin", "member-remove": "admin", "token-revoke": "admin", "invitation-revoke": "admin",
    "webhook-secret-rotate": "admin",
    "credential-edit": "manage",
    "app-delete": "manage", "workflow-delete": "manage", "workflow-draft": "manage", "workflow-validate": "manage",
    "workflow-publish": "manage", "workflow-run": "run", "workflow-run-node": "run", "workflow-version-activate": "manage",
    "workflow-version-restore": "manage", "trigger-action": "manage", "run-stop": "run", "run-replay": "run",
    "team-switch": None,  # signed-in user, any team role (accounts.team_switch: require_POST)
}
NOT_TEAM_PAGES = {"static", "login", "logout", "signup", "home", "team-new", "team-switch",
                  # links from mail, for whoever holds them (an unknown one is a 404 page for anyone)
                  "verify", "verify-resend", "invitation", "password-reset", "password-reset-sent",
                  "password-reset-confirm"}
# Path values of the mailed links: ones that name nothing (a GET of them must still write nothing).
LINK_KWARGS = {"token": lambda team, ctx: "not-a-valid-token", "uidb64": lambda team, ctx: "MQ"}


def _patterns() -> list[URLPattern]:
    return [p for p in web_urls.urlpatterns if isinstance(p, URLPattern) and p.name]


def _url(pattern: URLPattern, team: Team) -> str:
    ctx: dict[str, Any] = {}
    factories = {**URL_KWARG_FACTORIES, **LINK_KWARGS}
    kwargs = {k: factories[k](team, ctx) for k in pattern.pattern.converters if k != "path"}
    if "path" in pattern.pattern.converters or pattern.name == "static":
        return "/static/css/app.css"
    return reverse(f"web:{pattern.name}", kwargs=kwargs)


def _client(user: Any, team: Team) -> Client:
    return page_client(user, team)


def _cases() -> list[Any]:
    return [pytest.param(p, id=p.name) for p in _patterns()]


def test_the_pinned_actions_are_exactly_the_post_only_views() -> None:
    names = {p.name for p in _patterns()}
    assert set(ACTIONS) <= names
    for pattern in _patterns():
        scope = getattr(pattern.callback, "weft_action_scope", None)
        if pattern.name in ACTIONS and ACTIONS[pattern.name] is not None:
            assert scope == ACTIONS[pattern.name], pattern.name
        elif pattern.name not in ACTIONS:
            assert scope is None, f"{pattern.name} is POST-only: pin it in ACTIONS"


@pytest.mark.parametrize("pattern", _cases())
def test_a_viewer_get_changes_nothing(pattern: URLPattern, team_a: Team, team_b: Team) -> None:
    viewer = member_make(team_a, Role.VIEWER)
    url = _url(pattern, team_a)
    client = _client(viewer, team_a)
    before = db_snapshot()
    response = client.get(url)
    assert response.status_code < 500, (url, response.status_code)
    if pattern.name in ACTIONS:
        assert response.status_code == 405, url
    assert db_snapshot() == before, url


@pytest.mark.parametrize("pattern", [p for p in _cases() if p.values[0].name in ACTIONS])
def test_an_action_refuses_get_even_from_an_owner(pattern: URLPattern, team_a: Team, owner_a: Any) -> None:
    url = _url(pattern, team_a)
    client = _client(owner_a, team_a)
    before = db_snapshot()
    assert client.get(url).status_code == 405
    assert client.head(url).status_code == 405
    assert db_snapshot() == before


@pytest.mark.parametrize("pattern", [p for p in _cases() if p.values[0].name not in NOT_TEAM_PAGES
                                     and p.values[0].pattern.converters])
def test_another_teams_page_is_404(pattern: URLPattern, team_a: Team, team_b: Team, user_b: Any) -> None:
    url = _url(pattern, team_a)
    client = _client(user_b, team_b)  # the owner of team B: every scope, in its own team
    before = db_snapshot()
    method = "post" if pattern.name in ACTIONS else "get"
    response = getattr(client, method)(url)
    assert response.status_code == 404, (method, url, response.status_code)
    assert db_snapshot() == before
