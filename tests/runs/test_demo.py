"""The demo team works out of the box: seed 001's order notification through a real server, its HTTP
actions calling the platform's own /demo endpoints, started by the Dify dialect and by its webhook."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.models import ApiToken, Team
from runs.models import NodeRun, Run
from workflows.demo import demo_load, demo_tokens_path
from workflows.models import Workflow, WorkflowVersion
from workflows.queue_consumer import ConsumerProcess

pytestmark = pytest.mark.slow


@pytest.mark.django_db(transaction=True)
def test_demo_runs_end_to_end_and_loading_twice_changes_nothing(live_server_url: str, qcluster) -> None:
    demo = demo_load(base_url=live_server_url)
    again = demo_load(base_url=live_server_url)
    # Two HTTP examples and, the broker being reachable here, the queue demo.
    assert Workflow.objects.filter(team__slug="demo").count() == 3
    assert WorkflowVersion.objects.filter(team__slug="demo").count() == 3
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


@pytest.mark.django_db(transaction=True)
def test_queue_demo_writes_each_order_into_sqlite_and_publishes_a_notification(qcluster: Any, settings: Any) -> None:
    """make run's queue demo: an order published to RabbitMQ starts a run (weftconsumers) that writes
    the order into the team's SQLite table and publishes a notification to another queue."""
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.0/8"]
    settings.WEFT_CONSUMER_RELOAD_SECONDS = 0.2
    demo = demo_load()
    assert demo["queue"] == {"orders": "weft_demo_orders", "notifications": "weft_demo_notifications",
                             "workflow": demo["queue"]["workflow"]}
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    channel = conn.channel()
    channel.queue_purge("weft_demo_notifications")
    process = ConsumerProcess(django_settings, name="demo-test")
    thread = threading.Thread(target=process.serve, daemon=True)
    thread.start()
    try:
        channel.basic_publish("", "weft_demo_orders", json.dumps({"orderId": "Q-77", "amount": 42.5}),
                              pika.BasicProperties(message_id="demo-q-77"))
        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline:
            run = Run.objects.filter(workflow_id=demo["queue"]["workflow"], trigger="queue").first()
            if run is not None and run.status in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert run is not None and run.status == "succeeded", run and run.error
        team = Team.objects.get(slug="demo")
        with sqlite3.connect(Path(django_settings.WEFT_DB_SQLITE_DIR) / str(team.pk) / "demo-orders.db") as db:
            assert db.execute("SELECT order_id, amount FROM orders WHERE order_id = 'Q-77'").fetchall() == [("Q-77", 42.5)]
        _method, properties, body = channel.basic_get("weft_demo_notifications", auto_ack=True)
        assert json.loads(body) == {"event": "order.saved", "orderId": "Q-77", "amount": 42.5}
        assert properties.message_id == run.outputs["notification"]
    finally:
        process.stop_event.set()
        thread.join(timeout=20)
        conn.close()


@pytest.mark.django_db(transaction=True)
def test_demo_tokens_stay_the_same_across_restarts_unless_reset() -> None:
    demo_tokens_path().unlink(missing_ok=True)
    first = demo_load(base_url="http://127.0.0.1:1")
    again = demo_load(base_url="http://127.0.0.1:1")
    assert (again["token"], again["appToken"]) == (first["token"], first["appToken"])
    assert demo_tokens_path().stat().st_mode & 0o077 == 0  # the owner's only
    live = ApiToken.objects.filter(team__slug="demo", revoked_at__isnull=True)
    assert sorted(live.values_list("name", flat=True)) == ["demo", "demo-app"]
    reset = demo_load(base_url="http://127.0.0.1:1", reset_tokens=True)
    assert reset["token"] != first["token"] and reset["appToken"] != first["appToken"]
    assert sorted(live.values_list("name", flat=True)) == ["demo", "demo-app"]  # the old ones revoked
    # A kept token revoked elsewhere (or a damaged file) gives new tokens, not a dead one.
    ApiToken.objects.filter(team__slug="demo", name="demo-app").update(revoked_at=timezone.now())
    after = demo_load(base_url="http://127.0.0.1:1")
    assert after["appToken"] != reset["appToken"] and after["token"] != reset["token"]
    demo_tokens_path().write_text("{not json")
    assert demo_load(base_url="http://127.0.0.1:1")["token"] != after["token"]
    demo_tokens_path().unlink()
