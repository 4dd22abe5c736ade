"""Runs list (filterable, live over ``/ws/runs/``) and run detail (graph, timeline, event log)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from config.errors import DomainError
from runs import selectors as run_selectors
from runs.lifecycle import run_replay, run_stop
from runs.models import NodeRun, Run, RunStatus
from runs.representations import node_run_dict
from runs.services import event_dict
from web.access import Access, page, team_action, team_view
from workflows.selectors import workflow_list

SINCE_CHOICES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RUNS_PAGE = 50
TRIGGERS = ["ui", "api", "webhook", "schedule", "batch", "replay", "child"]


@team_view()
def runs(request: HttpRequest, access: Access) -> HttpResponse:
    q = request.GET
    status = q.get("status") if q.get("status") in RunStatus.values else None
    since = timezone.now() - SINCE_CHOICES[q["since"]] if q.get("since") in SINCE_CHOICES else None
    workflows = list(workflow_list(team=access.team).select_related("app"))
    workflow_id = q.get("workflow") if q.get("workflow") in {str(w.pk) for w in workflows} else None
    filter_args = {"status": status, "workflow_id": workflow_id, "trigger": q.get("trigger") or None, "since": since}
    cursor = q.get("cursor") or None
    try:
        rows, next_cursor = run_selectors.run_list(team=access.team, limit=RUNS_PAGE, cursor=cursor, **filter_args)
    except DomainError:
        rows, next_cursor, cursor = [], None, None
    # Pages are keyset cursors; the cursors of the pages before this one travel in ``trail`` (comma
    # separated, "" for the first page), so "Newer runs" goes back exactly one page.
    trail = q.get("trail", "").split(",")[-200:] if cursor and q.get("trail") is not None else []
    filters = {"status": status or "", "workflow": workflow_id or "", "trigger": q.get("trigger", ""),
               "since": q.get("since", "")}
    base = urlencode({k: v for k, v in filters.items() if v})
    older = newer = None
    if next_cursor:
        older = "?" + urlencode({**{k: v for k, v in filters.items() if v}, "cursor": next_cursor,
                                 "trail": ",".join([*trail, cursor or ""])})
    if cursor:
        prev = trail[-1] if trail else ""
        newer = "?" + urlencode({**{k: v for k, v in filters.items() if v}, **({"cursor": prev, "trail": ",".join(trail[:-1])}
                                                                              if prev else {})})
    total = run_selectors.run_filter(team=access.team, **filter_args).count()
    page_number = len(trail) + 1 if cursor else 1
    template = "web/_runs_rows.html" if q.get("fragment") else "web/runs.html"
    return page(request, access, template, {
        "runs": rows, "next_cursor": next_cursor, "filters": filters, "workflows": workflows,
        "statuses": RunStatus.values, "triggers": TRIGGERS, "since_choices": list(SINCE_CHOICES),
        "older_url": older, "newer_url": newer, "first_url": "?" + base, "total": total, "page_number": page_number,
        "pages": max(1, -(-total // RUNS_PAGE)),
    })


def timeline(run: Run, rows: list[NodeRun]) -> dict[str, Any]:
    """Bars for the node-duration chart: offsets and widths in percent of the run's span."""
    starts = [r.started_at for r in rows if r.started_at]
    if not starts:
        return {"bars": [], "total": 0.0}
    t0 = min([run.started_at or min(starts), *starts])
    ends = [r.finished_at or timezone.now() for r in rows if r.started_at]
    t1 = max([run.finished_at or max(ends), *ends])
    span = max((t1 - t0).total_seconds(), 0.001)
    bars = []
    for r in rows:
        if not r.started_at:
            continue
        start = (r.started_at - t0).total_seconds()
        end = ((r.finished_at or timezone.now()) - t0).total_seconds()
        bars.append({"row": r, "left": round(100 * start / span, 2), "width": max(round(100 * (end - start) / span, 2), 0.5),
                     "seconds": round(end - start, 3)})
    return {"bars": bars, "total": round(span, 3)}


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@team_view()
def run_detail(request: HttpRequest, access: Access, run_id: str) -> HttpResponse:
    run = run_selectors.run_get(team=access.team, id=run_id)
    rows = list(run_selectors.node_runs(run=run))
    events = run_selectors.run_events(run=run, after=0, limit=5000)
    return page(request, access, "web/run.html", {
        "run": run, "node_runs": rows, "events": events, "timeline": timeline(run, rows),
        "run_data": {
            "runId": str(run.pk), "status": run.status, "final": run.is_final,
            "graph": run.version.graph, "nodeRuns": [node_run_dict(r) for r in rows],
            "events": [event_dict(e) for e in events],
            "lastSeq": events[-1].seq if events else 0,
            "urls": {"stop": reverse("web:run-stop", args=[run.pk])},
        },
    })


@team_action("run")
def run_stop_view(request: HttpRequest, access: Access, run_id: str) -> HttpResponse:
    run = run_selectors.run_get(team=access.team, id=run_id)
    run = run_stop(team=access.team, run=run)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"ok": True, "status": run.status})
    messages.success(request, "Stop requested.")
    return redirect("web:run", run_id=run.pk)


@team_action("run")
def run_replay_view(request: HttpRequest, access: Access, run_id: str) -> HttpResponse:
    """A new async run with the same inputs, queued for the workers like every replay."""
    run = run_selectors.run_get(team=access.team, id=run_id)
    try:
        new = run_replay(team=access.team, run=run, created_by=request.user)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("web:run", run_id=run.pk)
    messages.success(request, "Replay started.")
    return redirect("web:run", run_id=new.pk)
