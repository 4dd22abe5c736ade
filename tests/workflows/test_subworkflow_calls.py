"""The sub-workflow call graph at validate, publish, test run and version activation
(``workflows.calls``): a workflow that calls itself (directly, through others, inside a loop body),
a cycle further down, a chain deeper than ``WEFT_MAX_WORKFLOW_DEPTH`` and a workflow that is not
the team's are a 400 naming the node and its field; nothing is written."""

from __future__ import annotations

from typing import Any

from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Team
from tests.conftest import client_with_session, published_make, workflow_make
from workflows.models import Workflow, WorkflowVersion


def calling(*targets: Any, in_loop: bool = False) -> dict[str, Any]:
    """A graph whose ``workflow`` nodes call ``targets`` (workflows or raw ids) one after the other."""
    calls = [{"id": f"call{i}", "type": "workflow", "config": {"workflow": str(getattr(t, "pk", t)), "inputs": {}}}
             for i, t in enumerate(targets)]
    if in_loop:
        calls = [{"id": "each", "type": "loop", "config": {
            "items": [1, 2], "output": "{{ item }}",
            "body": {"nodes": calls, "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(calls, calls[1:], strict=False)]}}}]
    nodes = [{"id": "start", "type": "start"}, *calls, {"id": "end", "type": "end", "config": {"outputs": {}}}]
    return {"inputs": {}, "outputs": {}, "nodes": nodes,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]}


def draft(workflow: Workflow, graph: dict[str, Any]) -> None:
    """Save the draft alone (``save()`` would write the stale ``active_version`` too)."""
    Workflow.objects.filter(pk=workflow.pk).update(graph=graph)


def leaf() -> dict[str, Any]:
    return calling()


def errors_of(client: APIClient, workflow: Workflow) -> list[dict[str, str]]:
    """The validate answer, which must be the publish answer too, with nothing published."""
    before = WorkflowVersion.objects.filter(workflow=workflow).count()
    body = client.post(f"/api/v1/workflows/{workflow.pk}/validate", {}, format="json").json()
    response = client.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json")
    if body["valid"]:
        assert response.status_code in (200, 201), response.content
        return []
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == body["errors"]
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == before
    return body["errors"]


def test_a_workflow_calling_itself_is_refused_at_its_node(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=leaf())
    draft(workflow, calling(workflow))
    assert errors_of(client_a, workflow) == [{
        "path": "/nodes/1/config/workflow",
        "message": "node 'call0': the workflow calls itself; a workflow may not call its own workflow"}]
    # The same inside a loop body, named at the body's node.
    draft(workflow, calling(workflow, in_loop=True))
    assert errors_of(client_a, workflow) == [{
        "path": "/nodes/1/config/body/nodes/0/config/workflow",
        "message": "node 'call0': the workflow calls itself; a workflow may not call its own workflow"}]
    # A test run of such a draft is refused the same way, before any run is written.
    response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk), "draft": True}, format="json")
    assert response.status_code == 400 and "calls itself" in response.content.decode()
    assert not workflow.runs.exists()


def test_a_call_back_through_other_workflows_is_refused(client_a: APIClient, team_a: Team) -> None:
    top = workflow_make(team_a, name="top", graph=leaf())
    middle = published_make(team_a, calling(top))  # published before the check could see the loop
    Workflow.objects.filter(pk=middle.pk).update(name="middle")
    draft(top, calling(published_make(team_a, leaf()), middle))
    assert errors_of(client_a, top) == [{
        "path": "/nodes/2/config/workflow",
        "message": "node 'call1': the workflow calls itself through 'middle'; "
                   "a workflow may not call its own workflow"}]


def test_a_cycle_further_down_is_refused(client_a: APIClient, team_a: Team) -> None:
    """Two workflows that call each other (published before the check, as an old platform could):
    a third one calling them would run without end."""
    first, second = workflow_make(team_a, name="first"), workflow_make(team_a, name="second")
    for workflow, callee in ((first, second), (second, first)):
        version = WorkflowVersion.objects.create(team=team_a, workflow=workflow, number=1, graph=calling(callee))
        Workflow.objects.filter(pk=workflow.pk).update(active_version=version)
    caller = workflow_make(team_a, graph=calling(first))
    assert errors_of(client_a, caller) == [{
        "path": "/nodes/1/config/workflow",
        "message": "node 'call0': sub-workflows call each other in a cycle ('first' → 'second' → 'first'), "
                   "without end"}]


def test_a_chain_deeper_than_the_limit_is_refused(client_a: APIClient, team_a: Team) -> None:
    chain = [published_make(team_a, leaf())]
    for _ in range(5):  # chain[5] calls chain[4] ... calls chain[0]: 5 levels below chain[5]
        chain.append(published_make(team_a, calling(chain[-1])))
    top = workflow_make(team_a, graph=calling(chain[-1]))  # 6 levels below the top
    [error] = errors_of(client_a, top)
    assert error["path"] == "/nodes/1/config/workflow"
    assert error["message"].startswith("node 'call0': sub-workflows nest 6 deep here (")
    assert error["message"].endswith("); the limit is 5 (WEFT_MAX_WORKFLOW_DEPTH)")
    with override_settings(WEFT_MAX_WORKFLOW_DEPTH=6):
        assert errors_of(client_a, top) == []
    assert errors_of(client_a, workflow_make(team_a, graph=calling(chain[-2]))) == []  # 5 levels: fine


def test_a_workflow_of_no_team_or_another_team_is_refused(client_a: APIClient, team_a: Team, team_b: Team) -> None:
    theirs = published_make(team_b, leaf())
    workflow = workflow_make(team_a, graph=calling(theirs, "not-an-id", "0" * 8 + "-0000-0000-0000-" + "0" * 12))
    assert errors_of(client_a, workflow) == [
        {"path": "/nodes/1/config/workflow", "message": f"node 'call0': no workflow {str(theirs.pk)!r} in this team"},
        {"path": "/nodes/2/config/workflow", "message": "node 'call1': no workflow 'not-an-id' in this team"},
        {"path": "/nodes/3/config/workflow",
         "message": "node 'call2': no workflow '00000000-0000-0000-0000-000000000000' in this team"},
    ]


def test_activating_an_old_version_that_would_close_a_loop_is_refused(client_a: APIClient, team_a: Team,
                                                                      owner_a: Any) -> None:
    """v1 of ``top`` calls ``other``; v2 does not, and ``other`` then got published calling ``top``.
    Going back to v1 would close the loop: 400, v2 stays active."""
    top = workflow_make(team_a, name="top", graph=leaf())
    other = published_make(team_a, leaf())
    draft(top, calling(other))
    assert errors_of(client_a, top) == []  # v1
    draft(top, leaf())
    assert errors_of(client_a, top) == []  # v2
    draft(other, calling(top))
    assert errors_of(client_a, other) == []  # top's active version calls nothing
    response = client_a.post(f"/api/v1/workflows/{top.pk}/versions/1/activate", {}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"path": "/nodes/1/config/workflow",
                                          "message": "node 'call0': the workflow calls itself through "
                                                     f"{other.name!r}; a workflow may not call its own workflow"}]
    top.refresh_from_db()
    assert top.active_version.number == 2
    # The same from the versions page: the error is shown, v2 stays active.
    page = client_with_session(owner_a)
    response = page.post(f"/workflows/{top.pk}/versions/1/activate", follow=True)
    assert response.status_code == 200
    assert "Version 1 cannot be activated. node &#x27;call0&#x27;: the workflow calls itself" in response.content.decode()
    top.refresh_from_db()
    assert top.active_version.number == 2
