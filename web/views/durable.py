"""Triggers (schedules with their next fire times, webhooks with URL and secret), dead letters
(replay) and offline batch jobs (progress bars). Thin pages over ``workflows.triggers``,
``runs.deadletters`` and ``runs.batches``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from accounts import selectors as accounts_selectors
from config.errors import DomainError
from config.jsoninput import json_input_loads
from runs import deadletters
from runs.batches import batch_counts
from runs.lifecycle import dead_letter_replay
from runs.models import BatchJob
from web.access import Access, page, team_action, team_view
from workflows import queue_triggers
from workflows import selectors as wf_selectors
from workflows import triggers as trig
from workflows.triggers import cron_next


def next_fires(cron: str, tz: str, count: int = 3) -> list[datetime]:
    out: list[datetime] = []
    after = timezone.now()
    for _ in range(count):
        after = cron_next(cron, tz, after)
        out.append(after)
    return out


@team_view()
def triggers(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    errors: list[dict[str, str]] = []
    if request.method == "POST":
        p = request.POST
        try:
            inputs = json_input_loads(p.get("inputs") or "{}", path="/inputs")
        except DomainError as exc:
            errors = exc.errors
        else:
            try:
                queue = p.get("kind") == "queue"
                trig.trigger_create(team=access.team, workflow=workflow, kind=p.get("kind", ""), name=p.get("name", ""),
                                    cron=p.get("cron", "") if p.get("kind") == "schedule" else "",
                                    time_zone=p.get("time_zone") or None, inputs=inputs, signed=bool(p.get("signed")),
                                    credential=p.get("credential", "") if queue else "",
                                    source=p.get("source", "") if queue else "", group=p.get("group", "") if queue else "")
            except DomainError as exc:
                errors = exc.errors or [{"path": "", "message": exc.detail}]
            else:
                messages.success(request, "Trigger created.")
                return redirect("web:triggers", workflow_id=workflow.pk)
    rows = []
    for t in trig.trigger_list(team=access.team, workflow=workflow):
        fires = next_fires(t.cron, t.time_zone) if t.kind == "schedule" and t.enabled and t.cron else []
        row = {"t": t, "fires": fires, "url": f"{settings.WEFT_PUBLIC_URL}/hooks/{t.key}"}
        if t.kind == "queue":
            row["consumer"] = queue_triggers.consumer_status(trigger=t)
            row["dead_letters"] = list(queue_triggers.dead_letter_list(team=access.team, trigger=t)[:5])
        rows.append(row)
    brokers = accounts_selectors.credential_list(team=access.team).filter(kind="broker")
    return page(request, access, "web/triggers.html", {
        "workflow": workflow, "app": workflow.app, "rows": rows, "errors": errors, "post": request.POST,
        "brokers": brokers,
    })


@team_action("manage")
def trigger_action(request: HttpRequest, access: Access, trigger_id: str) -> HttpResponse:
    trigger = trig.trigger_get(team=access.team, id=trigger_id)
    action = request.POST.get("action")
    try:
        if action == "delete":
            trig.trigger_delete(team=access.team, trigger=trigger)
        elif action in ("enable", "disable"):
            trig.trigger_update(team=access.team, trigger=trigger, enabled=action == "enable")
        elif action == "rotate":
            trig.trigger_update(team=access.team, trigger=trigger, rotate_secret=True)
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("web:triggers", workflow_id=trigger.workflow_id)


@team_view(write="run")
def dead_letters(request: HttpRequest, access: Access) -> HttpResponse:
    if request.method == "POST":
        letter = deadletters.dead_letter_get(team=access.team, id=request.POST.get("id", ""))
        try:
            run = dead_letter_replay(team=access.team, dead_letter=letter, created_by=request.user)
        except DomainError as exc:
            messages.error(request, exc.detail)
            return redirect("web:dead-letters")
        messages.success(request, "Replay started.")
        return redirect("web:run", run_id=run.pk)
    rows, next_cursor = deadletters.dead_letter_list(team=access.team, cursor=request.GET.get("cursor") or None)
    return page(request, access, "web/dead_letters.html", {"rows": rows, "next_cursor": next_cursor})


@team_view()
def batches(request: HttpRequest, access: Access) -> HttpResponse:
    jobs: list[dict[str, Any]] = []
    # No batch list selector exists; this is the one team-scoped read of the page.
    for job in BatchJob.objects.filter(team=access.team).select_related("workflow").order_by("-created_at")[:100]:
        counts = batch_counts(job)
        total = max(counts["total"], 1)
        jobs.append({"job": job, "counts": counts,
                     "ok_pct": round(100 * counts["succeeded"] / total, 1),
                     "bad_pct": round(100 * counts["failed"] / total, 1),
                     "run_pct": round(100 * counts["running"] / total, 1)})
    return page(request, access, "web/batches.html", {"jobs": jobs})
