"""The demo team works out of the box: seed 001's order notification through a real server, its HTTP
actions calling the platform's own /demo endpoints, started by the Dify dialect and by its webhook."""

from __future__ import annotations

import time

import pytest
import requests

from runs.models import NodeRun, Run
from workflows.demo import demo_load
from workflows.models import Workflow, WorkflowVersion

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_demo_runs_end_to_end_and_loading_twice_changes_nothing(live_server_url: str, qcluster) -> None:
    demo = demo_load(base_url=live_server_url)
    again = demo_load(base_url=live_server_url)
    assert Workflow.objects.filter(team__slug="demo").count() == 2
    assert WorkflowVersion.objects.filter(team__slug="demo").count() == 2
    assert again["hooks"] == demo["hooks"]
    headers = {"Authorization": f"Bearer {again['appToken']}"}
    for amount, route, skipped in ((5000, "risk-team", {"format", "email"}), (20, "email", {"mask", "notify"})):
        response = requests.post(f"{live_server_url}/v1/workflows/run", headers=headers, timeout=30, json={
            "inputs": {"orderId": f"A-{amount}", "amount": amount}, "response_mode": "blocking", "user": "demo"})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["status"] == "succeeded", data["error"]
        assert data["outputs"] == {"route": route, "delivered": True, "channel": route.split("-")[0]}
        nodes = NodeRun.objects.filter(run_id=data["id"])
        assert {n.node_id for n in nodes if n.status == "skipped"} == skipped
    if amount == 20:
        email = NodeRun.objects.get(run_id=data["id"], node_id="email")
        assert email.outputs["body"]["received"]["msg"] == "Hello Jane Doe, your order A-20 is confirmed."
    # The webhook trigger (seed 001 starts from a webhook): an async run on the worker cluster.
    hook = list(again["hooks"].values())[0]
    accepted = requests.post(f"{live_server_url}{hook}", json={"orderId": "W-1", "amount": 1500}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["runId"]
    deadline = time.monotonic() + 30
    while Run.objects.get(pk=run_id).status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.trigger) == ("succeeded", "webhook"), run.error
    assert run.outputs["route"] == "risk-team"
    masked = NodeRun.objects.get(run=run, node_id="mask").outputs
    assert masked["email"] == "j***e@example.com" and masked["orderId"] == "W-1"
