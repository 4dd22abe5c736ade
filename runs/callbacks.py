"""Callbacks of async HTTP steps (``mode: webhook``).

The node's request carries ``Weft-Webhook-URL`` =
``/api/v1/callbacks/{run_id}/{node_id}/{receipt_token}``; the service POSTs the result there. The
receipt token authenticates the call: it is an HMAC of the run id and the node execution key, so
a guessed or foreign token is answered 404 exactly like a missing run. The first callback is
stored; repeats get 200 and change nothing. A run parked waiting for the callback is woken.
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import NotFound
from config.jsoninput import json_input_check, json_input_loads
from runs.models import NodeCallback, NodeRun, Run, RunStatus
from runs.taskqueue import run_enqueue
from workflows.engine.scheduler import receipt_token


def receipt_token_valid(*, run: Run, node_id: str, token: str) -> bool:
    if not token.isascii() or not node_id.isascii():  # never ours; compare_digest refuses non-ASCII str
        return False
    expected = receipt_token(settings.SECRET_KEY.encode(), str(run.pk), node_id)
    if hmac.compare_digest(expected, token):
        return True
    # Loop body executions have keys like "loop[3].node": accept a token the run has recorded.
    return NodeRun.objects.filter(run=run, node_id=node_id, receipt_token=token).exists()


def callback_body_parse(raw: bytes, content_type: str) -> Any:
    """The body as JSON, or as text when it is not JSON; ``InvalidInput`` for what cannot be
    stored (``config.jsoninput``: too deep, NUL characters, lone surrogates)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(text) if text else None
    except RecursionError:
        return json_input_loads(text)  # refused: nested deeper than the budget
    except ValueError:
        value = text
    return json_input_check(value)


def callback_store(*, run_id: str, node_id: str, token: str, content_type: str, raw: bytes) -> bool:
    """Store the first callback for the token; returns False for a repeat. ``NotFound`` when the run
    or the token is not known."""
    run = Run.objects.filter(pk=run_id).first() if _uuid_like(run_id) else None
    if run is None or not receipt_token_valid(run=run, node_id=node_id, token=token):
        raise NotFound("Unknown callback URL.")
    body = callback_body_parse(raw, content_type)
    try:
        with transaction.atomic():
            NodeCallback.objects.create(team_id=run.team_id, run=run, node_id=node_id, receipt_token=token,
                                        content_type=content_type[:120], body=body)
    except IntegrityError:
        return False
    run_wake_if_waiting(run_id=run.pk)
    return True


def run_wake_if_waiting(*, run_id: Any) -> None:
    """A parked run whose awaited callback arrived is due now: queue it for a worker."""
    now = timezone.now()
    if Run.objects.filter(pk=run_id, status=RunStatus.WAITING).update(wake_at=now):
        run_enqueue(run_id)


def callback_result(*, run_id: str, receipt_token: str) -> dict[str, Any] | None:
    row = NodeCallback.objects.filter(run_id=run_id, receipt_token=receipt_token).values("content_type", "body").first()
    if row is None:
        return None
    return {"content_type": row["content_type"], "body": row["body"]}


def _uuid_like(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
