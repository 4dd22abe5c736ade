"""Runs, node runs and the per-run event log. The database is the record of what happened."""

from __future__ import annotations

import uuid

from django.db import models


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMEOUT = "timeout"


FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.TIMEOUT})
ACTIVE_STATUSES = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING})


class RunMode(models.TextChoices):
    BLOCKING = "blocking"
    STREAMING = "streaming"
    ASYNC = "async"


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexes are written on every insert and status change of the hottest table: the team's own is
    # the first column of run_team_created, and the references that are null on most runs (a child's
    # parent, a replay's original, a signed-in user, a token) are indexed only where they are set.
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="runs", db_index=False)
    app = models.ForeignKey("workflows.App", on_delete=models.CASCADE, related_name="runs")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.BLOCKING)
    dialect = models.CharField(max_length=16, default="native")  # native | dify | coze | ui
    trigger = models.CharField(max_length=16, default="api")  # api | webhook | schedule | batch | replay | ui | child
    user = models.CharField(max_length=255, blank=True, default="")
    token = models.ForeignKey("accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   db_index=False)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    total_steps = models.PositiveIntegerField(default=0)
    business_time = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)  # run_team_created leads with the team
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField()
    wake_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    claim_count = models.PositiveIntegerField(default=0)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                                   db_index=False)
    # The parent chain of a child run: the top-level run it descends from and how many sub-workflow
    # levels down it is (0: a top-level run; WEFT_MAX_WORKFLOW_DEPTH bounds it).
    root_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 db_index=False)
    depth = models.PositiveSmallIntegerField(default=0)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays",
                                  db_index=False)
    event_seq = models.PositiveIntegerField(default=0)
    # A test run of the saved draft (its version is a draft snapshot): shown in the editor and the
    # runs list, left out of Dify's logs.
    draft = models.BooleanField(default=False)
    # When ``runs.lifecycle.run_finish`` did the run's end-of-run work (claimed by a conditional
    # update, so it happens exactly once); null on a final run = not handled yet (the reaper looks).
    finish_handled_at = models.DateTimeField(null=True, blank=True)
    # What became of the current claim when it did not end normally: "crashed" or "limit" (its
    # executor process died or was killed over a limit: the run is never handed over again),
    # "lost" (the lease expired with its owner: the reaper re-queued it). See runs.pool, runs.reaper.
    claim_fate = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["team", "-created_at", "-id"], name="run_team_created"),
            models.Index(fields=["team", "workflow", "-created_at"], name="run_team_workflow"),
            models.Index(fields=["team", "status", "-created_at"], name="run_team_status"),
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease"),
            models.Index(fields=["status", "wake_at"], name="run_status_wake"),
            models.Index(fields=["finished_at"], name="run_finish_unhandled",
                         condition=models.Q(finish_handled_at__isnull=True, finished_at__isnull=False)),
            # "x = ?" implies "x IS NOT NULL": lookups by these references use the partial indexes.
            *[models.Index(fields=[name], name=f"run_{name}_set", condition=models.Q(**{f"{name}__isnull": False}))
              for name in ("token", "created_by", "parent_run", "root_run", "replay_of")],
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class NodeRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="node_runs", db_index=False)  # (run, key) first
    key = models.CharField(max_length=255)
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    title = models.CharField(max_length=255, blank=True, default="")
    index = models.PositiveIntegerField(default=0)
    predecessor_node_id = models.CharField(max_length=64, blank=True, default="")
    iteration_id = models.CharField(max_length=64, blank=True, default="")
    iteration_index = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=16)
    attempt = models.PositiveIntegerField(default=1)
    port = models.CharField(max_length=64, blank=True, default="")
    inputs = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    process_data = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    receipt_token = models.CharField(max_length=128, blank=True, default="")
    state = models.JSONField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    callback = models.JSONField(null=True, blank=True)
    callback_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    elapsed = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="noderun_run_key_unique")]
        indexes = [models.Index(fields=["run", "index"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class RunEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)  # (run, seq) first
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="runevent_run_seq_unique")]
        ordering = ["run", "seq"]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"


