"""What the Dify-style and Coze-style views share: token-only authentication, the app a token
runs, team-scoped (and app-scoped) run lookups, starting runs and streams.

An app-bound token runs its app's entry workflow (its active version). A team token without an app
can still read and stop its team's runs by id and run a workflow named in the path, but the
endpoints that run or describe "the app" answer ``app_unavailable`` (see docs/api-decisions.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.authentication import ApiTokenAuthentication
from accounts.models import ApiToken
from accounts.permissions import request_team
from config.errors import AppUnavailable, NotFound
from config.fastjson import FastJSONRenderer
from config.stamp import StampedCache
from runs.apis import request_token, request_user
from runs.cursor import stream_slot
from runs.models import Run
from runs.sse import EventStreamRenderer, RunFollower
from workflows.models import App, Workflow, WorkflowVersion

NO_APP_MESSAGE = ("This token is not bound to an app. Create an app token (POST /api/v1/tokens with appId) "
                  "to call the app's run endpoints.")


class DialectView(APIView):
    """Token-only (these APIs are for programs, like Dify's and Coze's); SSE clients accepted."""

    authentication_classes = [ApiTokenAuthentication]
    renderer_classes = [FastJSONRenderer, EventStreamRenderer]
    app_tokens = True  # every lookup below is narrowed to an app-bound token's app
    required_scopes: Any = "run"


def token_app(request: Request) -> App | None:
    auth = getattr(request, "auth", None)
    return auth.app if isinstance(auth, ApiToken) and auth.app_id else None


def app_required(request: Request) -> App:
    """The app of the request's app-bound token, enabled; ``AppUnavailable`` otherwise."""
    app = token_app(request)
    if app is None:
        raise AppUnavailable(NO_APP_MESSAGE)
    if not app.enabled:
        raise AppUnavailable("The app is disabled.")
    return app


# Entry workflows (with their published version) per process, valid while the resolution stamp
# holds (config.stamp: publishing, or any change to the app or workflow, moves it).
_entries: StampedCache[Workflow] = StampedCache()


def app_entry_workflow(app: App) -> Workflow:
    """The app's entry workflow with a published active version; ``AppUnavailable`` otherwise."""
    workflow = _entries.get_or_load(
        (app.pk, app.team_id, app.entry_workflow_id),
        lambda: Workflow.objects.select_related("app", "active_version").filter(
            pk=app.entry_workflow_id, team_id=app.team_id).first() if app.entry_workflow_id else None)
    workflow = copy.copy(workflow) if workflow is not None else None
    if workflow is None:
        raise AppUnavailable("The app has no entry workflow.")
    if workflow.active_version_id is None:
        raise AppUnavailable("The app's workflow has no published version.")
    return workflow


def request_workflow_version(request: Request, value: str) -> tuple[Workflow, WorkflowVersion | None]:
    """A workflow named in a path: a published version id (that version) or a workflow id (its
    active version), of the request's team and, for an app token, of its app. Else ``NotFound``."""
    team = request_team(request)
    app = token_app(request)
    versions = WorkflowVersion.objects.filter(team=team, draft=False).select_related("workflow", "workflow__app")
    version = None
    try:
        version = versions.filter(pk=value).first()
        workflow = version.workflow if version else Workflow.objects.select_related("app", "active_version").filter(
            team=team, pk=value).first()
    except Exception:  # a malformed id is a missing row
        workflow = None
    if workflow is None or (app is not None and workflow.app_id != app.pk):
        raise NotFound("Workflow not found.")
    return workflow, version


def stream_start(request: Request, start: Callable[[Callable[[Run], None]], Run]) -> tuple[Run, RunFollower]:
    """Start a streaming run and follow it: ``start(on_recorded)`` starts the run (passing
    ``on_recorded`` to ``run_start``). The stream's slot is taken first, so a stream past the stream
    limits (429) starts nothing; the follower subscribes to the run's feed once the run is recorded,
    before its executor has it, so every event reaches the stream live and the stream opens without
    reading the log. A repeated idempotency key (or Coze ``x-run-id``) answers its first run, whose
    log is replayed from the first event. A client that goes away neither stops nor loses the run."""
    token, user = request_token(request), request_user(request)
    slot = stream_slot(team_id=request_team(request).pk, token_id=token.pk if token else None,
                       user_id=getattr(user, "pk", None))
    followers: list[RunFollower] = []

    def subscribe(run: Run) -> None:
        followers.append(RunFollower(run.pk, slot=slot, fresh=True))

    try:
        run = start(subscribe)
    except BaseException:
        for follower in followers:
            follower.close()
        slot.release()
        raise
    if followers:
        return run, followers[0]
    return run, RunFollower(run.pk, slot=slot)


def epoch_seconds(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return int(value.timestamp())


def epoch_ms(value: datetime | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return int(value.timestamp() * 1000)


def error_message(error: Any) -> str | None:
    """A run's or node's error as one string (the dialects' ``error`` fields are strings)."""
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error)
