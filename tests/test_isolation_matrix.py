"""Authentication, scope and tenant isolation for every API route, generated from the URL configuration.

For every route that ``tests.conftest.api_routes()`` finds (under /api/v1/, /v1/ and the root run
dialect) and every method its view implements:

1. ``anonymous``: no credentials -> 401.
2. ``scope``: a team A token holding every scope except the one the view requires -> 403.
3. ``tenant`` (routes with a path parameter): team A's objects requested by a team B token and by
   a signed-in team B user -> 404, and no row changed (``db_snapshot``). The session half is
   skipped for views that do not accept session authentication (they cannot be reached that way).

Extending it
- Every URL kwarg needs an entry in ``URL_KWARG_FACTORIES``: ``factory(team, ctx) -> str`` makes
  an object of ``team`` and returns the value to put in the URL. ``ctx`` is shared by the kwargs of
  one route, so dependent kwargs use the same objects (``number`` is a version of the workflow
  behind ``workflow_id``): get shared objects with ``ctx_get(ctx, key, make)``. A route with a
  kwarg missing here fails, saying which factory to add.
- ``OPT_OUTS`` lists the parts a route skips, by its OpenAPI-style path, each with the reason. A
  view with ``public = True`` must be listed there. Keep it tiny.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.authentication import SessionAuthentication
from rest_framework.test import APIClient

from accounts.invitations import invitation_create
from accounts.models import ALL_SCOPES, Role, Team
from accounts.permissions import required_scope
from accounts.services import credential_create, token_create
from runs.models import NodeRun, Run
from tests.conftest import (
    ApiRoute,
    api_routes,
    app_make,
    client_with_session,
    client_with_token,
    db_snapshot,
    member_make,
    published_make,
    unique,
)


def ctx_get(ctx: dict[str, Any], key: str, make: Callable[[], Any]) -> Any:
    """The object ``key`` of this route's context, made once."""
    if key not in ctx:
        ctx[key] = make()
    return ctx[key]


def _app(team: Team, ctx: dict[str, Any]) -> Any:
    return ctx_get(ctx, "app", lambda: app_make(team))


def _workflow(team: Team, ctx: dict[str, Any]) -> Any:
    return ctx_get(ctx, "workflow", lambda: published_make(team, app=_app(team, ctx)))


def _run(team: Team, ctx: dict[str, Any]) -> Run:
    def make() -> Run:
        workflow = _workflow(team, ctx)
        now = timezone.now()
        return Run.objects.create(
            team=team, app=workflow.app, workflow=workflow, version=workflow.active_version, status="running",
            mode="async", inputs={"name": "a"}, business_time=now, deadline=now + timedelta(hours=1),
        )
    return ctx_get(ctx, "run", make)


def _node_run(team: Team, ctx: dict[str, Any]) -> NodeRun:
    def make() -> NodeRun:
        run = _run(team, ctx)
        return NodeRun.objects.create(
            team=team, run=run, key="notify", node_id="notify", node_type="http", status="waiting",
            receipt_token="rcpt_" + secrets.token_urlsafe(16), started_at=timezone.now(),
        )
    return ctx_get(ctx, "node_run", make)


def _trigger(team: Team, ctx: dict[str, Any]) -> Any:
    from workflows.triggers import trigger_create

    return ctx_get(ctx, "trigger", lambda: trigger_create(team=team, workflow=_workflow(team, ctx), kind="webhook"))


def _batch_job(team: Team, ctx: dict[str, Any]) -> Any:
    from runs.models import BatchJob

    def make() -> Any:
        workflow = _workflow(team, ctx)
        return BatchJob.objects.create(team=team, job_id="matrix-job", workflow=workflow,
                                       version=workflow.active_version, total=0)
    return ctx_get(ctx, "batch_job", make)