class NodeCallback(models.Model):
    """The result an async HTTP step posted to its webhook URL. The first one per receipt token wins."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="callbacks")
    node_id = models.CharField(max_length=64)
    receipt_token = models.CharField(max_length=128)
    content_type = models.CharField(max_length=120, blank=True, default="")
    body = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "receipt_token"], name="callback_run_token_unique")]

    def __str__(self) -> str:
        return f"callback {self.run_id}/{self.node_id}"


class DeadLetter(models.Model):
    """A run that ended for good without succeeding and needs a person: its workflow-level retries
    were used up, or its worker was lost ``WEFT_MAX_CLAIMS`` times. Replay starts a linked new run."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="dead_letter")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=40)  # retries_exhausted | max_claims | timeout
    detail = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"], name="deadletter_team_created")]

    def __str__(self) -> str:
        return f"dead letter {self.run_id} ({self.reason})"


class BatchStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"


class BatchJob(models.Model):
    """An offline batch: one async run per item, at most ``concurrency`` at a time; when every item
    has ended, a signed callback to ``callback_url`` (``runs.batches``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    job_id = models.CharField(max_length=120)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="+")
    callback_url = models.URLField(max_length=2000, blank=True, default="")
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    concurrency = models.PositiveIntegerField(default=8)
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    token = models.ForeignKey("accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    callback_attempts = models.PositiveIntegerField(default=0)
    callback_next_at = models.DateTimeField(null=True, blank=True)
    callback_delivered_at = models.DateTimeField(null=True, blank=True)
    callback_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "job_id"], name="batchjob_team_jobid_unique")]
        indexes = [models.Index(fields=["status", "created_at"], name="batchjob_status")]

    def __str__(self) -> str:
        return f"batch {self.job_id} ({self.status})"


# A batch item's status is its run's (``pending`` until its run starts, ``running`` while it runs).
BATCH_ITEM_FAILED_STATUSES = (RunStatus.FAILED, RunStatus.STOPPED, RunStatus.TIMEOUT)


class BatchItem(models.Model):
    """One item of a batch; its run is created when a concurrency slot frees up."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    inputs = models.JSONField(default=dict)
    run = models.OneToOneField(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_item")
    status = models.CharField(max_length=16, default=RunStatus.PENDING)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="batchitem_job_index_unique")]
        indexes = [models.Index(fields=["job", "status"], name="batchitem_job_status")]

    def __str__(self) -> str:
        return f"{self.job_id}[{self.index}] ({self.status})"


class DurableTick(models.Model):
    """The one periodic pass of ``runs.scheduling.durable_tick``: ``next_at`` is claimed with a
    conditional update, so however many clusters run the chain, one pass happens per interval."""

    name = models.CharField(max_length=40, primary_key=True)
    next_at = models.DateTimeField()
    last_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class UploadedFile(models.Model):
    """A file uploaded for runs (``POST /v1/files/upload``, ``POST /api/v1/files``): its bytes live
    in the ``uploads`` storage (``runs.files``), readable only by runs of its team."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    app = models.ForeignKey("workflows.App", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    extension = models.CharField(max_length=32, blank=True, default="")
    mime_type = models.CharField(max_length=255)
    storage_name = models.CharField(max_length=512)
    user = models.CharField(max_length=255, blank=True, default="")  # the end user who uploaded it
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"], name="upload_team_created")]

    def __str__(self) -> str:
        return self.name


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` (or Coze ``x-run-id``) seen on a run-starting request: within its
    expiry the same key of the same team and app answers ``run`` again (``runs.idempotency``)."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=64)  # the app's id: keys of different apps never meet
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of the endpoint and the request body
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "scope", "key"], name="idempotency_team_scope_key")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires")]

    def __str__(self) -> str:
        return self.key
