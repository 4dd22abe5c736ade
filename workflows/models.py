"""Apps, workflows (a draft graph) and immutable published versions."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class App(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    entry_workflow = models.ForeignKey(
        "workflows.Workflow", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="app_team_name_unique")]
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return self.name


def empty_graph() -> dict[str, Any]:
    return {
        "inputs": {},
        "outputs": {},
        "params": {},
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end", "config": {"outputs": {}}}],
        "edges": [{"from": "start", "to": "end"}],
    }


class Workflow(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="workflows")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    graph = models.JSONField(default=empty_graph)
    active_version = models.ForeignKey(
        "workflows.WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="workflow_app_name_unique")]
        indexes = [models.Index(fields=["team", "app", "created_at"])]

    def __str__(self) -> str:
        return self.name


class ImmutableVersionError(Exception):
    """A published version was about to be changed."""


class WorkflowVersion(models.Model):
    """A frozen copy of a workflow's graph. Never updated after it is written.

    ``draft`` marks the snapshot a test run of the draft executes (number 0, never listed, never
    active): runs always point at a frozen graph, so a draft edited during a test run cannot change it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    published_at = models.DateTimeField(auto_now_add=True)
    draft = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], condition=models.Q(draft=False),
                                               name="version_workflow_number_unique")]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableVersionError("a published version cannot be changed")
        super().save(*args, **kwargs)


class TriggerKind(models.TextChoices):
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    QUEUE = "queue"


class Trigger(models.Model):
    """What starts a workflow without an API call: a cron schedule, or a public webhook URL.

    ``key`` is the public part of ``/hooks/{key}`` (unguessable, unique across teams); a webhook
    trigger with a ``signing_secret`` accepts only Standard Webhooks-signed requests. A schedule
    trigger's ``next_fire_at`` is the slot it fires next; firing claims it with a conditional
    update, so several worker clusters fire each slot once (``workflows.triggers``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="triggers")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=16, choices=TriggerKind.choices)
    name = models.CharField(max_length=120, blank=True, default="")
    cron = models.CharField(max_length=120, blank=True, default="")
    time_zone = models.CharField(max_length=64, default="UTC")
    inputs = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=64, unique=True)
    signing_secret = models.CharField(max_length=80, blank=True, default="")
    enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    # Queue triggers: the team's broker credential (by name), the queue or stream, the consumer group.
    credential = models.CharField(max_length=120, blank=True, default="")
    source = models.CharField(max_length=255, blank=True, default="")
    group = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["team", "workflow", "created_at"], name="trigger_team_workflow"),
            models.Index(fields=["kind", "enabled", "next_fire_at"], name="trigger_due"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} trigger {self.pk}"


class TriggerDelivery(models.Model):
    """A webhook request a trigger accepted, by its ``webhook-id`` (a queue trigger: a message, by its
    message id): a replayed id starts no second run."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="deliveries")
    webhook_id = models.CharField(max_length=255)
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trigger", "webhook_id"], name="delivery_trigger_id_unique")]

    def __str__(self) -> str:
        return f"{self.trigger_id}/{self.webhook_id}"


class TriggerDeadLetter(models.Model):
    """A queue message that could not start a run (not JSON, not an object, too large, invalid
    inputs, no published version): kept with the reason, and acknowledged on the broker."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="dead_letters")
    message_id = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")  # the first WEFT_MAX_DEAD_LETTER_BODY characters
    reason = models.CharField(max_length=40)
    detail = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "trigger", "created_at"], name="trigger_dead_letter_list")]

    def __str__(self) -> str:
        return f"{self.trigger_id}/{self.message_id}: {self.reason}"


class TriggerConsumer(models.Model):
    """What one consumer process last reported about one queue trigger (``manage.py weftconsumers``)."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="consumers")
    consumer = models.CharField(max_length=120)
    connected = models.BooleanField(default=False)
    lag = models.BigIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    messages = models.BigIntegerField(default=0)
    heartbeat_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trigger", "consumer"], name="trigger_consumer_unique")]

    def __str__(self) -> str:
        return f"{self.trigger_id}@{self.consumer}"
