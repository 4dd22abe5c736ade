"""Queue triggers: what happens to one message, and what the consumer processes report.

The consumer process (``workflows.queue_consumer``, ``manage.py weftconsumers``) receives messages
and calls ``queue_message_receive`` for each; it acknowledges the message on the broker only after
this returns, so a message is acknowledged only once its run (or its dead letter) is committed.

- Dedupe: the run and a ``TriggerDelivery`` row keyed by ``(trigger, message id)`` are written in
  one transaction. A redelivered message (a consumer died between the commit and the ack, the
  broker restarted, another process claimed it) hits the unique constraint and starts nothing; it
  is answered ``duplicate`` and acknowledged.
- Dead letters: a message that is not UTF-8 JSON, not a JSON object, larger than
  ``WEFT_QUEUE_MAX_MESSAGE_BYTES``, or whose run cannot start (invalid inputs, no published version,
  disabled app) is stored as a ``TriggerDeadLetter`` with the reason (once per message id) and
  acknowledged: retrying it could never succeed.
- Anything else (the platform database is unavailable, ...) raises: the consumer does not
  acknowledge, and the broker redelivers the message later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Team
from config.errors import DomainError, InvalidInput, team_owned
from config.jsoninput import json_input_check
from runs.lifecycle import QUEUE, run_start
from runs.models import RunMode
from workflows.models import Trigger, TriggerConsumer, TriggerDeadLetter, TriggerDelivery, TriggerKind

DEAD_LETTER_BODY_CHARS = 64 * 1024
# A consumer that has not reported for this long is not counted as connected.
CONSUMER_STALE_SECONDS = 30


@dataclass(frozen=True)
class Received:
    """What became of one message: ``started`` (``run_id``), ``duplicate`` or ``dead_letter``."""

    outcome: str
    run_id: Any = None
    reason: str = ""


def message_id_for(body: bytes, given: str | None) -> str:
    """The message's id as sent, else a digest of its body (publishers should set ids: without
    one, two identical bodies on the same trigger count as one message)."""
    if given:
        return str(given)[:255]
    return "sha256:" + hashlib.sha256(body).hexdigest()


# -- selectors ----------------------------------------------------------------------------------

def queue_triggers_enabled() -> QuerySet[Trigger]:
    """Enabled queue triggers of every team, for the consumer processes."""
    return (Trigger.objects.filter(kind=TriggerKind.QUEUE, enabled=True)
            .select_related("team", "workflow", "workflow__app", "workflow__active_version")
            .order_by("created_at")[: settings.WEFT_CONSUMER_MAX_TRIGGERS])


def dead_letter_list(*, team: Team, trigger: Trigger) -> QuerySet[TriggerDeadLetter]:
    team_owned(team, trigger, "Trigger")
    return TriggerDeadLetter.objects.filter(team=team, trigger=trigger).order_by("-created_at")


def consumer_status(*, trigger: Trigger) -> dict[str, Any]:
    """The consumer status of one queue trigger, over the processes that report on it."""
    rows = list(TriggerConsumer.objects.filter(team_id=trigger.team_id, trigger=trigger))
    fresh_after = timezone.now() - timedelta(seconds=CONSUMER_STALE_SECONDS)
    live = [r for r in rows if r.heartbeat_at >= fresh_after]
    errors = sorted((r for r in rows if r.last_error_at), key=lambda r: r.last_error_at, reverse=True)
    lags = [r.lag for r in live if r.lag is not None]
    messages = [r.last_message_at for r in rows if r.last_message_at]
    return {
        "connected": any(r.connected for r in live),
        "consumers": len(live),
        "lag": max(lags) if lags else None,
        "last_error": errors[0].last_error if errors else None,
        "last_error_at": errors[0].last_error_at if errors else None,
        "last_message_at": max(messages) if messages else None,
        "messages": sum(r.messages for r in rows),
        "dead_letters": TriggerDeadLetter.objects.filter(team_id=trigger.team_id, trigger=trigger).count(),
    }


# -- services -----------------------------------------------------------------------------------

def _dead_letter(trigger: Trigger, message_id: str, body: bytes, reason: str, detail: Any = None) -> Received:
    with transaction.atomic():
        # Once per message id: a redelivered poison message adds no second entry.
        if not TriggerDelivery.objects.filter(trigger=trigger, webhook_id=message_id).exists():
            try:
                with transaction.atomic():
                    TriggerDelivery.objects.create(team_id=trigger.team_id, trigger=trigger, webhook_id=message_id)
                    TriggerDeadLetter.objects.create(
                        team_id=trigger.team_id, trigger=trigger, message_id=message_id, reason=reason, detail=detail,
                        body=body[: DEAD_LETTER_BODY_CHARS * 4].decode("utf-8", errors="replace")[:DEAD_LETTER_BODY_CHARS]
                        .replace("\x00", "\ufffd"))
            except IntegrityError:
                pass
    return Received("dead_letter", reason=reason)


def _inputs_parse(body: bytes) -> tuple[dict[str, Any] | None, str, Any]:
    if len(body) > settings.WEFT_QUEUE_MAX_MESSAGE_BYTES:
        return None, "too_large", {"bytes": len(body), "limit": settings.WEFT_QUEUE_MAX_MESSAGE_BYTES}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, "not_json", {"message": str(exc)[:200]}
    try:
        json_input_check(value)  # nesting budget; NUL and lone surrogates no database stores
    except InvalidInput as exc:
        return None, "invalid_inputs", {"errors": exc.errors}
    if not isinstance(value, dict):
        return None, "not_object", {"message": f"a queue message must be a JSON object, not {type(value).__name__}"}
    return value, "", None


def queue_message_receive(*, trigger: Trigger, message_id: str, body: bytes) -> Received:
    """Start the trigger's workflow with the message (a JSON object) as inputs, once per message id."""
    if TriggerDelivery.objects.filter(trigger=trigger, webhook_id=message_id).exists():
        return Received("duplicate")
    inputs, reason, detail = _inputs_parse(body)
    if inputs is None:
        return _dead_letter(trigger, message_id, body, reason, detail)
    try:
        with transaction.atomic():
            run = run_start(team=trigger.team, workflow=trigger.workflow, inputs=inputs, mode=RunMode.ASYNC,
                            origin=QUEUE, user=f"trigger:{trigger.pk}")
            TriggerDelivery.objects.create(team_id=trigger.team_id, trigger=trigger, webhook_id=message_id, run=run)
            Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=timezone.now())
    except IntegrityError:
        return Received("duplicate")  # another consumer recorded the same message first
    except InvalidInput as exc:
        return _dead_letter(trigger, message_id, body, "invalid_inputs", {"errors": exc.errors or [], "message": exc.detail})
    except DomainError as exc:
        return _dead_letter(trigger, message_id, body, "workflow_unavailable", {"message": str(exc.detail)})
    return Received("started", run_id=run.pk)


