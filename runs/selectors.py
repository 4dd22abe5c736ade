"""Reads for runs. Every lookup names the team; another team's run is ``NotFound``."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from accounts.models import Team
from accounts.selectors import row_get
from config.errors import InvalidInput, NotFound
from runs.models import NodeRun, Run, RunEvent


def _runs(team: Team, app_id: Any, token_id: Any = None) -> QuerySet[Run]:
    """The team's runs, narrowed to ``app_id`` when given (an app-bound token's reach) and to the
    runs ``token_id`` started when given (a token whose scopes reach only its own runs)."""
    qs = Run.objects.filter(team=team).select_related("workflow", "app", "version")
    qs = qs.filter(app_id=app_id) if app_id is not None else qs
    return qs.filter(token_id=token_id) if token_id is not None else qs


def run_get(*, team: Team, id: Any, app_id: Any = None, by: str = "id", token_id: Any = None) -> Run:
    """A run by its id (``by="id"``), its task id (``"task"``) or either (``"any"``); else NotFound
    (also for a run ``token_id``, when given, did not start)."""
    qs, text = _runs(team, app_id, token_id), str(id)
    if by == "id":
        return row_get(qs, "Run", pk=text)
    if by == "task":
        return row_get(qs, "Task", task_id=text)
    try:
        return qs.get(Q(pk=text) | Q(task_id=text))
    except Exception:  # missing, or not a UUID at all
        raise NotFound("Task not found.") from None


def node_runs(*, run: Run) -> QuerySet[NodeRun]:
    return NodeRun.objects.filter(run=run).order_by("index", "started_at")


def node_exception_counts(*, team: Team, run_ids: list[Any]) -> dict[str, int]:
    """Per run, the node failures it went on past (``on_error: continue`` or ``branch``: the
    engine records such a failure with its output, ``{"error": ...}``), by run id."""
    rows = (NodeRun.objects.filter(team=team, run_id__in=run_ids, status="failed")
            .filter(Q(outputs__isnull=False) | Q(port="error"))
            .values("run_id").annotate(n=Count("id")).values_list("run_id", "n"))
    return {str(run_id): n for run_id, n in rows}


# Per published (or draft-snapshot) version, which never changes: can a node go on past a failure?
_PAST_FAILURES: dict[Any, bool] = {}


def _goes_on_past_failures(version: Any) -> bool:
    known = _PAST_FAILURES.get(version.pk)
    if known is None:
        stack: list[Any] = [version.graph]
        known = False
        while stack and not known:
            item = stack.pop()
            if isinstance(item, dict):
                known = item.get("on_error") in ("continue", "branch") and "type" in item
                stack.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                stack.extend(v for v in item if isinstance(v, dict | list))
        if len(_PAST_FAILURES) > 4096:
            _PAST_FAILURES.clear()
        _PAST_FAILURES[version.pk] = known
    return known


def run_exception_count(*, team: Team, run: Run) -> int:
    """``node_exception_counts`` of one run, without a query when its version has no node that can
    go on past a failure (``on_error: continue`` / ``branch``): every blocking Dify answer asks."""
    version = run.version
    if version is not None and not _goes_on_past_failures(version):
        return 0
    return node_exception_counts(team=team, run_ids=[run.pk]).get(str(run.pk), 0)


def run_events(*, run: Run, after: int = 0, limit: int = 1000) -> list[RunEvent]:
    return list(RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])


def cursor_encode(row: Any) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, pk = json.loads(raw)
        return datetime.fromisoformat(created), str(pk)
    except Exception:
        raise InvalidInput("Invalid cursor.", errors=[{"path": "/cursor", "message": "not a cursor from this API"}]) from None


def run_filter(
    *, team: Team, status: str | None = None, workflow_id: Any = None, app_id: Any = None,
    trigger: str | None = None, since: datetime | None = None, token_id: Any = None,
) -> QuerySet[Run]:
    """The team's runs matching the runs-list filters (unordered); ``token_id``: only the runs it started."""
    qs = Run.objects.filter(team=team)
    if token_id is not None:
        qs = qs.filter(token_id=token_id)
    if status:
        qs = qs.filter(status=status)
    if workflow_id:
        qs = qs.filter(workflow_id=workflow_id)
    if app_id:
        qs = qs.filter(app_id=app_id)
    if trigger:
        qs = qs.filter(trigger=trigger)
    if since:
        qs = qs.filter(created_at__gte=since)
    return qs


def run_list(
    *, team: Team, limit: int = 50, cursor: str | None = None, status: str | None = None,
    workflow_id: Any = None, app_id: Any = None, trigger: str | None = None, since: datetime | None = None,
    token_id: Any = None,
) -> tuple[list[Run], str | None]:
    """A page of the team's runs, newest first, and the cursor of the next page (stable under inserts:
    the cursor is the (created_at, id) of the last row, so new runs never shift a page)."""
    qs = run_filter(team=team, status=status, workflow_id=workflow_id, app_id=app_id, trigger=trigger,
                    since=since, token_id=token_id).select_related("workflow")
    return keyset_page(qs, limit=limit, cursor=cursor)


def keyset_page(qs: QuerySet, *, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """A page of ``qs`` newest first by (created_at, pk) and the cursor of the next page. The cursor
    is the position of the page's last row, so rows inserted meanwhile never shift a page."""
    if cursor:
        created, pk = cursor_decode(cursor)
        qs = qs.filter(Q(created_at__lt=created) | Q(created_at=created, pk__lt=pk))
    rows = list(qs.order_by("-created_at", "-pk")[: limit + 1])
    next_cursor = cursor_encode(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def run_last_test(*, team: Team, workflow: Any) -> dict[str, Any] | None:
    """The newest finished test run of the draft (the editor's "last run"): its id, inputs and the
    output of every top-level node, or None."""
    run = (Run.objects.filter(team=team, workflow=workflow, draft=True, finished_at__isnull=False)
           .order_by("-created_at", "-id").first())
    if run is None:
        return None
    outputs = {r.node_id: r.outputs for r in node_runs(run=run) if not r.iteration_id and r.outputs is not None}
    return {"id": str(run.pk), "status": run.status, "inputs": run.inputs, "outputs": outputs}
