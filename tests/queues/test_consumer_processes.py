"""``manage.py weftconsumers`` as real processes: killed with SIGKILL between recording a message's
run and acknowledging it (the redelivered message starts no second run), and two processes sharing
one queue and one stream (every message runs exactly once).

The crash is a real one, with nothing in the product to help it: the consumer reaches the broker
through a TCP proxy that drops everything the consumer sends once the message has been delivered
(its acknowledgement never arrives), and the test SIGKILLs the process as soon as the message's
run is recorded."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import pytest
import redis

from runs.models import Run
from tests.queues.helpers import (
    AMQP_URL,
    REDIS_URL,
    TcpProxy,
    amqp_delete,
    amqp_depth,
    amqp_publish,
    queue_trigger_make,
    unique_name,
    wait_for,
)
from tests.support.processes import start, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ENV = {"WEFT_HTTP_ALLOW_NETWORKS": "127.0.0.0/8", "WEFT_CONSUMER_RELOAD_SECONDS": "0.5",
       "WEFT_CONSUMER_CLAIM_IDLE_SECONDS": "1", "WEFT_CONSUMER_MAX_BACKOFF": "1", "WEFT_LOG_LEVEL": "WARNING"}


def consumers(**env: str) -> Any:
    return start([sys.executable, "manage.py", "weftconsumers"], name="weftconsumers", **{**ENV, **env})


def orders(trigger: Any) -> Counter[str]:
    return Counter(Run.objects.filter(workflow=trigger.workflow).values_list("inputs__orderId", flat=True))


@pytest.mark.parametrize("broker", ["amqp", "redis"])
def test_sigkill_between_record_and_ack_then_redelivery_starts_no_second_run(team_a: Any, broker: str) -> None:
    source = unique_name("crash")
    client = redis.Redis.from_url(REDIS_URL)
    proxy = TcpProxy(("127.0.0.1", 5672 if broker == "amqp" else 6379)).up()
    through = (f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F" if broker == "amqp"
               else f"redis://127.0.0.1:{proxy.port}/6")
    trigger = queue_trigger_make(team_a, url=through, source=source)
    crashing = survivor = None
    try:
        if broker == "redis":
            client.xgroup_create(source, "weft", id="0", mkstream=True)
        crashing = consumers()
        wait_for(lambda: trigger.consumers.filter(connected=True).exists(), timeout=60, what="the consumer connected")
        proxy.cut_uplink_after(b"K1-crash")
        if broker == "amqp":  # published directly to the broker, delivered through the proxy
            amqp_publish(source, b'{"orderId": "K1-crash"}', message_id="k-1")
        else:
            client.xadd(source, {"message": '{"orderId": "K1-crash"}', "message_id": "k-1"})
        wait_for(lambda: orders(trigger) == Counter({"K1-crash": 1}), timeout=60, what="the message's run recorded")
        assert proxy.uplink_cut.is_set()
        stop(crashing, kill=True)
        assert crashing.returncode == -9, crashing.log_tail()
        proxy.down()  # the dead consumer's connections close: the broker never got the acknowledgement
        if broker == "amqp":
            wait_for(lambda: amqp_depth(source)[0] == 1, timeout=30, what="the message back in the queue")
        else:
            assert client.xpending(source, "weft")["pending"] == 1
        proxy.up()
        survivor = consumers()
        if broker == "amqp":
            wait_for(lambda: amqp_depth(source)[0] == 0, timeout=60, what="the redelivered message acknowledged")
        else:
            wait_for(lambda: client.xpending(source, "weft")["pending"] == 0, timeout=60,
                     what="the pending entry claimed and acknowledged")
        assert orders(trigger) == Counter({"K1-crash": 1}), survivor.log_tail()
    finally:
        for proc in (crashing, survivor):
            if proc is not None and proc.poll() is None:
                stop(proc)
        proxy.down()
        amqp_delete(source)
        client.delete(source)
        client.close()


def test_two_consumer_processes_share_a_queue_and_a_stream_exactly_once(team_a: Any) -> None:
    queue, stream = unique_name("shared"), unique_name("shared")
    client = redis.Redis.from_url(REDIS_URL)
    q_trigger = queue_trigger_make(team_a, url=AMQP_URL, source=queue)
    s_trigger = queue_trigger_make(team_a, url=REDIS_URL, source=stream)
    procs = [consumers(), consumers()]
    try:
        # Both processes consuming before anything is published (on a loaded machine the second one
        # can start after the first has run everything).
        wait_for(lambda: q_trigger.consumers.filter(connected=True).count() == 2
                 and s_trigger.consumers.filter(connected=True).count() == 2, timeout=90, what="both consumers")
        for i in range(40):
            amqp_publish(queue, json.dumps({"orderId": f"Q{i}"}).encode(), message_id=f"q-{i}")
            client.xadd(stream, {"message": json.dumps({"orderId": f"S{i}"}), "message_id": f"s-{i}"})
        wait_for(lambda: sum(orders(q_trigger).values()) == 40 and sum(orders(s_trigger).values()) == 40,
                 timeout=90, what="80 runs")
        assert orders(q_trigger) == Counter({f"Q{i}": 1 for i in range(40)})
        assert orders(s_trigger) == Counter({f"S{i}": 1 for i in range(40)})
        consumers_seen = {c for (c,) in q_trigger.consumers.values_list("consumer")}
        assert len(consumers_seen) == 2
    finally:
        for proc in procs:
            stop(proc)
        amqp_delete(queue)
        client.delete(stream)
        client.close()
