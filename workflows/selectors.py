"""Reads for apps, workflows and published versions.

Every lookup names the team; a row of another team, a missing row and a malformed id are all the
same ``NotFound`` (the API answers 404). The run APIs call ``app_get`` and ``workflow_get`` too.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Team
from accounts.selectors import row_get
from workflows.models import App, Workflow, WorkflowVersion


def app_list(*, team: Team) -> QuerySet[App]:
    return App.objects.filter(team=team).order_by("created_at", "id")


def app_get(*, team: Team, id: Any) -> App:
    return row_get(App.objects.filter(team=team).select_related("entry_workflow"), "App", pk=id)


def workflow_list(*, team: Team, app: App | None = None) -> QuerySet[Workflow]:
    qs = Workflow.objects.filter(team=team).select_related("active_version")
    if app is not None:
        qs = qs.filter(app=app)
    return qs.order_by("created_at", "id")


def workflow_get(*, team: Team, id: Any) -> Workflow:
    return row_get(Workflow.objects.filter(team=team).select_related("app", "active_version"), "Workflow", pk=id)


def version_list(*, team: Team, workflow: Workflow) -> QuerySet[WorkflowVersion]:
    return (
        WorkflowVersion.objects.filter(team=team, workflow=workflow, draft=False)
        .select_related("published_by")
        .order_by("-number")
    )


def version_get(*, team: Team, workflow: Workflow, number: Any) -> WorkflowVersion:
    return row_get(
        WorkflowVersion.objects.filter(team=team, workflow=workflow, draft=False).select_related("published_by"),
        "Version",
        number=number,
    )
