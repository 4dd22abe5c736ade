"""Queue-trigger test helpers: broker names per test, a published workflow fed by a queue, a TCP
proxy the test controls (to take the broker away from a consumer without restarting RabbitMQ,
which the other test processes on this machine share), and waiting."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from typing import Any

import pika

from accounts.models import Team
from accounts.services import credential_create
from tests.conftest import published_make
from workflows.models import Trigger
from workflows.triggers import trigger_create

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/6"

ORDER_GRAPH: dict[str, Any] = {
    "inputs": {"orderId": {"type": "string", "required": True}, "amount": {"type": "number"}},
    "nodes": [{"id": "start", "type": "start"},
              {"id": "end", "type": "end", "config": {"outputs": {"orderId": "{{ inputs.orderId }}"}}}],
    "edges": [{"from": "start", "to": "end"}],
}


def unique_name(kind: str) -> str:
    return f"queues_{kind}_{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def queue_trigger_make(team: Team, *, url: str, source: str, group: str = "", graph: dict[str, Any] | None = None,
                       credential: str | None = None) -> Trigger:
    name = credential or unique_name("cred")
    credential_create(team=team, name=name, kind="broker", secrets={"url": url})
    workflow = published_make(team, graph or ORDER_GRAPH)
    return trigger_create(team=team, workflow=workflow, kind="queue", credential=name, source=source, group=group)


def amqp_publish(queue: str, body: bytes, message_id: str | None = None) -> None:
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        channel.confirm_delivery()
        channel.basic_publish("", queue, body, pika.BasicProperties(message_id=message_id, delivery_mode=2))
    finally:
        conn.close()


def amqp_depth(queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of ``queue``."""
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    try:
        ok = conn.channel().queue_declare(queue, passive=True).method
        return ok.message_count, 0
    finally:
        conn.close()


def amqp_delete(queue: str) -> None:
    with contextlib.suppress(Exception):
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
        conn.channel().queue_delete(queue)
        conn.close()


class TcpProxy:
    """A real TCP proxy on 127.0.0.1 in front of ``target``; ``down()`` closes the listener and every
    proxied connection (the broker is gone, as far as the client can tell); ``up()`` listens again on
    the same port. ``cut_uplink_after(marker)``: from the moment ``marker`` comes from the target
    (before the client gets it), nothing the client sends reaches the target any more (a network
    partition right after a delivery: the client's acknowledgement is lost); ``up()`` heals it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.connections = 0
        self.marker: bytes | None = None
        self.uplink_cut = threading.Event()

    def cut_uplink_after(self, marker: bytes) -> TcpProxy:
        self.marker = marker
        return self

    def up(self) -> TcpProxy:
        self.marker = None
        self.uplink_cut.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            sockets, self.sockets = self.sockets, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
                self.connections += 1
            for a, b, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, down), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if downstream and self.marker is not None and self.marker in data:
                    self.uplink_cut.set()  # before the client can see it, so its answer is lost
                if not downstream and self.uplink_cut.is_set():
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
