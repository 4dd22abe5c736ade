"""Queue triggers in the management API: creation checks (400 naming the field), the consumer
status and the dead letters in answers, another team's trigger a 404 (the isolation matrix too)."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from accounts.services import credential_create
from tests.conftest import published_make
from tests.queues.helpers import AMQP_URL, ORDER_GRAPH, REDIS_URL
from workflows.models import Trigger, TriggerDeadLetter
from workflows.queue_triggers import consumer_report, queue_message_receive


def _setup(team: Any) -> Any:
    credential_create(team=team, name="mq", kind="broker", secrets={"url": AMQP_URL})
    credential_create(team=team, name="streams", kind="broker", secrets={"url": REDIS_URL})
    credential_create(team=team, name="token", kind="bearer", secrets={"token": "t"})
    return published_make(team, ORDER_GRAPH)


def test_create_checks_fields(client_a: APIClient, team_a: Any) -> None:
    workflow = _setup(team_a)
    url = f"/api/v1/workflows/{workflow.id}/triggers"
    cases = [({"kind": "queue"}, {"/credential", "/source"}),
             ({"kind": "queue", "credential": "token", "source": "q"}, {"/credential"}),
             ({"kind": "queue", "credential": "nope", "source": "q"}, {"/credential"}),
             ({"kind": "queue", "credential": "mq", "source": "q", "group": "g"}, {"/group"}),
             ({"kind": "queue", "credential": "mq", "source": "q", "cron": "* * * * *"}, {"/cron"}),
             ({"kind": "webhook", "source": "q"}, {"/source"})]
    for body, paths in cases:
        response = client_a.post(url, body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert {e["path"] for e in response.json()["errors"]} == paths, body
    assert not Trigger.objects.exists()
    created = client_a.post(url, {"kind": "queue", "credential": "mq", "source": "orders"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["kind"], body["credential"], body["source"], body["group"]) == ("queue", "mq", "orders", "")
    assert body["consumer"] == {"connected": False, "consumers": 0, "lag": None, "lastError": None,
                                "lastErrorAt": None, "lastMessageAt": None, "messages": 0, "deadLetters": 0}
    stream = client_a.post(url, {"kind": "queue", "credential": "streams", "source": "orders"}, format="json").json()
    assert stream["group"] == "weft"


def test_status_and_dead_letters_in_the_api(client_a: APIClient, client_b: APIClient, team_a: Any) -> None:
    workflow = _setup(team_a)
    trigger_id = client_a.post(f"/api/v1/workflows/{workflow.id}/triggers",
                               {"kind": "queue", "credential": "mq", "source": "orders"}, format="json").json()["id"]
    trigger = Trigger.objects.get(pk=trigger_id)
    consumer_report(trigger=trigger, consumer="host-1", connected=True, lag=7, handled=3)
    assert queue_message_receive(trigger=trigger, message_id="m1", body=b'{"orderId": "A"}').outcome == "started"
    assert queue_message_receive(trigger=trigger, message_id="m1", body=b'{"orderId": "A"}').outcome == "duplicate"
    assert queue_message_receive(trigger=trigger, message_id="m2", body=b"oops").outcome == "dead_letter"
    assert queue_message_receive(trigger=trigger, message_id="m2", body=b"oops").outcome == "duplicate"
    assert TriggerDeadLetter.objects.count() == 1
    status = client_a.get(f"/api/v1/triggers/{trigger_id}").json()["consumer"]
    assert (status["connected"], status["consumers"], status["lag"], status["messages"], status["deadLetters"]) == \
        (True, 1, 7, 3, 1)
    letters = client_a.get(f"/api/v1/triggers/{trigger_id}/dead-letters")
    assert letters.status_code == 200
    [letter] = letters.json()["data"]
    assert (letter["messageId"], letter["reason"], letter["body"]) == ("m2", "not_json", "oops")
    assert client_b.get(f"/api/v1/triggers/{trigger_id}/dead-letters").status_code == 404


def test_a_message_holding_a_nul_or_a_lone_surrogate_is_a_dead_letter_naming_the_place(client_a: APIClient,
                                                                                       team_a: Any) -> None:
    """PostgreSQL refuses NUL in jsonb (and in the dead letter's text): no run, a readable dead letter."""
    from runs.models import Run

    workflow = _setup(team_a)
    trigger_id = client_a.post(f"/api/v1/workflows/{workflow.id}/triggers",
                               {"kind": "queue", "credential": "mq", "source": "orders"}, format="json").json()["id"]
    trigger = Trigger.objects.get(pk=trigger_id)
    for message_id, body in (("nul", b'{"orderId": "A\\u0000"}'), ("sur", b'{"orderId": "\\ud800"}'),
                             ("deep", b'{"orderId": ' + b"[" * 70 + b"]" * 70 + b"}"),
                             ("raw-nul", b'{"orderId": "A\x00"}')):
        assert queue_message_receive(trigger=trigger, message_id=message_id, body=body).outcome == "dead_letter"
    assert not Run.objects.exists()
    letters = {d.message_id: d for d in TriggerDeadLetter.objects.all()}
    assert letters["nul"].reason == "invalid_inputs"
    assert letters["nul"].detail == {"errors": [{"path": "/orderId", "message": "contains a NUL character"}]}
    assert letters["sur"].reason == "invalid_inputs" and letters["deep"].reason == "invalid_inputs"
    assert letters["raw-nul"].reason == "not_json" and "\x00" not in letters["raw-nul"].body
