"""Writes for apps, workflows and published versions.

Keyword-only functions that take the team explicitly, check their input (``InvalidInput`` naming
the field, ``Conflict`` for a clash with existing rows) before writing, and write in one
transaction. Publishing freezes the draft graph as a new ``WorkflowVersion`` numbered per workflow
under a row lock on the workflow, so concurrent publishes get distinct numbers.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.models import Credential, Team
from accounts.selectors import credential_kinds, parameters_get
from accounts.services import credential_delete, credential_update
from config.errors import Conflict, InvalidInput, team_owned
from runs.models import ACTIVE_STATUSES, BatchJob, Run
from workflows.budgets import engine_limits
from workflows.calls import call_errors
from workflows.engine.graph import graph_references, validate_graph
from workflows.models import App, Trigger, TriggerKind, Workflow, WorkflowVersion, empty_graph
from workflows.selectors import version_get

_UNSET: Any = object()


def graph_shape_errors(graph: Any, path: str = "/graph") -> list[dict[str, str]]:
    """What a draft must be even when invalid: an object with ``nodes`` and ``edges`` lists of objects."""
    if not isinstance(graph, dict):
        return [{"path": path, "message": "must be an object with 'nodes' and 'edges' lists"}]
    errors: list[dict[str, str]] = []
    for key in ("nodes", "edges"):
        items = graph.get(key)
        if not isinstance(items, list):
            errors.append({"path": f"{path}/{key}", "message": "required: a list"})
            continue
        errors += [
            {"path": f"{path}/{key}/{index}", "message": "must be an object"}
            for index, item in enumerate(items)
            if not isinstance(item, dict)
        ]
    for key in ("inputs", "outputs", "params"):
        if key in graph and not isinstance(graph[key], dict):
            errors.append({"path": f"{path}/{key}", "message": "must be an object"})
    return errors


def _graph_check(graph: Any) -> dict[str, Any]:
    errors = graph_shape_errors(graph)
    if errors:
        raise InvalidInput("The graph does not have the shape of a workflow.", errors=errors)
    return graph


def _active_runs_check(runs: Any, what: str) -> None:
    if runs.filter(status__in=ACTIVE_STATUSES).exists():
        raise Conflict(f"The {what} has runs in progress; stop them first.")


@transaction.atomic
def app_create(
    *, team: Team, name: str, description: str = "", tags: list[str] | None = None, enabled: bool = True,
    created_by: User | None = None,
) -> App:
    name = name.strip()
    if not name:
        raise InvalidInput("An app needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
    if App.objects.filter(team=team, name=name).exists():
        raise Conflict("An app with this name exists.", errors=[{"path": "/name", "message": "already exists"}])
    return App.objects.create(
        team=team, name=name, description=description, tags=list(tags or []), enabled=enabled, created_by=created_by
    )


@transaction.atomic
def app_update(
    *, team: Team, app: App, name: str = _UNSET, description: str = _UNSET, tags: list[str] = _UNSET,
    enabled: bool = _UNSET, entry_workflow_id: Any = _UNSET,
) -> App:
    """Change the given fields only; ``entry_workflow_id`` must name one of the app's workflows."""
    team_owned(team, app, "App")
    fields = ["updated_at"]
    if name is not _UNSET:
        name = name.strip()
        if not name:
            raise InvalidInput("An app needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
        if App.objects.filter(team=team, name=name).exclude(pk=app.pk).exists():
            raise Conflict("An app with this name exists.", errors=[{"path": "/name", "message": "already exists"}])
        app.name = name
        fields.append("name")
    if description is not _UNSET:
        app.description = description
        fields.append("description")
    if tags is not _UNSET:
        app.tags = list(tags)
        fields.append("tags")
    if enabled is not _UNSET:
        app.enabled = enabled
        fields.append("enabled")
    if entry_workflow_id is not _UNSET:
        workflow = Workflow.objects.filter(team=team, app=app, pk=entry_workflow_id).first()
        if workflow is None:
            raise InvalidInput(
                "The entry workflow must be one of the app's workflows.",
                errors=[{"path": "/entryWorkflowId", "message": "not a workflow of this app"}],
            )
        app.entry_workflow = workflow
        fields.append("entry_workflow")
    app.save(update_fields=fields)
    return app


@transaction.atomic
def app_delete(*, team: Team, app: App) -> None:
    """Delete the app with its workflows, versions, runs and app-bound tokens (not while runs are active)."""
    team_owned(team, app, "App")
    _active_runs_check(Run.objects.filter(team=team, app=app), "app")
    _history_delete(Run.objects.filter(team=team, app=app), BatchJob.objects.filter(team=team, workflow__app=app))
    App.objects.filter(team=team, pk=app.pk).delete()


def _history_delete(runs: Any, jobs: Any) -> None:
    """Finished runs and batch jobs go first: they protect the versions they ran (a published version
    cannot be deleted from under its runs), so the cascade from the app or workflow would refuse."""
    jobs.delete()
    runs.delete()


@transaction.atomic
def workflow_create(
    *, team: Team, app: App, name: str, description: str = "", graph: dict[str, Any] | None = None,
    created_by: User | None = None,
) -> Workflow:
    """Create a workflow with a draft graph; the first workflow of an app becomes its entry workflow."""
    team_owned(team, app, "App")
    name = name.strip()
    if not name:
        raise InvalidInput("A workflow needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
    graph = empty_graph() if graph is None else _graph_check(graph)
    # Lock the app row so two concurrent first workflows cannot both become the entry workflow.
    app = App.objects.select_for_update().get(team=team, pk=app.pk)
    if Workflow.objects.filter(app=app, name=name).exists():
        raise Conflict("A workflow with this name exists in the app.", errors=[{"path": "/name", "message": "already exists"}])
    workflow = Workflow.objects.create(
        team=team, app=app, name=name, description=description, graph=graph, created_by=created_by
    )
    if app.entry_workflow_id is None:
        app.entry_workflow = workflow
        app.save(update_fields=["entry_workflow", "updated_at"])
    return workflow


@transaction.atomic
def workflow_update(
    *, team: Team, workflow: Workflow, name: str = _UNSET, description: str = _UNSET, graph: dict[str, Any] = _UNSET,
) -> Workflow:
    """Save the draft: a graph may be invalid, but it must have the shape of a workflow."""
    team_owned(team, workflow, "Workflow")
    fields = ["updated_at"]
    if graph is not _UNSET:
        workflow.graph = _graph_check(graph)
        fields.append("graph")
    if name is not _UNSET:
        name = name.strip()
        if not name:
            raise InvalidInput("A workflow needs a name.", errors=[{"path": "/name", "message": "must not be empty"}])
        if Workflow.objects.filter(app_id=workflow.app_id, name=name).exclude(pk=workflow.pk).exists():
            raise Conflict("A workflow with this name exists in the app.", errors=[{"path": "/name", "message": "already exists"}])
        workflow.name = name
        fields.append("name")
    if description is not _UNSET:
        workflow.description = description
        fields.append("description")
    workflow.save(update_fields=fields)
    return workflow


@transaction.atomic
def workflow_delete(*, team: Team, workflow: Workflow) -> None:
    """Delete the workflow with its versions and runs; the app's entry moves to its oldest other workflow."""
    team_owned(team, workflow, "Workflow")
    _active_runs_check(Run.objects.filter(team=team, workflow=workflow), "workflow")
    app = App.objects.select_for_update().get(team=team, pk=workflow.app_id)
    _history_delete(Run.objects.filter(team=team, workflow=workflow), BatchJob.objects.filter(team=team, workflow=workflow))
    Workflow.objects.filter(team=team, pk=workflow.pk).delete()
    if app.entry_workflow_id in (None, workflow.pk):
        app.entry_workflow = Workflow.objects.filter(team=team, app=app).order_by("created_at", "id").first()
        app.save(update_fields=["entry_workflow", "updated_at"])


def workflow_validate(*, team: Team, workflow: Workflow, graph: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Every problem of the (draft) graph as ``[{"path", "message"}]``; empty when it can be published."""
    team_owned(team, workflow, "Workflow")
    if graph is not None:
        _graph_check(graph)  # a graph sent for validation must at least be shaped like one (400)
    graph = workflow.graph if graph is None else graph
    shape = graph_shape_errors(graph, path="")
    if shape:
        return shape
    limits = engine_limits()
    return validate_graph(
        graph, global_params=parameters_get(team=team), credential_names=credential_kinds(team=team),
        limits=limits,
    ) + call_errors(team=team, workflow=workflow, graph=graph, max_depth=limits.workflow_depth)


def _calls_lock(team: Team) -> None:
    """Serialise the team's publishes and activations (the team row, locked before the workflow
    row): two workflows published at once that call each other would each see the other's old
    version and pass the sub-workflow cycle check."""
    Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()


@transaction.atomic
def draft_snapshot(*, team: Team, workflow: Workflow, graph: dict[str, Any] | None = None,
                   created_by: User | None = None) -> WorkflowVersion:
    """The frozen copy of the saved draft (or of ``graph``) that a test run executes, validated as at
    publish (``InvalidInput`` with every error). An unchanged draft reuses its last snapshot."""
    team_owned(team, workflow, "Workflow")
    graph = workflow.graph if graph is None else graph
    errors = workflow_validate(team=team, workflow=workflow, graph=graph)
    if errors:
        raise InvalidInput("The draft is invalid: fix it before a test run.", errors=errors)
    latest = WorkflowVersion.objects.filter(team=team, workflow=workflow, draft=True).order_by("-published_at").first()
    if latest is not None and latest.graph == graph:
        return latest
    return WorkflowVersion.objects.create(team=team, workflow=workflow, number=0, draft=True,
                                          graph=copy.deepcopy(graph), published_by=created_by)


@transaction.atomic
def workflow_publish(*, team: Team, workflow: Workflow, published_by: User | None = None) -> WorkflowVersion:
    """Freeze the draft as the next version and make it active; ``InvalidInput`` with every error if invalid."""
    team_owned(team, workflow, "Workflow")
    _calls_lock(team)
    # The row lock serialises publishes of one workflow (on SQLite the IMMEDIATE transaction does).
    locked = Workflow.objects.select_for_update().get(team=team, pk=workflow.pk)
    errors = workflow_validate(team=team, workflow=locked)
    if errors:
        raise InvalidInput("The workflow is invalid and cannot be published.", errors=errors)
    number = (WorkflowVersion.objects.filter(workflow=locked, draft=False).aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            version = WorkflowVersion.objects.create(
                team=team, workflow=locked, number=number, graph=copy.deepcopy(locked.graph), published_by=published_by
            )
    except IntegrityError:
        # Only reachable if a database does not honour the row lock: ask the client to retry.
        raise Conflict("Another publish of this workflow is in progress; retry.") from None
    locked.active_version = version
    locked.save(update_fields=["active_version", "updated_at"])
    workflow.active_version = version
    return version


@transaction.atomic
def version_activate(*, team: Team, workflow: Workflow, number: int) -> WorkflowVersion:
    """Make version ``number`` the active one (roll back or forward); new runs use it. Its
    sub-workflow calls are checked again (``InvalidInput``): what it calls may have changed."""
    team_owned(team, workflow, "Workflow")
    _calls_lock(team)
    locked = Workflow.objects.select_for_update().get(team=team, pk=workflow.pk)
    version = version_get(team=team, workflow=locked, number=number)
    errors = call_errors(team=team, workflow=locked, graph=version.graph, max_depth=engine_limits().workflow_depth)
    if errors:
        raise InvalidInput(f"Version {number} cannot be activated.", errors=errors)
    locked.active_version = version
    locked.save(update_fields=["active_version", "updated_at"])
    workflow.active_version = version
    return version


def credential_uses(*, team: Team, name: str) -> list[str]:
    """Where the team's published workflows (their active versions: what runs use) and its queue
    triggers name the credential ``name``, in words; drafts are checked when they are published."""
    uses: list[str] = []
    active = (Workflow.objects.filter(team=team, active_version__isnull=False)
              .values_list("app__name", "name", "active_version__graph").order_by("app__name", "name"))
    for app_name, workflow_name, graph in active:
        for _, node_id, ref in graph_references(graph):
            if ref.kind == "credential" and ref.value == name:
                uses.append(f"node “{node_id}” of workflow “{app_name} / {workflow_name}”")
    triggers = Trigger.objects.filter(team=team, kind=TriggerKind.QUEUE, credential=name)
    for trigger_name, workflow_name in triggers.values_list("name", "workflow__name").order_by("workflow__name"):
        uses.append(f"queue trigger “{trigger_name or '(unnamed)'}” of workflow “{workflow_name}”")
    return uses


def _in_use_check(team: Team, credential: Credential, path: str, what: str) -> None:
    uses = credential_uses(team=team, name=credential.name)
    if uses:
        shown = "; ".join(uses[:5]) + (f" and {len(uses) - 5} more" if len(uses) > 5 else "")
        raise Conflict(f"The credential “{credential.name}” is in use: {what} it would break {shown}. "
                       "Publish those workflows without it (or change the triggers) first.",
                       errors=[{"path": path, "message": f"in use by {shown}"}])


@transaction.atomic
def credential_remove(*, team: Team, credential: Credential) -> None:
    """Delete a credential that nothing published names (409 naming the uses otherwise)."""
    team_owned(team, credential, "Credential")
    _in_use_check(team, credential, "/id", "deleting")
    credential_delete(team=team, credential=credential)


@transaction.atomic
def credential_change(*, team: Team, credential: Credential, name: str | None = None,
                      secrets: dict[str, str] | None = None, kind: str | None = None) -> Credential:
    """Replace a credential's secrets; renaming it or changing its kind only while nothing
    published names it (published versions find credentials by name and kind)."""
    team_owned(team, credential, "Credential")
    if name is not None and name.strip() != credential.name:
        _in_use_check(team, credential, "/name", "renaming")
    if kind is not None and kind != credential.kind:
        _in_use_check(team, credential, "/kind", "changing its kind")
    return credential_update(team=team, credential=credential, name=name, secrets=secrets, kind=kind)
