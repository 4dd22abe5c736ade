"""Message brokers for ``queue`` nodes and queue triggers: RabbitMQ (pika) and Redis Streams (redis-py).

A broker credential is one URL: ``amqp://user:pass@host:5672/vhost`` (``amqps://`` for TLS) or
``redis://:pass@host:6379/0`` (``rediss://``). The host is resolved and checked against the address
policy and the client connects to the checked address (TLS keeps the name for verification).

Publishing (``publish``):
- AMQP: with publisher confirms and ``mandatory``: ``publish`` returns once the broker has
  confirmed the message; an unroutable message is a permanent ``unroutable`` failure, a nack or a
  lost connection a retryable one. ``target`` is a queue (sent through the default exchange) unless
  a ``routing_key`` is given, then it is an exchange. Messages are persistent, JSON, with
  ``message_id`` (the node's receipt token: the same on every retry) and the context headers.
- Redis Streams: ``XADD target * message <json> message_id <id> headers <json>``.

Connections are pooled per (team, URL) in this process (AMQP: a few idle connections, checked for
liveness before reuse; Redis: the client's own pool).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pika
import pika.exceptions
import redis

from workflows.engine.connections import ConnectionPolicy, address_check, scrub, url_parse
from workflows.engine.errors import LimitExceeded, NodeError, NodeTimeout

# pika logs every failed connection attempt at ERROR with a traceback; the failure is reported as the
# node's (or consumer's) error instead.
logging.getLogger("pika").setLevel(logging.CRITICAL)

AMQP_SCHEMES = ("amqp", "amqps")
REDIS_SCHEMES = ("redis", "rediss")
_IDLE_AMQP_PER_URL = 4


@dataclass(frozen=True)
class BrokerPolicy(ConnectionPolicy):
    max_message_bytes: int = 1024 * 1024


def broker_kind(url: str) -> str:
    """``amqp`` or ``redis`` for a broker URL; anything else is a permanent ``invalid_url``."""
    scheme = url_parse(url).scheme
    if scheme in AMQP_SCHEMES:
        return "amqp"
    if scheme in REDIS_SCHEMES:
        return "redis"
    raise NodeError("the broker URL must start with amqp://, amqps://, redis:// or rediss://", code="invalid_url")


def amqp_parameters(url: str, policy: ConnectionPolicy, *, heartbeat: int = 30) -> pika.ConnectionParameters:
    parsed = url_parse(url)
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    address = address_check(parsed.host, port, policy)
    vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
    ssl_options = None
    if parsed.scheme == "amqps":
        ssl_options = pika.SSLOptions(ssl.create_default_context(), server_hostname=parsed.host)
    return pika.ConnectionParameters(
        host=address, port=port, virtual_host=vhost,
        credentials=pika.PlainCredentials(parsed.username or "guest", parsed.password or "guest"),
        ssl_options=ssl_options, connection_attempts=1, socket_timeout=policy.connect_timeout,
        stack_timeout=policy.connect_timeout + 5, blocked_connection_timeout=policy.connect_timeout,
        heartbeat=heartbeat,
    )


def redis_client(url: str, policy: ConnectionPolicy, *, read_timeout: float | None = None) -> redis.Redis:
    parsed = url_parse(url)
    port = parsed.port or 6379
    address = address_check(parsed.host, port, policy)
    try:
        db = int(parsed.path.lstrip("/") or 0)
    except ValueError:
        raise NodeError("a Redis URL's path is the database number: redis://host:6379/0", code="invalid_url") from None
    kwargs: dict[str, Any] = {}
    if parsed.scheme == "rediss":
        kwargs.update(ssl=True, ssl_check_hostname=True, ssl_server_hostname=parsed.host)
    return redis.Redis(
        host=address, port=port, db=db, username=parsed.username or None, password=parsed.password or None,
        socket_connect_timeout=policy.connect_timeout,
        socket_timeout=read_timeout if read_timeout is not None else policy.connect_timeout + 5,
        health_check_interval=30, **kwargs,
    )


def broker_error(exc: BaseException, url: str) -> NodeError:
    """A clear error for a broker failure, never containing the URL's secrets."""
    secrets = [url, url_parse(url).password]
    reason = str(exc) or " ".join(repr(a) for a in getattr(exc, "args", ()))  # pika keeps it in args
    text = scrub(f"{type(exc).__name__}: {reason}".strip(), secrets)
    if isinstance(exc, NodeError):
        return exc
    if isinstance(exc, pika.exceptions.ProbableAuthenticationError | redis.AuthenticationError):
        return NodeError(f"authentication failed: {text}", code="auth_failed")
    if isinstance(exc, redis.ResponseError) and ("WRONGPASS" in str(exc) or "NOAUTH" in str(exc)):
        return NodeError(f"authentication failed: {text}", code="auth_failed")
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return NodeError(f"access denied (unknown virtual host or no permission): {text}", code="access_denied")
    if isinstance(exc, pika.exceptions.UnroutableError):
        return NodeError("the broker could not route the message to any queue", code="unroutable")
    if isinstance(exc, pika.exceptions.NackError):
        return NodeError("the broker refused the message (nack)", retryable=True, code="broker_nack")
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return NodeError(f"the broker refused: {exc.reply_text}", code="broker_error")
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return NodeTimeout(f"the broker did not answer in time: {text}")
    if "refused" in text.lower():
        return NodeError(f"connection refused: {text}", retryable=True, code="connection_refused")
    if isinstance(exc, pika.exceptions.AMQPError | redis.ConnectionError | OSError):
        return NodeError(f"broker connection failed: {text}", retryable=True, code="connection_error")
    if isinstance(exc, redis.ResponseError):
        return NodeError(f"the broker refused: {text}", code="broker_error")
    return NodeError(f"broker error: {text}", retryable=True, code="connection_error")


