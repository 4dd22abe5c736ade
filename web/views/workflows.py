"""Apps and their workflows, the visual editor and its JSON endpoints, versions, the test panel.

The editor's JSON endpoints (save draft, validate, publish, test run) answer
``{"ok", "errors": [{"path", "message"}], ...}`` so that the editor can put each error on the node
and field it concerns. They call the workflow and run services; no rule lives here.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts import selectors as accounts_selectors
from config.errors import DomainError, InvalidInput
from config.jsoninput import json_input_loads
from runs import selectors as run_selectors
from runs.lifecycle import TEST_PANEL, run_start
from runs.models import RunMode
from web.access import Access, page, team_action, team_view
from web.forms import AppForm, WorkflowForm
from web.views.accounts import form_errors_add
from workflows import selectors as wf_selectors
from workflows import services as wf_services
from workflows.engine.graph import inline_secrets_masked, inputs_json_schema
from workflows.engine.node_test import NodeTestUnavailable, single_node_graph
from workflows.engine.nodes.registry import NODE_TYPES

# The shape of a node type's output, for completion of `{{ node.field }}` before any test run (the
# format documents these; a type may also declare ``output_example`` itself). Unknown types
# complete from the last test run's outputs instead.
OUTPUT_EXAMPLES: dict[str, Any] = {
    "http": {"status": 200, "headers": {}, "body": None},
    "db": {"rows": [], "rowcount": 0},
    "queue": {"message_id": "", "target": ""},
}


def node_types_catalog() -> dict[str, dict[str, Any]]:
    """What the editor needs about every registered node type: title, description, config JSON
    Schema and, when known, an example of its output. A new type appears in the palette as it is."""
    catalog = {}
    for name, nt in NODE_TYPES.items():
        schema = nt.config_schema
        entry: dict[str, Any] = {"title": nt.title or name, "schema": schema,
                                 "description": schema.get("description", "") if isinstance(schema, dict) else ""}
        example = getattr(nt, "output_example", None) or OUTPUT_EXAMPLES.get(name)
        if example is not None:
            entry["output"] = example
        catalog[name] = entry
    return catalog


def error_json(exc: DomainError) -> JsonResponse:
    errors = exc.errors or [{"path": "", "message": exc.detail}]
    return JsonResponse({"ok": False, "detail": exc.detail, "errors": errors}, status=exc.status)


def body_json(request: HttpRequest) -> Any:
    return json_input_loads(request.body or b"{}")


@team_view()
def apps(request: HttpRequest, access: Access) -> HttpResponse:
    form = AppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            app = wf_services.app_create(team=access.team, name=form.cleaned_data["name"],
                                         description=form.cleaned_data["description"], created_by=request.user)
        except DomainError as exc:
            form_errors_add(form, exc, {"/name": "name"})
        else:
            return redirect("web:app", app_id=app.pk)
    rows = [(a, list(wf_selectors.workflow_list(team=access.team, app=a))) for a in wf_selectors.app_list(team=access.team)]
    return page(request, access, "web/apps.html", {"form": form, "apps": rows})


@team_action("manage")
def app_delete(request: HttpRequest, access: Access, app_id: str) -> HttpResponse:
    """POST: delete the app with its workflows, versions, runs and app-bound tokens (409 while runs are
    active: shown as a message, nothing deleted)."""
    app = wf_selectors.app_get(team=access.team, id=app_id)
    try:
        wf_services.app_delete(team=access.team, app=app)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("web:app", app_id=app.pk)
    messages.success(request, f"App {app.name} deleted.")
    return redirect("web:apps")


@team_action("manage")
def workflow_delete(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """POST: delete the workflow with its versions and runs (not while runs are active)."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        wf_services.workflow_delete(team=access.team, workflow=workflow)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Workflow {workflow.name} deleted.")
    return redirect("web:app", app_id=workflow.app_id)


@team_view()
def app_detail(request: HttpRequest, access: Access, app_id: str) -> HttpResponse:
    app = wf_selectors.app_get(team=access.team, id=app_id)
    form = WorkflowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workflow = wf_services.workflow_create(team=access.team, app=app, name=form.cleaned_data["name"],
                                                   description=form.cleaned_data["description"], created_by=request.user)
        except DomainError as exc:
            form_errors_add(form, exc, {"/name": "name"})
        else:
            return redirect("web:workflow", workflow_id=workflow.pk)
    workflows = wf_selectors.workflow_list(team=access.team, app=app)
    return page(request, access, "web/app.html", {"app": app, "workflows": workflows, "form": form})