def _dead_letter(team: Team, ctx: dict[str, Any]) -> Any:
    from runs.deadletters import dead_letter_add

    def make() -> Any:
        run = _run(team, ctx)
        Run.objects.filter(pk=run.pk).update(status="failed")
        return dead_letter_add(run=run, reason="retries_exhausted")
    return ctx_get(ctx, "dead_letter", make)


def _member(team: Team, ctx: dict[str, Any]) -> str:
    user = member_make(team, Role.EDITOR)
    return str(user.memberships.get(team=team).id)


# kwarg -> factory(team, ctx) -> the URL value of an object of ``team``.
URL_KWARG_FACTORIES: dict[str, Callable[[Team, dict[str, Any]], str]] = {
    "app_id": lambda team, ctx: str(_app(team, ctx).id),
    "workflow_id": lambda team, ctx: str(_workflow(team, ctx).id),
    "number": lambda team, ctx: str(_workflow(team, ctx).active_version.number),
    "token_id": lambda team, ctx: str(token_create(team=team, name="matrix", scopes=["read"])[0].id),
    "credential_id": lambda team, ctx: str(
        credential_create(team=team, name="matrix", kind="bearer", secrets={"token": "s3cret"}).id
    ),
    "member_id": _member,
    "invitation_id": lambda team, ctx: str(invitation_create(team=team, email=f"{unique('inv')}@example.com",
                                                             role=Role.VIEWER).id),
    "run_id": lambda team, ctx: str(_run(team, ctx).id),
    "task_id": lambda team, ctx: str(_run(team, ctx).task_id),
    "workflow_run_id": lambda team, ctx: str(_run(team, ctx).id),
    "node_id": lambda team, ctx: _node_run(team, ctx).node_id,
    "receipt_token": lambda team, ctx: _node_run(team, ctx).receipt_token,
    "trigger_id": lambda team, ctx: str(_trigger(team, ctx).id),
    "trigger_key": lambda team, ctx: _trigger(team, ctx).key,
    "job_id": lambda team, ctx: _batch_job(team, ctx).job_id,
    "dead_letter_id": lambda team, ctx: str(_dead_letter(team, ctx).id),
}

ANONYMOUS, SCOPE, TENANT = "anonymous", "scope", "tenant"

# OpenAPI-style path -> (parts skipped, why). Keep this tiny: every entry is a hole in the matrix.
OPT_OUTS: dict[str, tuple[set[str], str]] = {
    "/health": ({ANONYMOUS, SCOPE, TENANT}, "the Coze runtime's liveness probe: public, reads nothing."),
    "/v1/{path}": (
        {ANONYMOUS, SCOPE, TENANT},
        "every unknown Dify-style path answers Dify's JSON 404 to anyone, as Dify does before it reads "
        "the token; tested in tests/runs/test_dify_api.py.",
    ),
    "/v1/workflows/tasks/{task_id}/stop": (
        {TENANT},
        "as Dify, stop answers {\"result\": \"success\"} for any task id; another team's run is "
        "left unchanged (tests/runs/test_dify_api.py asserts it).",
    ),
    "/v1/workflows/{task_id}/stop": ({TENANT}, "the older path of the stop above."),
    "/hooks/{trigger_key}": (
        {ANONYMOUS, SCOPE, TENANT},
        "public webhook trigger: no token by design; the unguessable trigger key (and the optional "
        "HMAC signature) is the credential, tested in tests/runs.",
    ),
    "/api/v1/callbacks/{run_id}/{node_id}/{receipt_token}": (
        {ANONYMOUS, SCOPE, TENANT},
        "async-step callback: authenticated by its per-node receipt token, not by an API token; "
        "tested in tests/runs.",
    ),
}

BODY_METHODS = {"POST", "PUT", "PATCH"}


def _cases() -> list[Any]:
    cases = []
    for route in api_routes():
        for method in route.methods():
            cases.append(pytest.param(route, method, id=f"{method} {route.path}"))
    return cases


