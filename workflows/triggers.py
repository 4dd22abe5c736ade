"""Triggers: cron schedules and public webhooks that start a workflow's active version.

Schedules are driven by the one periodic pass (``runs.scheduling.durable_tick``), not by a
django-q2 ``Schedule`` per trigger: django-q2 schedules have minute resolution and no time zone
per schedule, and a single due-query on ``(kind, enabled, next_fire_at)`` scales to many triggers.

- ``next_fire_at`` is the next cron slot (croniter, in the trigger's time zone, stored in UTC).
- Firing claims the slot: ``UPDATE ... SET next_fire_at=<next> WHERE id=... AND next_fire_at=<seen>``.
  Only one cluster wins a slot, and the run is written in the same transaction as the claim.
- Missed slots (downtime) fire once: the run's business time is the latest missed slot (the one
  that would have run last), and ``next_fire_at`` moves to the first slot after now.
- The run's ``business_time`` is its slot, so ``$[yyyyMMdd-1]`` is the day before the fire time.

Webhooks: ``POST /hooks/{key}``; the JSON object body becomes the inputs. A trigger with a signing
secret accepts only Standard Webhooks-signed requests (``runs.signing``); a ``webhook-id`` seen
before answers with the run it started (``TriggerDelivery``), so a retried delivery starts no
second run.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Credential, CredentialKind, Team
from accounts.selectors import credential_secret, row_get
from accounts.tokens import webhook_secret_new
from config.errors import DomainError, InvalidInput, NotFound, team_owned
from config.jsoninput import json_input_loads
from runs.lifecycle import NATIVE_WEBHOOK, SCHEDULE, Origin, run_start
from runs.models import RunMode
from runs.signing import SignatureInvalid, signature_verify
from workflows.models import Trigger, TriggerDelivery, TriggerKind, Workflow

logger = logging.getLogger(__name__)

_UNSET: Any = object()


class SignatureRejected(DomainError):
    status = 401
    code = "invalid_signature"
    title = "Unauthorized"


# -- schedule arithmetic ------------------------------------------------------------------------

def time_zone_valid(value: str, path: str = "/timeZone") -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput("Unknown time zone.", errors=[{"path": path, "message": f"unknown time zone {value!r}"}]) from None
    return value


def cron_valid(value: str, path: str = "/cron") -> str:
    value = (value or "").strip()
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise InvalidInput("Invalid cron expression.",
                           errors=[{"path": path, "message": "a 5-field cron expression, e.g. '0 2 * * *'"}])
    try:  # valid fields can still name no date at all ("0 0 31 2 *": February 31st)
        croniter(value, datetime(2024, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, OverflowError, ValueError):
        raise InvalidInput("The cron expression never fires.",
                           errors=[{"path": path, "message": f"{value!r} matches no date (e.g. February 31st)"}]
                           ) from None
    return value


def cron_next(cron: str, tz: str, after: datetime) -> datetime:
    """The first slot strictly after ``after``, as an aware UTC datetime."""
    local = after.astimezone(ZoneInfo(tz))
    return croniter(cron, local).get_next(datetime).astimezone(ZoneInfo("UTC"))


def cron_latest(cron: str, tz: str, at_or_before: datetime) -> datetime:
    """The last slot at or before ``at_or_before``."""
    local = at_or_before.astimezone(ZoneInfo(tz))
    itr = croniter(cron, local)
    if croniter.match(cron, local) and local.second == 0 and local.microsecond == 0:
        return at_or_before
    return itr.get_prev(datetime).astimezone(ZoneInfo("UTC"))


# -- selectors ----------------------------------------------------------------------------------

def trigger_list(*, team: Team, workflow: Workflow) -> QuerySet[Trigger]:
    return Trigger.objects.filter(team=team, workflow=workflow).order_by("created_at", "id")


def trigger_get(*, team: Team, id: Any) -> Trigger:
    return row_get(Trigger.objects.filter(team=team).select_related("workflow"), "Trigger", pk=id)


# -- services -----------------------------------------------------------------------------------

def _inputs_check(inputs: Any) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        raise InvalidInput("Inputs must be an object.", errors=[{"path": "/inputs", "message": "must be an object"}])
    return inputs


def _queue_fields_check(*, team: Team, credential: str, source: str, group: str) -> tuple[str, str, str]:
    """A queue trigger's broker credential (a ``broker`` credential of the team, by name), source
    and group (Redis Streams only; default ``weft``). Raises ``InvalidInput`` naming the field."""
    credential, source, group = (credential or "").strip(), (source or "").strip(), (group or "").strip()
    errors = []
    if not credential:
        errors.append({"path": "/credential", "message": "required for queue triggers"})
    elif not Credential.objects.filter(team=team, name=credential, kind=CredentialKind.BROKER).exists():
        errors.append({"path": "/credential", "message": f"no broker credential named {credential!r}"})
    if not source:
        errors.append({"path": "/source", "message": "required for queue triggers: the queue or stream name"})
    if errors:
        raise InvalidInput("Invalid queue trigger.", errors=errors)
    url = credential_secret(team=team, name=credential).get("url", "")
    if url.split("://", 1)[0].lower() in ("redis", "rediss"):
        group = group or "weft"
    elif group:
        raise InvalidInput("Only Redis Streams have consumer groups.",
                           errors=[{"path": "/group", "message": "only for Redis Streams (redis:// brokers)"}])
    return credential, source, group


@transaction.atomic
def trigger_create(*, team: Team, workflow: Workflow, kind: str, name: str = "", cron: str = "",
                   time_zone: str | None = None, inputs: dict[str, Any] | None = None, enabled: bool = True,
                   signed: bool = True, credential: str = "", source: str = "", group: str = "") -> Trigger:
    """A schedule (``cron`` + ``time_zone``, default the team's), a webhook (signed by default) or a
    queue trigger (``credential`` + ``source`` [+ ``group``]: consumed by ``manage.py weftconsumers``)."""
    team_owned(team, workflow, "Workflow")
    if kind not in TriggerKind.values:
        raise InvalidInput("Unknown kind.", errors=[{"path": "/kind", "message": "schedule, webhook or queue"}])
    if kind != TriggerKind.QUEUE and (credential or source or group):
        raise InvalidInput("Only queue triggers have a credential, source and group.",
                           errors=[{"path": f"/{f}", "message": "only for queue triggers"}
                                   for f, v in (("credential", credential), ("source", source), ("group", group)) if v])
    tz = time_zone_valid(time_zone or team.time_zone)
    trigger = Trigger(team=team, workflow=workflow, kind=kind, name=name, time_zone=tz,
                      inputs=_inputs_check(inputs or {}), enabled=enabled, key=secrets.token_urlsafe(24))
    if kind == TriggerKind.SCHEDULE:
        trigger.cron = cron_valid(cron)
        trigger.next_fire_at = cron_next(trigger.cron, tz, timezone.now()) if enabled else None
    elif kind == TriggerKind.QUEUE:
        if cron:
            raise InvalidInput("A queue trigger has no cron.", errors=[{"path": "/cron", "message": "only for schedule triggers"}])
        trigger.credential, trigger.source, trigger.group = _queue_fields_check(
            team=team, credential=credential, source=source, group=group)
    else:
        if cron:
            raise InvalidInput("A webhook trigger has no cron.", errors=[{"path": "/cron", "message": "only for schedule triggers"}])
        trigger.signing_secret = webhook_secret_new() if signed else ""
    trigger.save()
    return trigger


@transaction.atomic
def trigger_update(*, team: Team, trigger: Trigger, name: str = _UNSET, cron: str = _UNSET, time_zone: str = _UNSET,
                   inputs: dict[str, Any] = _UNSET, enabled: bool = _UNSET, signed: bool = _UNSET,
                   rotate_secret: bool = False, credential: str = _UNSET, source: str = _UNSET,
                   group: str = _UNSET) -> Trigger:
    team_owned(team, trigger, "Trigger")
    if name is not _UNSET:
        trigger.name = name
    if inputs is not _UNSET:
        trigger.inputs = _inputs_check(inputs)
    if enabled is not _UNSET:
        trigger.enabled = enabled
    if time_zone is not _UNSET:
        trigger.time_zone = time_zone_valid(time_zone)
    if trigger.kind == TriggerKind.SCHEDULE:
        if cron is not _UNSET:
            trigger.cron = cron_valid(cron)
        if signed is not _UNSET or rotate_secret:
            raise InvalidInput("Only webhook triggers are signed.", errors=[{"path": "/signed", "message": "only for webhook triggers"}])
        # Re-plan from now: a re-enabled schedule does not fire for the slots it was off.
        trigger.next_fire_at = cron_next(trigger.cron, trigger.time_zone, timezone.now()) if trigger.enabled else None
    elif trigger.kind == TriggerKind.QUEUE:
        if (cron is not _UNSET and cron) or signed is not _UNSET or rotate_secret:
            raise InvalidInput("A queue trigger has no cron or signature.",
                               errors=[{"path": "/cron" if cron is not _UNSET else "/signed",
                                        "message": "not for queue triggers"}])
        trigger.credential, trigger.source, trigger.group = _queue_fields_check(
            team=team, credential=trigger.credential if credential is _UNSET else credential,
            source=trigger.source if source is _UNSET else source,
            group=trigger.group if group is _UNSET else group)
    else:
        if credential is not _UNSET or source is not _UNSET or group is not _UNSET:
            raise InvalidInput("Only queue triggers have a credential, source and group.",
                               errors=[{"path": "/credential", "message": "only for queue triggers"}])
        if cron is not _UNSET and cron:
            raise InvalidInput("A webhook trigger has no cron.", errors=[{"path": "/cron", "message": "only for schedule triggers"}])
        if signed is not _UNSET:
            trigger.signing_secret = (trigger.signing_secret or webhook_secret_new()) if signed else ""
        if rotate_secret and trigger.signing_secret:
            trigger.signing_secret = webhook_secret_new()
    trigger.save()
    return trigger


def trigger_delete(*, team: Team, trigger: Trigger) -> None:
    team_owned(team, trigger, "Trigger")
    trigger.delete()


def _run_start(*, trigger: Trigger, inputs: dict[str, Any], origin: Origin, business_time: datetime | None = None) -> Any:
    return run_start(team=trigger.team, workflow=trigger.workflow, inputs=inputs, mode=RunMode.ASYNC, origin=origin,
                     user=f"trigger:{trigger.pk}", business_time=business_time)


def trigger_fire(*, trigger: Trigger, now: datetime | None = None) -> Any:
    """Fire a due schedule trigger once (claiming its slot). Returns the run, or None when another
    cluster claimed the slot first or the run could not be created (logged)."""
    now = now or timezone.now()
    seen = trigger.next_fire_at
    if seen is None or seen > now:
        return None
    slot = max(seen, cron_latest(trigger.cron, trigger.time_zone, now))
    following = cron_next(trigger.cron, trigger.time_zone, now)
    try:
        with transaction.atomic():
            claimed = Trigger.objects.filter(pk=trigger.pk, enabled=True, next_fire_at=seen).update(
                next_fire_at=following, last_fired_at=slot
            )
            if not claimed:
                return None
            return _run_start(trigger=trigger, inputs=dict(trigger.inputs or {}), origin=SCHEDULE, business_time=slot)
    except DomainError as exc:
        # Unpublished workflow, disabled app, inputs that no longer validate: skip this slot.
        Trigger.objects.filter(pk=trigger.pk, next_fire_at=seen).update(next_fire_at=following, last_fired_at=slot)
        logger.warning("trigger %s: slot %s skipped: %s", trigger.pk, slot.isoformat(), exc.detail)
        return None


def triggers_fire_due(*, now: datetime | None = None) -> int:
    """Fire every due schedule trigger (the periodic pass calls this)."""
    now = now or timezone.now()
    fired = 0
    due = (
        Trigger.objects.filter(kind=TriggerKind.SCHEDULE, enabled=True, next_fire_at__lte=now)
        .select_related("team", "workflow", "workflow__app", "workflow__active_version")
        .order_by("next_fire_at")[:500]
    )
    for trigger in due:
        if trigger_fire(trigger=trigger, now=now) is not None:
            fired += 1
    return fired


def hook_receive(*, key: str, body: bytes, headers: dict[str, str]) -> tuple[Any, bool]:
    """Start the webhook trigger's workflow with the JSON body as inputs. Returns ``(run_id,
    created)``; a replayed ``webhook-id`` returns the first run and ``created=False``."""
    trigger = (
        Trigger.objects.filter(key=key, kind=TriggerKind.WEBHOOK, enabled=True)
        .select_related("team", "workflow", "workflow__app", "workflow__active_version").first()
    )
    if trigger is None:
        raise NotFound("Unknown hook.")
    lowered = {k.lower(): v for k, v in headers.items()}
    if trigger.signing_secret:
        try:
            signature_verify(secret=trigger.signing_secret, body=body, headers=lowered)
        except SignatureInvalid as exc:
            raise SignatureRejected(f"Signature rejected: {exc}") from None
    payload = json_input_loads(body) if body.strip() else {}
    if not isinstance(payload, dict):
        raise InvalidInput("The body must be a JSON object.", errors=[{"path": "/", "message": "must be an object"}])
    webhook_id = (lowered.get("webhook-id") or "")[:255]
    if webhook_id:
        seen = TriggerDelivery.objects.filter(trigger=trigger, webhook_id=webhook_id).values_list("run_id", flat=True).first()
        if seen is not None:
            return seen, False
    try:
        with transaction.atomic():
            run = _run_start(trigger=trigger, inputs=payload, origin=NATIVE_WEBHOOK)
            if webhook_id:
                TriggerDelivery.objects.create(team=trigger.team, trigger=trigger, webhook_id=webhook_id, run=run)
            Trigger.objects.filter(pk=trigger.pk).update(last_fired_at=timezone.now())
    except IntegrityError:
        # The same id arrived concurrently and the other request won: answer with its run.
        return TriggerDelivery.objects.filter(trigger=trigger, webhook_id=webhook_id).values_list("run_id", flat=True).first(), False
    return run.pk, True
