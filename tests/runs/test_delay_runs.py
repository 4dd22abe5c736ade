"""A delay of any length in an async run (``runs.lifecycle.run_start`` + ``runs.tasks.run_task``):
the run parks no later than its deadline and then ends ``timeout`` (a delay of 1e300 seconds used
to overflow the wake-up time inside the executor); a delay config that cannot work is refused at
publish naming the field, and nothing is published."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from runs.lifecycle import NATIVE, run_start
from runs.models import NodeRun, Run
from runs.tasks import run_task
from tests.conftest import published_make, workflow_make
from workflows.models import WorkflowVersion

pytestmark = pytest.mark.django_db(transaction=True)


def delay_graph(config: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": {}, "outputs": {},
            "nodes": [{"id": "start", "type": "start"}, {"id": "wait", "type": "delay", "config": config},
                      {"id": "end", "type": "end", "config": {"outputs": {}}}],
            "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}]}


def test_a_delay_of_centuries_parks_until_the_deadline_and_ends_timeout(team_a: Any) -> None:
    workflow = published_make(team_a, delay_graph({"seconds": 1e300}))
    run = run_start(team=team_a, workflow=workflow, inputs={}, mode="async", origin=NATIVE, deadline_seconds=2)
    assert run_task(str(run.pk)) == "waiting"
    run.refresh_from_db()
    assert run.wake_at == run.deadline
    assert NodeRun.objects.get(run=run, node_id="wait").wake_at == run.deadline
    time.sleep(max(0.0, (run.deadline.timestamp() - time.time())) + 0.2)
    assert run_task(str(run.pk)) == "timeout"
    assert Run.objects.get(pk=run.pk).status == "timeout"


def test_a_random_delay_without_max_is_refused_at_publish(client_a: APIClient, team_a: Any) -> None:
    workflow = workflow_make(team_a, graph=delay_graph({"mode": "random", "min": 1}))
    response = client_a.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"path": "/nodes/1/config/max", "message": "required when mode is 'random'"}]
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()
