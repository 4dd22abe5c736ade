"""Shared fixtures: two teams (a second team always exists), users by role, API clients, factories.

Teams and people
- ``team_a`` (owner ``owner_a``, plus ``admin_a``, ``editor_a``, ``viewer_a``), ``team_b`` (owner
  ``user_b``). Users' emails are ``<role>@a.example`` / ``owner@b.example``; password ``PASSWORD``.

API clients (DRF ``APIClient``; JSON by default)
- ``client_a``: token of team A with every scope; ``client_a_read``, ``client_a_run``,
  ``client_a_manage``: single-scope tokens of team A; ``client_b``: every scope, team B;
  ``client_anon``: no credentials; ``session_client_a`` (owner_a), ``session_client_b`` (user_b),
  ``session_client_for(user)``: signed in through the session like the web UI.
- ``token_client(team, scopes, app=None)``: a client with a new token; ``.token`` is the secret.

Factories (plain functions, also exposed as fixtures returning them; each takes the team first)
- ``app_make(team, **fields)`` / ``app_factory``
- ``workflow_make(team, app=None, graph=None, **fields)`` / ``workflow_factory``
- ``published_make(team, graph=None, app=None)`` / ``published_workflow``: a workflow with an
  active version 1 of ``graph`` (default ``SIMPLE_GRAPH``). The version row is written directly,
  without the engine's validation, so fixtures never depend on the engine.

Helpers: ``api_routes()`` lists every API route of the URL configuration (used by the isolation
matrix and the OpenAPI test); ``db_snapshot()`` is every row the API can touch, to assert that a
refused request wrote nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from accounts.models import ALL_SCOPES, Membership, Role, Team
from accounts.permissions import SESSION_TEAM_KEY
from accounts.services import membership_add, team_create, token_create, user_get_or_create
from workflows.models import App, Workflow, WorkflowVersion

PASSWORD = "correct-horse-battery"

SIMPLE_GRAPH: dict[str, Any] = {
    "inputs": {"name": {"type": "string", "required": True}},
    "outputs": {"greeting": {"type": "string"}},
    "params": {},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "end", "type": "end", "config": {"outputs": {"greeting": "{{ inputs.name }}"}}},
    ],
    "edges": [{"from": "start", "to": "end"}],
}

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


# Factories -------------------------------------------------------------------------------------

def app_make(team: Team, **fields: Any) -> App:
    """An app of ``team`` (unique name unless given)."""
    fields.setdefault("name", unique("app"))
    return App.objects.create(team=team, **fields)


def workflow_make(team: Team, app: App | None = None, graph: dict[str, Any] | None = None, **fields: Any) -> Workflow:
    """A draft workflow in ``app`` (a new app when None); the app's entry workflow when it had none."""
    app = app or app_make(team)
    fields.setdefault("name", unique("workflow"))
    if graph is not None:
        fields["graph"] = graph
    workflow = Workflow.objects.create(team=team, app=app, **fields)
    if app.entry_workflow_id is None:
        app.entry_workflow = workflow
        app.save(update_fields=["entry_workflow"])
    return workflow


def published_make(team: Team, graph: dict[str, Any] | None = None, app: App | None = None) -> Workflow:
    """A workflow whose draft ``graph`` is published as its active version 1."""
    import copy

    graph = copy.deepcopy(graph if graph is not None else SIMPLE_GRAPH)
    workflow = workflow_make(team, app=app, graph=graph)
    version = WorkflowVersion.objects.create(team=team, workflow=workflow, number=1, graph=copy.deepcopy(graph))
    workflow.active_version = version
    workflow.save(update_fields=["active_version"])
    return workflow


def user_make(email: str) -> User:
    user, _ = user_get_or_create(email=email, password=PASSWORD)
    return user


def member_make(team: Team, role: str, email: str | None = None) -> User:
    membership = membership_add(team=team, email=email or f"{unique(role)}@{team.slug}.example", role=role,
                                password=PASSWORD)
    return membership.user


# Teams and users ---------------------------------------------------------------------------------

@pytest.fixture
def owner_a(db: Any) -> User:
    return user_make("owner@a.example")


@pytest.fixture
def team_a(owner_a: User) -> Team:
    return team_create(name="Team A", slug="team-a", owner=owner_a)


@pytest.fixture
def user_b(db: Any) -> User:
    return user_make("owner@b.example")


@pytest.fixture
def team_b(user_b: User) -> Team:
    return team_create(name="Team B", slug="team-b", owner=user_b)


@pytest.fixture
def admin_a(team_a: Team) -> User:
    return member_make(team_a, Role.ADMIN, "admin@a.example")


@pytest.fixture
def editor_a(team_a: Team) -> User:
    return member_make(team_a, Role.EDITOR, "editor@a.example")


@pytest.fixture
def viewer_a(team_a: Team) -> User:
    return member_make(team_a, Role.VIEWER, "viewer@a.example")


# Clients -----------------------------------------------------------------------------------------

def client_with_token(team: Team, scopes: list[str], app: App | None = None) -> APIClient:
    """An API client sending a new token of ``team`` as ``Authorization: Bearer``; ``.token`` is it."""
    _, secret = token_create(team=team, name=unique("token"), scopes=scopes, app=app)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.token = secret  # type: ignore[attr-defined]
    return client