def consumer_report(*, trigger: Trigger, consumer: str, connected: bool | None = None, lag: int | None = None,
                    error: str | None = None, handled: int = 0) -> None:
    """Record what consumer process ``consumer`` knows about ``trigger`` (a heartbeat too)."""
    now = timezone.now()
    fields: dict[str, Any] = {"heartbeat_at": now}
    if connected is not None:
        fields["connected"] = connected
    if lag is not None:
        fields["lag"] = lag
    if error is not None:
        fields.update(last_error=error[:2000], last_error_at=now)
    if handled:
        fields.update(messages=F("messages") + handled, last_message_at=now)
    updated = TriggerConsumer.objects.filter(trigger=trigger, consumer=consumer).update(**fields)
    if not updated:
        create = {k: v for k, v in fields.items() if k != "messages"}
        try:
            TriggerConsumer.objects.create(team_id=trigger.team_id, trigger=trigger, consumer=consumer,
                                           messages=handled, **create)
        except IntegrityError:
            TriggerConsumer.objects.filter(trigger=trigger, consumer=consumer).update(**fields)


def consumer_forget(*, consumer: str) -> None:
    """A consumer process stopping cleanly: its rows say disconnected."""
    TriggerConsumer.objects.filter(consumer=consumer).update(connected=False, heartbeat_at=timezone.now())
