"""The ``queue`` node: publish one JSON message to RabbitMQ (queue or exchange) or a Redis Stream.

``{"credential": name, "target": queue|exchange|stream, "routing_key": ..., "message": value,
"headers": {...}}``. ``message`` and ``headers`` may hold templates; ``target`` and
``routing_key`` may too. The message carries the context headers ``Weft-Run-ID`` and
``Weft-Node-ID``, and ``Weft-Receipt-Token`` as its message id (the same on every retry, so a
consumer can drop a retried publish as a duplicate). AMQP publishes wait for the publisher
confirm (``workflows.engine.brokers``). Output: ``{"message_id", "target"}``.

Services used (``workflows.engine.ports.Services``): ``credential(name)`` → ``{"kind": "broker",
"url"}``; ``broker_policy``; ``team_key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.brokers import message_encode, publish
from workflows.engine.nodes.base import NodeContext, NodeError, NodeResult, NodeType, Reference
from workflows.engine.nodes.db import credential_url
from workflows.engine.outbound import check_headers


class QueueNode(NodeType):
    type: ClassVar[str] = "queue"
    title: ClassVar[str] = "Message queue"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "title": "Publish a message",
        "description": "Publishes one JSON message to a RabbitMQ queue or exchange, or a Redis Stream, through a "
                       "broker credential; waits for the broker's confirm.",
        "required": ["credential", "target"],
        "properties": {
            "credential": {"type": "string", "minLength": 1, "title": "Credential",
                           "description": "Name of a team credential of kind `broker` (amqp:// or redis://)."},
            "target": {"type": "string", "minLength": 1, "maxLength": 255, "title": "Target",
                       "description": "RabbitMQ: a queue name, or an exchange name when a routing key is set. "
                                      "Redis: the stream name."},
            "routing_key": {"type": "string", "maxLength": 255, "title": "Routing key",
                            "description": "RabbitMQ only: publish to the exchange `target` with this key."},
            "message": {"title": "Message",
                        "description": "Any JSON value (templates allowed); default: the upstream output."},
            "headers": {"type": "object", "title": "Headers",
                        "description": "Extra string headers (AMQP headers; a `headers` field on Redis).",
                        "additionalProperties": {"type": "string"}},
        },
        "additionalProperties": False,
    }
    default_retry: ClassVar[dict[str, Any] | None] = None
    default_timeout: ClassVar[float | None] = 30

    def references(self, config: Mapping[str, Any]) -> list[Reference]:
        return [Reference("/credential", "credential", config.get("credential"), accepts=("broker",))]

    def run(self, ctx: NodeContext) -> NodeResult:
        config = ctx.resolve(dict(ctx.config))
        url = credential_url(ctx, config.get("credential"), "broker")
        target, routing_key = config.get("target"), config.get("routing_key") or None
        if not isinstance(target, str) or not target:
            raise NodeError(f"nodes.{ctx.node_id}.config.target: must be a non-empty string", code="bad_config")
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        check_headers(headers)
        headers.update({"Weft-Run-ID": ctx.run_id, "Weft-Node-ID": ctx.node_id,
                        "Weft-Receipt-Token": ctx.receipt_token})
        policy = ctx.services.broker_policy
        message = config.get("message", ctx.upstream)
        body = message_encode(message, policy)
        publish(team=ctx.services.team_key, url=url, target=target,
                routing_key=routing_key, body=body, message_id=ctx.receipt_token, headers=headers, policy=policy)
        return NodeResult(output={"message_id": ctx.receipt_token, "target": target})