def _send(client: APIClient, method: str, url: str) -> Any:
    kwargs: dict[str, Any] = {"format": "json"}
    if method in BODY_METHODS:
        kwargs["data"] = {}
    return getattr(client, method.lower())(url, **kwargs)


def _skips(route: ApiRoute) -> set[str]:
    return OPT_OUTS.get(route.path, (set(), ""))[0]


def _urls(route: ApiRoute, team: Team) -> str:
    missing = [k for k in route.kwargs if k not in URL_KWARG_FACTORIES]
    if missing:
        pytest.fail(
            f"{route.path}: no factory for URL kwarg(s) {missing}. Add one to URL_KWARG_FACTORIES in "
            f"tests/test_isolation_matrix.py (factory(team, ctx) -> str making an object of the team)."
        )
    ctx: dict[str, Any] = {}
    return route.url({k: URL_KWARG_FACTORIES[k](team, ctx) for k in route.kwargs})


def _needed_scope(route: ApiRoute, method: str) -> str | None:
    if route.view_class is None or getattr(route.view_class, "public", False):
        return None
    return required_scope(route.view_class(), method)


def _method_exists(response: Any) -> bool:
    return response.status_code != 405


def test_every_route_is_covered() -> None:
    routes = api_routes()
    assert any(r.path == "/api/v1/apps/{app_id}" for r in routes), "the route walker found no management routes"
    public = [r.path for r in routes if getattr(r.view_class, "public", False) and r.path not in OPT_OUTS]
    assert not public, f"public views must be listed in OPT_OUTS with a reason: {public}"


@pytest.mark.parametrize(("route", "method"), _cases())
def test_anonymous_is_401(route: ApiRoute, method: str, team_a: Team, team_b: Team) -> None:
    if ANONYMOUS in _skips(route):
        pytest.skip(OPT_OUTS[route.path][1])
    url = _urls(route, team_a)
    before = db_snapshot()
    response = _send(APIClient(), method, url)
    if route.view_class is None and not _method_exists(response):
        return
    assert response.status_code == 401, (url, response.status_code, getattr(response, "data", None))
    assert db_snapshot() == before


@pytest.mark.parametrize(("route", "method"), _cases())
def test_missing_scope_is_403(route: ApiRoute, method: str, team_a: Team, team_b: Team) -> None:
    if SCOPE in _skips(route):
        pytest.skip(OPT_OUTS[route.path][1])
    needed = _needed_scope(route, method)
    if needed is None:
        pytest.skip("the view requires no scope")
    # every other scope, "manage" included: it does not administer members or tokens
    alternatives = {needed} if isinstance(needed, str) else set(needed)  # a tuple: any one of them
    client = client_with_token(team_a, [s for s in ALL_SCOPES if s not in alternatives])
    url = _urls(route, team_a)
    before = db_snapshot()
    response = _send(client, method, url)
    assert response.status_code == 403, (url, needed, response.status_code, getattr(response, "data", None))
    assert db_snapshot() == before


@pytest.mark.parametrize(("route", "method"), [c for c in _cases() if c.values[0].kwargs])
def test_other_team_gets_404_and_changes_nothing(route: ApiRoute, method: str, team_a: Team, team_b: Team,
                                                 user_b: Any) -> None:
    if TENANT in _skips(route):
        pytest.skip(OPT_OUTS[route.path][1])
    url = _urls(route, team_a)
    clients = {"team B token": client_with_token(team_b, list(ALL_SCOPES))}
    auth_classes = getattr(route.view_class, "authentication_classes", [])
    if route.view_class is None or any(issubclass(c, SessionAuthentication) for c in auth_classes):
        clients["team B session"] = client_with_session(user_b)
    before = db_snapshot()
    for label, client in clients.items():
        response = _send(client, method, url)
        if route.view_class is None and not _method_exists(response):
            continue
        assert response.status_code == 404, (label, url, response.status_code, getattr(response, "data", None))
    assert db_snapshot() == before, "a request for another team's object changed the database"
