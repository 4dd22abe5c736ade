"""The ``queue`` node against the real RabbitMQ (127.0.0.1:5672) and Redis (:6379, db 6)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pika
import pytest
import redis

from tests.engine.helpers import chain, compile_test, run
from workflows.engine.brokers import BrokerPolicy, connection_test
from workflows.engine.errors import NodeError
from workflows.engine.ports import NullServices

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/6"
LOOPBACK = ("127.0.0.0/8",)


class Services(NullServices):
    def __init__(self, url: str, allow: tuple[str, ...] = LOOPBACK) -> None:
        super().__init__(broker_policy=BrokerPolicy(allow_networks=allow, connect_timeout=5, max_message_bytes=10_000),
                         team_key="team-q")
        self.url = url

    def credential(self, name: str) -> dict[str, str]:
        return {"kind": "broker", "url": self.url}


@pytest.fixture
def amqp() -> Any:
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    channel = conn.channel()
    names: list[str] = []

    def declare(kind: str = "queue") -> str:
        name = f"queues_node_{kind}_{uuid.uuid4().hex[:8]}"
        names.append(name)
        if kind == "queue":
            channel.queue_declare(name, durable=False, auto_delete=False)
        return name

    yield channel, declare
    for name in names:
        channel.queue_delete(name)
        channel.exchange_delete(name)
    conn.close()


def queue_graph(**config: Any) -> dict[str, Any]:
    return chain({"id": "send", "type": "queue", "retry": {"count": 2, "interval": 0.05},
                  "config": {"credential": "mq", **config}},
                 inputs={"orderId": {"type": "string"}})


def test_amqp_publish_to_a_queue_with_confirm_message_id_and_context_headers(amqp: Any) -> None:
    channel, declare = amqp
    name = declare()
    graph = queue_graph(target=name, message={"order": "{{ inputs.orderId }}"}, headers={"X-Team": "a"})
    outcome, host = run(compile_test(graph, credential_names={"mq"}), {"orderId": "A1"},
                        services=Services(AMQP_URL), run_id="run-q1")
    assert outcome.status == "succeeded", outcome.error
    record = host.records["send"]
    method, properties, body = channel.basic_get(name, auto_ack=True)
    assert json.loads(body) == {"order": "A1"}
    assert properties.message_id == record.receipt_token == record.output["message_id"]
    assert properties.headers == {"X-Team": "a", "Weft-Run-ID": "run-q1", "Weft-Node-ID": "send",
                                  "Weft-Receipt-Token": record.receipt_token}
    assert properties.delivery_mode == 2 and properties.content_type == "application/json"
    assert record.output == {"message_id": record.receipt_token, "target": name}


def test_amqp_exchange_with_routing_key_and_unroutable_is_permanent(amqp: Any) -> None:
    channel, declare = amqp
    exchange, bound = declare("exchange"), declare()
    channel.exchange_declare(exchange, exchange_type="direct", auto_delete=False)
    channel.queue_bind(bound, exchange, routing_key="orders.new")
    outcome, _ = run(compile_test(queue_graph(target=exchange, routing_key="orders.new", message={"n": 1}),
                                  credential_names={"mq"}), {}, services=Services(AMQP_URL))
    assert outcome.status == "succeeded", outcome.error
    assert json.loads(channel.basic_get(bound, auto_ack=True)[2]) == {"n": 1}
    outcome, host = run(compile_test(queue_graph(target=exchange, routing_key="nobody.listens", message={"n": 2}),
                                     credential_names={"mq"}), {}, services=Services(AMQP_URL))
    assert outcome.status == "failed"
    assert host.records["send"].error["code"] == "unroutable" and host.records["send"].attempt == 1


def test_redis_stream_publish(amqp: Any) -> None:
    stream = f"queues_node_stream_{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        outcome, host = run(compile_test(queue_graph(target=stream, message={"order": "{{ inputs.orderId }}"}),
                                         credential_names={"mq"}), {"orderId": "B2"},
                            services=Services(REDIS_URL), run_id="run-r")
        assert outcome.status == "succeeded", outcome.error
        [(_, fields)] = client.xrange(stream)
        assert json.loads(fields[b"message"]) == {"order": "B2"}
        assert fields[b"message_id"].decode() == host.records["send"].receipt_token
        assert json.loads(fields[b"headers"])["Weft-Run-ID"] == "run-r"
    finally:
        client.delete(stream)
        client.close()


def test_refused_connection_is_retried_with_the_node_policy_then_fails() -> None:
    outcome, host = run(compile_test(queue_graph(target="x", message={}), credential_names={"mq"}), {},
                        services=Services("amqp://guest:pw-secret@127.0.0.1:1/"))
    assert outcome.status == "failed"
    record = host.records["send"]
    assert record.error["code"] == "connection_refused" and record.attempt == 3
    assert "pw-secret" not in json.dumps(record.error)


def test_address_policy_and_message_budget() -> None:
    outcome, host = run(compile_test(queue_graph(target="x", message={}), credential_names={"mq"}), {},
                        services=Services(AMQP_URL, allow=()))
    assert host.records["send"].error["code"] == "address_refused"
    outcome, host = run(compile_test(queue_graph(target="x", message="y" * 20_000), credential_names={"mq"}), {},
                        services=Services(AMQP_URL))
    assert host.records["send"].error["code"] == "limit_exceeded"


def test_connection_test_errors() -> None:
    policy = BrokerPolicy(allow_networks=LOOPBACK, connect_timeout=5)
    connection_test(url=AMQP_URL, policy=policy)
    connection_test(url=REDIS_URL, policy=policy)
    for url, code in [("amqp://guest:wrong-pw-1@127.0.0.1:5672/", "auth_failed"),
                      ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "access_denied"),
                      ("redis://nobody:wrong-pw-1@127.0.0.1:6379/6", "auth_failed"),
                      ("redis://127.0.0.1:1/0", "connection_refused")]:
        with pytest.raises(NodeError) as exc:
            connection_test(url=url, policy=policy)
        assert exc.value.code == code, (url, exc.value.message)
        assert "wrong-pw-1" not in exc.value.message