@team_view()
def app_call(request: HttpRequest, access: Access, app_id: str) -> HttpResponse:
    """How to call the app: base URL, the token header, curl for the three dialects."""
    app = wf_selectors.app_get(team=access.team, id=app_id)
    entry = app.entry_workflow
    base = settings.WEFT_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
    example: dict[str, Any] = {}
    if entry is not None:
        graph = entry.active_version.graph if entry.active_version else entry.graph
        for name, decl in (graph.get("inputs") or {}).items():
            example[name] = decl.get("default", {"string": "text", "number": 1, "integer": 1, "boolean": True,
                                                 "object": {}, "array": []}.get(decl.get("type", "string"), "text"))
    context = {
        "app": app, "entry": entry, "base": base, "inputs_example": json.dumps(example),
        "dify_body": json.dumps({"inputs": example, "response_mode": "blocking", "user": "user-1"}),
        "native_body": json.dumps({"workflowId": str(entry.pk) if entry else "<workflow id>", "params": example,
                                   "mode": "blocking"}),
        "tokens_url": reverse("web:tokens"),
    }
    return page(request, access, "web/app_call.html", context)


@team_view()
def workflow_editor(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    active = workflow.active_version
    last = run_selectors.run_last_test(team=access.team, workflow=workflow)
    context = {
        "workflow": workflow, "app": workflow.app,
        "editor_data": {
            "workflowId": str(workflow.pk),
            "graph": workflow.graph if access.can_edit else inline_secrets_masked(workflow.graph),
            "nodeTypes": node_types_catalog(),
            "errors": wf_services.workflow_validate(team=access.team, workflow=workflow),
            "canEdit": access.can_edit, "canRun": access.can_run,
            "activeVersion": active.number if active else None,
            "credentials": [{"name": c.name, "kind": c.kind} for c in accounts_selectors.credential_list(team=access.team)],
            "params": sorted(accounts_selectors.parameters_get(team=access.team)),
            "workflows": [{"id": str(w.pk), "name": w.name, "app": w.app.name, "published": w.active_version_id is not None}
                          for w in wf_selectors.workflow_list(team=access.team).select_related("app")],
            "lastRun": last,
            "urls": {
                "save": reverse("web:workflow-draft", args=[workflow.pk]),
                "validate": reverse("web:workflow-validate", args=[workflow.pk]),
                "publish": reverse("web:workflow-publish", args=[workflow.pk]),
                "run": reverse("web:workflow-run", args=[workflow.pk]),
                "runNode": reverse("web:workflow-run-node", args=[workflow.pk]),
                "runPage": reverse("web:runs") + "__ID__/",
                "stop": reverse("web:run-stop", args=["__ID__"]),
            },
        },
    }
    return page(request, access, "web/editor.html", context)


@team_action("manage")
def workflow_draft(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """Save the draft graph (it may be invalid); answer with its validation errors."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        data = body_json(request)
        workflow = wf_services.workflow_update(team=access.team, workflow=workflow, graph=data.get("graph"))
    except DomainError as exc:
        return error_json(exc)
    return JsonResponse({"ok": True, "errors": wf_services.workflow_validate(team=access.team, workflow=workflow)})


@team_action("manage")
def workflow_validate(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        graph = body_json(request).get("graph")
    except DomainError as exc:
        return error_json(exc)
    errors = wf_services.workflow_validate(team=access.team, workflow=workflow, graph=graph)
    return JsonResponse({"ok": not errors, "errors": errors})


@team_action("manage")
def workflow_publish(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """Publish the saved draft (the editor saves first)."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        version = wf_services.workflow_publish(team=access.team, workflow=workflow, published_by=request.user)
    except DomainError as exc:
        return error_json(exc)
    return JsonResponse({"ok": True, "errors": [], "version": version.number,
                         "inputsSchema": inputs_json_schema(version.graph)})


@team_action("run")
def workflow_run(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """Test panel: a streaming UI run of the saved draft (``"draft": true``, validated as at publish)
    or of the active version."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        body = body_json(request)
        version = (wf_services.draft_snapshot(team=access.team, workflow=workflow, created_by=request.user)
                   if body.get("draft") else None)
        run = ui_run_start(request, access, workflow=workflow, inputs=body.get("inputs", {}), version=version)
    except DomainError as exc:
        return error_json(exc)
    return JsonResponse({"ok": True, "runId": str(run.pk), "status": run.status, "draft": run.draft}, status=201)


@team_action("run")
def workflow_run_node(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """"Run this node": the node alone, on the last test run's inputs and upstream outputs (a draft run)."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        body = body_json(request)
        last = run_selectors.run_get(team=access.team, id=body.get("runId"))
        if last.workflow_id != workflow.pk:
            raise InvalidInput("That run is not of this workflow.", errors=[{"path": "/runId", "message": "not a run of this workflow"}])
        outputs = {r.node_id: r.outputs for r in run_selectors.node_runs(run=last) if not r.iteration_id}
        try:
            graph = single_node_graph(workflow.graph, str(body.get("node") or ""), outputs)
        except NodeTestUnavailable as exc:
            raise InvalidInput(str(exc), errors=[{"path": "/node", "message": str(exc)}]) from None
        version = wf_services.draft_snapshot(team=access.team, workflow=workflow, graph=graph, created_by=request.user)
        run = ui_run_start(request, access, workflow=workflow, inputs=last.inputs, version=version)
    except DomainError as exc:
        return error_json(exc)
    return JsonResponse({"ok": True, "runId": str(run.pk), "status": run.status, "draft": True}, status=201)


def ui_run_start(request: HttpRequest, access: Access, *, workflow: Any, inputs: Any, version: Any) -> Any:
    """A streaming run for a person watching (the page follows it over its websocket)."""
    return run_start(team=access.team, workflow=workflow, inputs=inputs, mode=RunMode.STREAMING, origin=TEST_PANEL,
                     user=request.user.email or request.user.username, created_by=request.user, version=version)


def diff_lines(old: Any, new: Any, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """A unified line diff of two graphs as pretty JSON, as ``(kind, line)`` for the template."""
    a = json.dumps(old, indent=2, sort_keys=True).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True).splitlines()
    out = []
    for line in difflib.unified_diff(a, b, fromfile=old_name, tofile=new_name, lineterm="", n=3):
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        if line.startswith(("+++", "---")):
            kind = "file"
        out.append((kind, line))
    return out


@team_view()
def workflow_versions(request: HttpRequest, access: Access, workflow_id: str) -> HttpResponse:
    """Version history; ``?a=<n>&b=<n|draft>`` diffs two versions (default: each against the previous)."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    versions = list(wf_selectors.version_list(team=access.team, workflow=workflow))
    by_number = {str(v.number): v for v in versions}
    b_key = request.GET.get("b") or (str(versions[0].number) if versions else "draft")
    b_graph = workflow.graph if b_key == "draft" else getattr(by_number.get(b_key), "graph", None)
    default_a = ""
    if b_key == "draft" and versions:
        default_a = str(versions[0].number)
    elif b_key.isdigit() and str(int(b_key) - 1) in by_number:
        default_a = str(int(b_key) - 1)
    a_key = request.GET.get("a", default_a)
    a_graph = getattr(by_number.get(a_key), "graph", {}) if a_key else {}
    if not access.can_edit:  # readers never see an inline secret a draft or an old version still holds
        a_graph, b_graph = inline_secrets_masked(a_graph), inline_secrets_masked(b_graph)
    lines = diff_lines(a_graph, b_graph, f"v{a_key}" if a_key else "(nothing)",
                       "draft" if b_key == "draft" else f"v{b_key}") if b_graph is not None else []
    return page(request, access, "web/versions.html", {
        "workflow": workflow, "app": workflow.app, "versions": versions, "a": a_key, "b": b_key, "lines": lines,
    })


@team_action("manage")
def version_activate(request: HttpRequest, access: Access, workflow_id: str, number: int) -> HttpResponse:
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    try:
        version = wf_services.version_activate(team=access.team, workflow=workflow, number=number)
    except InvalidInput as exc:
        messages.error(request, " ".join([exc.detail, "; ".join(e["message"] for e in exc.errors)]).strip())
        return redirect("web:workflow-versions", workflow_id=workflow.pk)
    messages.success(request, f"Version {version.number} is now active: new runs use it.")
    return redirect("web:workflow-versions", workflow_id=workflow.pk)


@team_action("manage")
def version_restore(request: HttpRequest, access: Access, workflow_id: str, number: int) -> HttpResponse:
    """Copy a version's graph into the draft (to edit from there)."""
    workflow = wf_selectors.workflow_get(team=access.team, id=workflow_id)
    version = wf_selectors.version_get(team=access.team, workflow=workflow, number=number)
    wf_services.workflow_update(team=access.team, workflow=workflow, graph=version.graph)
    messages.success(request, f"The draft now holds version {version.number}'s graph.")
    return redirect("web:workflow", workflow_id=workflow.pk)
