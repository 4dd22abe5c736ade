"""Django side: a bench team with a published workflow and tokens, made through the services
(the same path the product and the demo use). Import only after ``django.setup()``."""

from __future__ import annotations

import time
import uuid
from typing import Any

from accounts.models import ALL_SCOPES
from accounts.services import team_create, token_create, user_get_or_create
from workflows.services import app_create, workflow_create, workflow_publish


def team_with_workflow(graph: dict[str, Any], name: str = "Bench") -> dict[str, Any]:
    """A fresh team, app, published workflow, a team token and an app token."""
    suffix = uuid.uuid4().hex[:8]
    user, _ = user_get_or_create(email=f"bench-{suffix}@weft.local")
    team = team_create(name=f"{name} {suffix}", slug=f"bench-{suffix}", owner=user)
    app = app_create(team=team, name=f"{name} app", description="benchmarks", tags=["bench"], created_by=user)
    workflow = workflow_create(team=team, app=app, name=name, graph=graph, created_by=user)
    workflow_publish(team=team, workflow=workflow, published_by=user)
    _, token = token_create(team=team, name="bench", scopes=list(ALL_SCOPES), created_by=user)
    _, app_token = token_create(team=team, name="bench-app", scopes=["run", "read"], app=app, created_by=user)
    return {"team": team, "app": app, "workflow": workflow, "token": token, "app_token": app_token}


def timed_run(site: dict[str, Any], inputs: dict[str, Any], mode: str = "blocking") -> tuple[float, float, Any]:
    """(seconds in run_create, seconds in run_execute, the finished run) for one blocking run."""
    from runs.executor import run_execute
    from runs.services import run_create

    t0 = time.perf_counter()
    run = run_create(team=site["team"], workflow=site["workflow"], inputs=inputs, mode=mode)
    t1 = time.perf_counter()
    finished = run_execute(run.pk)
    t2 = time.perf_counter()
    if finished is None or finished.status not in ("succeeded", "waiting"):
        raise RuntimeError(f"bench run ended {getattr(finished, 'status', None)}: {getattr(finished, 'error', None)}")
    return t1 - t0, t2 - t1, finished
