"""Sub-workflow runs at run time (``runs.services.run_create`` through ``runs.lifecycle.run_start``):
the parent chain on every child run, the depth budget (``WEFT_MAX_WORKFLOW_DEPTH``) and the team's
concurrency limit, which child runs count against. Past either, the calling node fails
``limit_exceeded`` and no run is written for the refused child."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from runs.lifecycle import NATIVE, run_start
from runs.models import Run
from runs.tasks import run_task
from tests.conftest import client_with_token, workflow_make
from workflows.models import Workflow
from workflows.services import workflow_publish

pytestmark = pytest.mark.django_db(transaction=True)


def calls(callee: Workflow | None) -> dict[str, Any]:
    """Outputs ``{"level": n}``, n the number of workflows below it (a leaf is 0)."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    level: Any = 0
    if callee is not None:
        nodes.append({"id": "sub", "type": "workflow", "config": {"workflow": str(callee.pk), "inputs": {}}})
        level = "{{ sub.level + 1 }}"
    nodes.append({"id": "end", "type": "end", "config": {"outputs": {"level": level}}})
    return {"inputs": {}, "outputs": {"level": {"type": "integer"}}, "nodes": nodes,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]}


def chain(team: Any, length: int) -> list[Workflow]:
    """``length`` workflows, each calling the next, published top-down through the service: each
    publish sees the next one without a version yet, so no publish can see the whole depth (the
    run-time check is what stops it)."""
    flows = [workflow_make(team) for _ in range(length)]
    for workflow, callee in zip(flows, [*flows[1:], None], strict=False):
        workflow.graph = calls(callee)
        workflow.save()
    for workflow in flows:
        workflow_publish(team=team, workflow=workflow)
    return [Workflow.objects.select_related("app", "active_version").get(pk=w.pk) for w in flows]


def test_each_child_run_knows_its_parent_and_root(team_a: Any) -> None:
    top, middle, bottom = chain(team_a, 3)
    ended = run_start(team=team_a, workflow=top, inputs={}, mode="blocking", origin=NATIVE)
    assert (ended.status, ended.outputs) == ("succeeded", {"level": 2}), ended.error
    child = Run.objects.get(parent_run=ended)
    grandchild = Run.objects.get(parent_run=child)
    assert (ended.root_run_id, ended.depth) == (None, 0)
    assert (child.workflow_id, child.root_run_id, child.depth) == (middle.pk, ended.pk, 1)
    assert (grandchild.workflow_id, grandchild.root_run_id, grandchild.depth) == (bottom.pk, ended.pk, 2)
    body = client_with_token(team_a, ["read"]).get(f"/api/v1/runs/{grandchild.pk}").json()
    assert (body["parentRunId"], body["rootRunId"], body["depth"]) == (str(child.pk), str(ended.pk), 2)


def test_a_child_past_the_depth_limit_fails_its_node_limit_exceeded(team_a: Any) -> None:
    flows = chain(team_a, 4)  # runs at depths 0..3
    with override_settings(WEFT_MAX_WORKFLOW_DEPTH=2):
        ended = run_start(team=team_a, workflow=flows[0], inputs={}, mode="blocking", origin=NATIVE)
    assert ended.status == "failed" and ended.error["code"] == "child_failed", ended.error
    runs = list(Run.objects.filter(root_run=ended).order_by("depth"))
    assert [r.depth for r in runs] == [1, 2]  # no run was written at depth 3
    deepest = runs[-1]
    assert deepest.status == "failed" and deepest.error["code"] == "limit_exceeded", deepest.error
    assert deepest.error["message"] == ("child workflow: The sub-workflow would run 3 levels deep; the limit is 2 "
                                        "(WEFT_MAX_WORKFLOW_DEPTH).")
    # Within the limit the same chain succeeds.
    with override_settings(WEFT_MAX_WORKFLOW_DEPTH=3):
        ended = run_start(team=team_a, workflow=flows[0], inputs={}, mode="blocking", origin=NATIVE)
    assert (ended.status, ended.outputs) == ("succeeded", {"level": 3}), ended.error


@pytest.mark.parametrize(("mode", "limit"), [("blocking", 2), ("async", 1)])
def test_child_runs_count_against_the_team_concurrency_limit(team_a: Any, team_b: Any, mode: str, limit: int) -> None:
    """A blocking run and its child take the two slots of a limit of 2; an async run takes none (it
    queues) but its child does, whatever its mode (it executes at once): either way the grandchild
    finds the team at its limit, and its parent's node fails ``limit_exceeded``."""
    flows = chain(team_a, 3)
    with override_settings(WEFT_MAX_CONCURRENT_RUNS=limit):
        ended = run_start(team=team_a, workflow=flows[0], inputs={}, mode=mode, origin=NATIVE)
        if mode == "async":
            run_task(str(ended.pk))
            ended.refresh_from_db()
    assert ended.status == "failed" and ended.error["code"] == "child_failed", ended.error
    [child] = Run.objects.filter(root_run=ended)  # no grandchild was written
    assert (child.depth, child.mode, child.status) == (1, mode, "failed")
    assert child.error["code"] == "limit_exceeded", child.error
    assert child.error["message"] == f"child workflow: Too many concurrent runs for this team (limit {limit})."
    # A blocking run of the chain needs three slots; another team's runs never count.
    with override_settings(WEFT_MAX_CONCURRENT_RUNS=3):
        ended = run_start(team=team_a, workflow=flows[0], inputs={}, mode="blocking", origin=NATIVE)
        assert (ended.status, ended.outputs) == ("succeeded", {"level": 2}), ended.error
        other = run_start(team=team_b, workflow=chain(team_b, 3)[0], inputs={}, mode="blocking", origin=NATIVE)
    assert other.status == "succeeded", other.error