def client_with_session(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def page_client(user: User, team: Team) -> Any:
    """A Django test client signed in as ``user`` with ``team`` as the session's current team (the
    web pages' team), for page tests."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_TEAM_KEY] = str(team.pk)
    session.save()
    return client


@pytest.fixture(autouse=True)
def settings_not_leaked() -> Iterator[None]:
    """Every test ends with the settings it started with: an override undone out of order (an
    ``@override_settings`` together with the ``settings`` fixture) would leak into every later test
    of the process, far from its cause; this fails the test that leaked instead."""
    from django.conf import settings as django_settings

    before = django_settings._wrapped
    yield
    leaked = django_settings._wrapped is not before
    django_settings._wrapped = before
    assert not leaked, "this test left Django's settings overridden"


@pytest.fixture(scope="session", autouse=True)
def test_database_released(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """At the end of the session, cut the connections that servers and workers killed by the tests
    may leave behind on PostgreSQL, so that the test database can be dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    connection.close()


@pytest.fixture
def token_client(db: Any) -> Callable[..., APIClient]:
    return client_with_token


@pytest.fixture
def session_client_for(db: Any) -> Callable[[User], APIClient]:
    return client_with_session


@pytest.fixture
def client_a(team_a: Team, team_b: Team) -> APIClient:
    return client_with_token(team_a, list(ALL_SCOPES))


@pytest.fixture
def client_a_read(team_a: Team, team_b: Team) -> APIClient:
    return client_with_token(team_a, ["read"])


@pytest.fixture
def client_a_run(team_a: Team, team_b: Team) -> APIClient:
    return client_with_token(team_a, ["run"])


@pytest.fixture
def client_a_manage(team_a: Team, team_b: Team) -> APIClient:
    return client_with_token(team_a, ["manage"])


@pytest.fixture
def client_b(team_a: Team, team_b: Team) -> APIClient:
    return client_with_token(team_b, list(ALL_SCOPES))


@pytest.fixture
def client_anon(db: Any) -> APIClient:
    return APIClient()


@pytest.fixture
def session_client_a(team_a: Team, team_b: Team, owner_a: User) -> APIClient:
    return client_with_session(owner_a)


@pytest.fixture
def session_client_b(team_a: Team, team_b: Team, user_b: User) -> APIClient:
    return client_with_session(user_b)


# Factory fixtures --------------------------------------------------------------------------------

@pytest.fixture
def app_factory(db: Any) -> Callable[..., App]:
    return app_make


@pytest.fixture
def workflow_factory(db: Any) -> Callable[..., Workflow]:
    return workflow_make


@pytest.fixture
def published_workflow(db: Any) -> Callable[..., Workflow]:
    return published_make


# Routes and snapshots ----------------------------------------------------------------------------

API_PREFIXES = ("/api/v1/", "/v1/")
NOT_API_PREFIXES = ("/admin/", "/api/schema/", "/api/docs/", "/api/redoc/")


@dataclass(frozen=True)
class ApiRoute:
    path: str  # OpenAPI style: /api/v1/apps/{app_id}
    name: str | None
    callback: Any
    view_class: type | None  # None for a function view that is not DRF's

    @property
    def kwargs(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def is_drf(self) -> bool:
        return self.view_class is not None and issubclass(self.view_class, APIView)

    def methods(self) -> list[str]:
        """The methods the view implements (a plain function view: every method, 405s skipped by callers)."""
        if self.view_class is None:
            return ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return [m.upper() for m in self.view_class.http_method_names
                if m not in ("options", "head", "trace") and hasattr(self.view_class, m)]

    def url(self, values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], self.path)


def _regex_to_path(regex: str) -> str:
    """A regex URL pattern as an OpenAPI-style path: named groups become ``{name}``."""
    regex = regex.lstrip("^").removesuffix("$").removesuffix(r"\Z")
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name_end = regex.index(">", i)
            name = regex[i + 4:name_end]
            depth, j = 1, name_end + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1] != "\\" else 0
                j += 1
            out.append("{" + name + "}")
            i = j
        else:
            out.append(regex[i].replace("\\", ""))
            i += 1
    return "".join(out)


def _pattern_to_path(pattern: Any) -> str:
    text = str(pattern)
    if pattern.__class__.__name__ == "RegexPattern":
        return _regex_to_path(text)
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + _pattern_to_path(entry.pattern))
        else:
            yield prefix + _pattern_to_path(entry.pattern), entry


def api_routes() -> list[ApiRoute]:
    """Every API route of the URL configuration: under /api/v1/ and /v1/, and every DRF view
    elsewhere (the Coze-style root dialect, /hooks/...), except the admin and the schema/docs."""
    routes = []
    for path, entry in _walk(get_resolver().url_patterns, "/"):
        callback = entry.callback
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if path.startswith(NOT_API_PREFIXES) or (view_class and view_class.__module__.startswith("drf_spectacular")):
            continue
        is_drf = view_class is not None and issubclass(view_class, APIView)
        if path.startswith(API_PREFIXES) or is_drf:
            routes.append(ApiRoute(path=path, name=entry.name, callback=callback, view_class=view_class))
    return routes


# Rows the API may write. Bookkeeping that any authenticated request updates is left out.
_SNAPSHOT_APPS = ("accounts", "workflows", "runs", "auth")
_SNAPSHOT_IGNORED_FIELDS = {"last_used_at", "last_login"}


def db_snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of the accounts, workflows, runs and auth models (minus usage bookkeeping)."""
    snapshot = {}
    for label in _SNAPSHOT_APPS:
        for model in django_apps.get_app_config(label).get_models():
            rows = [{k: v for k, v in row.items() if k not in _SNAPSHOT_IGNORED_FIELDS}
                    for row in model.objects.order_by("pk").values()]
            snapshot[model._meta.label] = rows
    return snapshot


def member_of(team: Team, user: User) -> Membership:
    return Membership.objects.get(team=team, user=user)
