"""The HTTP node hosted by the platform: async webhook steps calling back into the real callback
endpoint, and credentials that never leak into what a run stores or streams.

The services the node calls are real HTTP servers on 127.0.0.1; the callback arrives at the
platform's own ``POST /api/v1/callbacks/{run_id}/{node_id}/{receipt_token}`` view.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import credential_create
from runs.executor import run_execute
from runs.models import NodeCallback, NodeRun, Run, RunEvent
from runs.services import run_create
from tests.conftest import published_make
from tests.engine.http_servers import Recorded, Reply, scripted_server

SECRET = "s3cr3t-token-value-9d1c"


def webhook_graph(url: str) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "pay", "type": "http", "config": {"method": "POST", "url": url, "body": {"amount": 5},
                                                     "mode": "webhook", "webhook": {"max_wait": 20}}},
            {"id": "end", "type": "end", "config": {"outputs": {"result": "{{ pay.body }}"}}},
        ],
        "edges": [{"from": "start", "to": "pay"}, {"from": "pay", "to": "end"}],
    }


def callback_later(request: Recorded, bodies: list[tuple[str, Any]], answers: list[Any], delay: float = 0.3) -> None:
    """Like a real async service: answer now, POST the result to Weft-Webhook-URL later."""
    path = urlsplit(request.header("Weft-Webhook-URL")).path

    def post() -> None:
        time.sleep(delay)
        client = APIClient()
        for content_type, body in bodies:
            response = client.generic("POST", path, json.dumps(body), content_type=content_type)
            answers.append((response.status_code, response.json()))
        connection.close()

    threading.Thread(target=post, daemon=True).start()


@pytest.mark.django_db(transaction=True)
def test_webhook_step_first_callback_wins_and_repeats_change_nothing(team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]
    answers: list[Any] = []
    with scripted_server() as server:
        def accept(request: Recorded) -> Reply:
            callback_later(request, [("application/json", {"paid": True, "ref": "p-1"}),
                                     ("application/json", {"paid": False, "ref": "p-2"})], answers)
            return Reply(202, {"accepted": True})

        server.route("/pay", accept)
        workflow = published_make(team_a, webhook_graph(server.url("/pay")))
        run = run_create(team=team_a, workflow=workflow, inputs={})
        finished = run_execute(run.pk)
    assert finished.status == "succeeded", finished.error
    assert finished.outputs == {"result": {"paid": True, "ref": "p-1"}}
    assert [a[0] for a in answers] == [200, 200]
    assert [a[1]["accepted"] for a in answers] == [True, False]
    assert NodeCallback.objects.filter(run=run).count() == 1
    request = server.requests[0]
    assert urlsplit(request.header("Weft-Webhook-URL")).path.startswith(f"/api/v1/callbacks/{run.pk}/pay/")
    assert request.header("Weft-Receipt-Token") == NodeRun.objects.get(run=run, node_id="pay").receipt_token


@pytest.mark.django_db(transaction=True)
def test_webhook_step_failing_with_problem_json_fails_the_node(team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]
    answers: list[Any] = []
    with scripted_server() as server:
        def accept(request: Recorded) -> Reply:
            callback_later(request, [("application/problem+json",
                                      {"type": "about:blank", "title": "Payment declined", "status": 422,
                                       "detail": "Card expired"})], answers)
            return Reply(202, {"accepted": True})

        server.route("/pay", accept)
        workflow = published_make(team_a, webhook_graph(server.url("/pay")))
        run = run_create(team=team_a, workflow=workflow, inputs={})
        finished = run_execute(run.pk)
    assert finished.status == "failed"
    node = NodeRun.objects.get(run=run, node_id="pay")
    assert node.status == "failed" and node.attempt == 1
    assert "Card expired" in json.dumps(node.error)


@pytest.mark.django_db(transaction=True)
def test_callback_with_a_wrong_token_or_run_is_404_and_stores_nothing(team_a, team_b):
    workflow = published_make(team_a, webhook_graph("http://127.0.0.1:9/never"))
    run = run_create(team=team_a, workflow=workflow, inputs={})
    client = APIClient()
    for path in (f"/api/v1/callbacks/{run.pk}/pay/{'0' * 64}",
                 f"/api/v1/callbacks/00000000-0000-0000-0000-000000000000/pay/{'0' * 64}",
                 f"/api/v1/callbacks/not-a-uuid/pay/{'0' * 64}"):
        response = client.post(path, {"paid": True}, format="json")
        assert response.status_code == 404, path
    assert NodeCallback.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_credential_secret_never_appears_in_the_run_its_events_or_errors(team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]
    credential_create(team=team_a, name="risk-api", kind="bearer", secrets={"token": SECRET})
    with scripted_server() as server:
        # A careless service echoes the Authorization header back, then fails with it in the detail.
        server.route("/echo", lambda r: Reply(200, {"you_sent": r.header("Authorization")}))
        server.route("/fail", lambda r: Reply(400, {"title": "Bad", "detail": f"bad header {r.header('Authorization')}"},
                                              {"Content-Type": "application/problem+json"}))
        graph = {
            "inputs": {}, "outputs": {},
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "echo", "type": "http", "config": {"method": "GET", "url": server.url("/echo"),
                                                          "auth": {"credential": "risk-api"}}},
                {"id": "fail", "type": "http", "config": {"method": "POST", "url": server.url("/fail"),
                                                          "auth": {"type": "bearer", "credential": "risk-api"}}},
                {"id": "end", "type": "end", "config": {"outputs": {"echo": "{{ echo.body.you_sent }}"}}},
            ],
            "edges": [{"from": "start", "to": "echo"}, {"from": "echo", "to": "fail"}, {"from": "fail", "to": "end"}],
        }
        workflow = published_make(team_a, graph)
        run = run_create(team=team_a, workflow=workflow, inputs={})
        finished = run_execute(run.pk)
    assert [r.header("Authorization") for r in server.requests] == [f"Bearer {SECRET}"] * 2  # it was sent
    assert finished.status == "failed"
    stored = json.dumps([
        list(Run.objects.filter(pk=run.pk).values()),
        list(NodeRun.objects.filter(run=run).values()),
        list(RunEvent.objects.filter(run=run).values("type", "data")),
    ], default=str)
    assert SECRET not in stored
    assert "***" in stored  # redacted, not silently dropped