class _AmqpPool:
    def __init__(self) -> None:
        self.idle: queue.LifoQueue[pika.BlockingConnection] = queue.LifoQueue()


class BrokerClients:
    """Pooled publisher connections per (team, URL) in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._amqp: dict[tuple[str, str], _AmqpPool] = {}
        self._redis: dict[tuple[str, str], redis.Redis] = {}

    @contextmanager
    def amqp_channel(self, *, team: str, url: str, policy: BrokerPolicy) -> Iterator[Any]:
        """A confirm-mode channel on a pooled connection; the connection returns to the pool when
        the block ends cleanly and is closed when it raised."""
        with self._lock:
            pool = self._amqp.setdefault((team, url), _AmqpPool())
        conn = None
        while True:
            try:
                conn = pool.idle.get_nowait()
            except queue.Empty:
                conn = None
                break
            if conn.is_open:
                try:
                    conn.process_data_events(0)  # notices a connection the broker closed
                    break
                except Exception:
                    pass
            _close_quietly(conn)
        try:
            if conn is None:
                conn = pika.BlockingConnection(amqp_parameters(url, policy, heartbeat=0))
            channel = conn.channel()
            channel.confirm_delivery()
        except Exception as exc:
            if conn is not None:
                _close_quietly(conn)
            raise broker_error(exc, url) from None
        try:
            yield channel
        except Exception:
            _close_quietly(conn)
            raise
        try:
            channel.close()
        except Exception:
            _close_quietly(conn)
            return
        if pool.idle.qsize() < _IDLE_AMQP_PER_URL:
            pool.idle.put(conn)
        else:
            _close_quietly(conn)

    def redis(self, *, team: str, url: str, policy: BrokerPolicy) -> redis.Redis:
        key = (team, url)
        with self._lock:
            client = self._redis.get(key)
        if client is None:
            client = redis_client(url, policy)
            with self._lock:
                client = self._redis.setdefault(key, client)
        return client

    def close(self) -> None:
        with self._lock:
            amqp, self._amqp = self._amqp, {}
            clients, self._redis = self._redis, {}
        for pool in amqp.values():
            while not pool.idle.empty():
                _close_quietly(pool.idle.get_nowait())
        for client in clients.values():
            client.close()


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


CLIENTS = BrokerClients()


def message_encode(message: Any, policy: BrokerPolicy) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > policy.max_message_bytes:
        raise LimitExceeded(f"the message is larger than the {policy.max_message_bytes}-byte limit")
    return body


def publish(*, team: str, url: str, target: str, routing_key: str | None, body: bytes, message_id: str,
            headers: Mapping[str, str], policy: BrokerPolicy, clients: BrokerClients = CLIENTS) -> None:
    """Send one message and return once the broker has it (AMQP: confirmed)."""
    kind = broker_kind(url)
    if kind == "amqp":
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                          message_id=message_id, headers=dict(headers))
        exchange, key = (target, routing_key) if routing_key else ("", target)
        for attempt in (1, 2):
            try:
                with clients.amqp_channel(team=team, url=url, policy=policy) as channel:
                    channel.basic_publish(exchange=exchange, routing_key=key, body=body, properties=properties,
                                          mandatory=True)
                return
            except (pika.exceptions.StreamLostError, pika.exceptions.ConnectionWrongStateError,
                    pika.exceptions.ConnectionClosed) as exc:
                if attempt == 2:  # a pooled connection may have gone stale: one fresh try
                    raise broker_error(exc, url) from None
            except NodeError:
                raise
            except Exception as exc:
                raise broker_error(exc, url) from None
        return
    client = clients.redis(team=team, url=url, policy=policy)
    try:
        client.xadd(target, {"message": body, "message_id": message_id,
                             "headers": json.dumps(dict(headers), separators=(",", ":"))})
    except Exception as exc:
        raise broker_error(exc, url) from None


def connection_test(*, url: str, policy: BrokerPolicy) -> None:
    """Connect and authenticate once (the credential's "test connection"); raises ``NodeError``."""
    kind = broker_kind(url)
    try:
        if kind == "amqp":
            conn = pika.BlockingConnection(amqp_parameters(url, policy, heartbeat=0))
            conn.close()
        else:
            client = redis_client(url, policy)
            try:
                client.ping()
            finally:
                client.close()
    except NodeError:
        raise
    except Exception as exc:
        raise broker_error(exc, url) from None
