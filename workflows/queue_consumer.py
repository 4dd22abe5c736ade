"""The consumer process of queue triggers (``manage.py weftconsumers``).

One process serves every enabled queue trigger (up to ``WEFT_CONSUMER_MAX_TRIGGERS``), one thread
per trigger, so a trigger whose broker is slow or gone, or whose workflow is slow, never holds up
another: the thread only records the run (``workflows.queue_triggers.queue_message_receive``),
the run itself executes in the django-q2 workers like every async run. Several processes may run
side by side (production): RabbitMQ spreads a queue's messages over its consumers, Redis Streams
consumer groups spread a stream's entries over the group's consumers, and the dedupe by message id
keeps a message that reaches two processes to one run.

- Reload: every ``WEFT_CONSUMER_RELOAD_SECONDS`` the process reads the enabled queue triggers and
  starts a thread for a new one, stops the thread of a removed or disabled one, and restarts the
  thread of a changed one (the trigger or its credential changed), without a restart.
- Reconnect: a thread that loses its broker reports the error and reconnects with exponential
  backoff (1 s doubling up to ``WEFT_CONSUMER_MAX_BACKOFF``, with jitter).
- Acknowledgement: only after ``queue_message_receive`` returned (the run or the dead letter is
  committed). If the process dies in between, the broker redelivers (AMQP: the unacked message
  goes back to the queue when the connection drops; Redis: the entry stays pending and is claimed by
  a live consumer after ``WEFT_CONSUMER_CLAIM_IDLE_SECONDS``), and the dedupe starts no second run.
- Prefetch: at most ``WEFT_CONSUMER_PREFETCH`` unacknowledged messages per trigger per process
  (AMQP ``basic.qos``; Redis ``XREADGROUP COUNT``).
- Status: connected, lag (queue depth; stream lag + pending), last error and a heartbeat are
  written to ``TriggerConsumer`` (the triggers page and the API show them).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from typing import Any

import pika
import pika.exceptions
import redis
from django.db import DatabaseError, close_old_connections, connection

from accounts.connections import broker_policy
from accounts.selectors import credential_secret
from config.errors import DomainError
from workflows.engine.brokers import amqp_parameters, broker_error, broker_kind, redis_client
from workflows.engine.connections import scrub, url_parse
from workflows.models import Trigger
from workflows.queue_triggers import (
    consumer_forget,
    consumer_report,
    message_id_for,
    queue_message_receive,
    queue_triggers_enabled,
)

logger = logging.getLogger(__name__)

STATUS_EVERY = 5.0  # seconds between heartbeats / lag reads of one trigger


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"[:120]


class TriggerWorker(threading.Thread):
    """Consumes one queue trigger's queue or stream until ``stop`` is set."""

    def __init__(self, trigger: Trigger, *, url: str, consumer: str, settings: Any) -> None:
        super().__init__(name=f"queue-trigger-{trigger.pk}", daemon=True)
        self.trigger = trigger
        self.url = url
        self.consumer = consumer
        self.settings = settings
        self.stop_event = threading.Event()
        self.last_status = 0.0
        self.handled = 0

    # -- loop -------------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        try:
            while not self.stop_event.is_set():
                try:
                    kind = broker_kind(self.url)
                    if kind == "amqp":
                        self.consume_amqp()
                    else:
                        self.consume_redis()
                    backoff = 1.0
                except Exception as exc:  # report, back off, reconnect: the thread never dies
                    if isinstance(exc, DatabaseError):
                        connection.close()  # a fresh connection for the next attempt
                    error = self.describe(exc)
                    logger.warning("queue trigger %s: %s", self.trigger.pk, error)
                    self.report(connected=False, error=error)
                    wait = backoff * (0.5 + random.random() / 2)
                    backoff = min(backoff * 2, float(self.settings.WEFT_CONSUMER_MAX_BACKOFF))
                    self.stop_event.wait(wait)
        finally:
            self.report(connected=False)
            connection.close()

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, DatabaseError):  # recording failed: nothing acknowledged, the broker redelivers
            message = f"platform database unavailable: {type(exc).__name__}"
        else:
            message = broker_error(exc, self.url).message
        return scrub(message, [self.url, url_parse(self.url).password])

    def report(self, **fields: Any) -> None:
        handled, self.handled = self.handled, 0
        try:
            consumer_report(trigger=self.trigger, consumer=self.consumer, handled=handled, **fields)
        except Exception:  # the platform database is away: the next report tries again
            self.handled += handled
            logger.exception("queue trigger %s: status not recorded", self.trigger.pk)
            close_old_connections()
        self.last_status = time.monotonic()

    def receive(self, body: bytes, message_id: str | None) -> None:
        """Record one message (a run, a duplicate, a dead letter); raises if nothing was recorded."""
        received = queue_message_receive(trigger=self.trigger, message_id=message_id_for(body, message_id), body=body)
        self.handled += 1
        if received.outcome == "dead_letter":
            logger.info("queue trigger %s: message dead-lettered (%s)", self.trigger.pk, received.reason)

    # -- RabbitMQ -----------------------------------------------------------------------------

    def consume_amqp(self) -> None:
        source = self.trigger.source
        conn = pika.BlockingConnection(amqp_parameters(self.url, broker_policy(), heartbeat=30))
        try:
            channel = conn.channel()
            try:
                channel.queue_declare(source, durable=True)
            except pika.exceptions.ChannelClosedByBroker:
                # The queue exists with other arguments: consume it as it is.
                channel = conn.channel()
                channel.queue_declare(source, passive=True)
            channel.basic_qos(prefetch_count=max(1, int(self.settings.WEFT_CONSUMER_PREFETCH)))
            self.report(connected=True, lag=self.amqp_lag(channel))
            for method, properties, body in channel.consume(source, inactivity_timeout=1.0):
                if self.stop_event.is_set():
                    break
                if method is not None:
                    self.receive(body, properties.message_id)
                    channel.basic_ack(method.delivery_tag)
                if time.monotonic() - self.last_status >= STATUS_EVERY:
                    self.report(connected=True, lag=self.amqp_lag(channel))
            channel.cancel()
        finally:
            if conn.is_open:
                conn.close()  # unacknowledged messages go back to the queue

    def amqp_lag(self, channel: Any) -> int | None:
        try:
            return int(channel.queue_declare(self.trigger.source, passive=True).method.message_count)
        except pika.exceptions.AMQPError:
            return None

    # -- Redis Streams ------------------------------------------------------------------------

    def consume_redis(self) -> None:
        stream, group = self.trigger.source, self.trigger.group or "weft"
        client = redis_client(self.url, broker_policy(), read_timeout=10)
        try:
            try:
                # A new group reads the stream from its start: nothing published before the first
                # consumer came up is lost.
                client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            count = max(1, int(self.settings.WEFT_CONSUMER_PREFETCH))
            idle_ms = int(float(self.settings.WEFT_CONSUMER_CLAIM_IDLE_SECONDS) * 1000)
            self.report(connected=True, lag=self.redis_lag(client, stream, group))
            # Entries this consumer name received before and did not acknowledge come first.
            self.redis_handle(client, stream, group,
                              client.xreadgroup(group, self.consumer, {stream: "0"}, count=count))
            next_claim = 0.0
            while not self.stop_event.is_set():
                if time.monotonic() >= next_claim:
                    _next, claimed, *_ = client.xautoclaim(stream, group, self.consumer, min_idle_time=idle_ms,
                                                          start_id="0-0", count=count)
                    self.redis_handle(client, stream, group, [[stream, claimed]])
                    next_claim = time.monotonic() + max(0.5, idle_ms / 2000)
                entries = client.xreadgroup(group, self.consumer, {stream: ">"}, count=count, block=1000)
                self.redis_handle(client, stream, group, entries)
                if time.monotonic() - self.last_status >= STATUS_EVERY:
                    self.report(connected=True, lag=self.redis_lag(client, stream, group))
        finally:
            client.close()

    def redis_handle(self, client: redis.Redis, stream: str, group: str, entries: Any) -> None:
        for _stream, messages in entries or []:
            for entry_id, fields in messages or []:
                if fields is None:  # trimmed from the stream while pending: nothing to run
                    client.xack(stream, group, entry_id)
                    continue
                body, message_id = redis_message(fields)
                self.receive(body, message_id or _text(entry_id))
                client.xack(stream, group, entry_id)

    def redis_lag(self, client: redis.Redis, stream: str, group: str) -> int | None:
        try:
            for info in client.xinfo_groups(stream):
                if _text(info.get("name")) == group:
                    return int(info.get("lag") or 0) + int(info.get("pending") or 0)
        except redis.RedisError:
            return None
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def redis_message(fields: dict[Any, Any]) -> tuple[bytes, str | None]:
    """A stream entry as (JSON body, message id): the ``message`` field (what queue nodes send),
    else the entry's fields as a flat JSON object of strings."""
    decoded = {_text(k): v for k, v in fields.items()}
    message_id = _text(decoded["message_id"]) if "message_id" in decoded else None
    if "message" in decoded:
        raw = decoded["message"]
        return (raw if isinstance(raw, bytes) else str(raw).encode("utf-8")), message_id
    flat = {k: _text(v) for k, v in decoded.items() if k not in ("message_id", "headers")}
    return json.dumps(flat).encode("utf-8"), message_id


class ConsumerProcess:
    """Keeps one ``TriggerWorker`` per enabled queue trigger, reloading the set periodically."""

    def __init__(self, settings: Any, *, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or consumer_name()
        self.workers: dict[Any, tuple[tuple[Any, ...], TriggerWorker]] = {}
        self.stop_event = threading.Event()

    def reload(self) -> None:
        wanted: dict[Any, tuple[tuple[Any, ...], Trigger, str]] = {}
        for trigger in queue_triggers_enabled():
            try:
                url = credential_secret(team=trigger.team, name=trigger.credential).get("url", "")
            except DomainError:
                url = ""
            # A change of the trigger or of its credential's URL restarts the trigger's thread.
            version = (trigger.updated_at, trigger.source, trigger.group, trigger.credential, hash(url))
            wanted[trigger.pk] = (version, trigger, url)
        for pk, (version, worker) in list(self.workers.items()):
            if pk not in wanted or wanted[pk][0] != version or not worker.is_alive():
                worker.stop_event.set()
                worker.join(timeout=5)
                del self.workers[pk]
        for pk, (version, trigger, url) in wanted.items():
            if pk in self.workers:
                continue
            if not url:
                consumer_report(trigger=trigger, consumer=self.name, connected=False,
                                error=f"no broker credential named {trigger.credential!r}")
                continue
            worker = TriggerWorker(trigger, url=url, consumer=self.name, settings=self.settings)
            self.workers[pk] = (version, worker)
            worker.start()

    def serve(self) -> None:
        """Reload until ``stop_event`` is set (SIGTERM/SIGINT in the command), then stop every thread."""
        try:
            while not self.stop_event.is_set():
                try:
                    self.reload()
                except Exception:
                    logger.exception("queue consumers: reload failed")
                    close_old_connections()
                self.stop_event.wait(float(self.settings.WEFT_CONSUMER_RELOAD_SECONDS))
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for _version, worker in self.workers.values():
            worker.stop_event.set()
        for _version, worker in self.workers.values():
            worker.join(timeout=10)
        self.workers.clear()
        try:
            consumer_forget(consumer=self.name)
        except Exception:
            logger.exception("queue consumers: could not record the stop")
