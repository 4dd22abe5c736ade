"""Offline batches: one async run per item, bounded concurrency per job, a CSV result and a signed
completion callback.

- Submit validates every item's inputs up front against the workflow's active version. Any bad
  item rejects the whole job (400, ``errors`` naming ``/items/3/amount``), nothing is written: a
  half-accepted job is harder for the caller to reconcile than a rejected one. A repeated
  ``jobId`` (per team) is 409.
- Items are rows; an item's run is created only when a slot frees up (at most ``concurrency``
  active runs per job), so a 100,000-item job is not 100,000 pending runs. Dispatch
  (``runs.lifecycle.batch_dispatch``) happens at submit, whenever an item's run ends (its
  ``run_finish``) and in the periodic pass (``batches_advance``, which also repairs anything a dead
  worker left behind).
- An item's status follows its run, through workflow-level retries (the item moves to the retry
  run). When every item has ended the job is ``succeeded`` (all succeeded), ``failed`` (none) or
  ``partial``, and a signed POST ``{"jobId", "status", "resultUrl"}`` goes to ``callbackUrl``
  through the SSRF-safe outbound session, retried with exponential backoff (the engine's
  ``RetryPolicy``: ``WEFT_CALLBACK_BACKOFF * 2^(n-1)`` seconds, ``WEFT_CALLBACK_ATTEMPTS`` attempts).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.models import ApiToken, Team
from accounts.selectors import row_get
from config.errors import AppUnavailable, Conflict, InvalidInput, team_owned
from runs.http_policy import http_policy
from runs.lifecycle import BATCH_CALLBACK_TASK, batch_dispatch, batch_progress, run_finish
from runs.models import (
    BATCH_ITEM_FAILED_STATUSES,
    FINAL_STATUSES,
    BatchItem,
    BatchJob,
    BatchStatus,
    RunStatus,
)
from runs.services import run_inputs_validate
from runs.signing import signed_request, team_webhook_secret
from runs.taskqueue import task_enqueue_at
from workflows.engine.outbound import destination_refusal, outbound_session
from workflows.engine.retry import Backoff, RetryPolicy
from workflows.models import Workflow

logger = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[A-Za-z0-9._:-]{1,120}$")
MAX_ITEMS = 100_000
ITEM_RUNNING = RunStatus.RUNNING
ITEM_PENDING = RunStatus.PENDING


def batch_submit(*, team: Team, job_id: str, workflow: Workflow, items: list[Any], callback_url: str = "",
                 token: ApiToken | None = None, concurrency: int | None = None) -> BatchJob:
    """Validate every item, write the job and its items, start the first runs."""
    team_owned(team, workflow, "Workflow")
    if not JOB_ID.match(job_id or ""):
        raise InvalidInput("Invalid jobId.", errors=[{"path": "/jobId", "message": "1-120 characters of A-Z a-z 0-9 . _ : -"}])
    if not workflow.app.enabled:
        raise AppUnavailable("The app is disabled.")
    version = workflow.active_version
    if version is None:
        raise AppUnavailable("The workflow has no published version.")
    if callback_url and urlsplit(callback_url).scheme not in ("http", "https"):
        raise InvalidInput("Invalid callbackUrl.", errors=[{"path": "/callbackUrl", "message": "must be an http(s) URL"}])
    refusal = destination_refusal(callback_url, http_policy()) if callback_url else None
    if refusal:  # the delivery would be refused on every attempt: say so now, write nothing
        raise InvalidInput(f"Invalid callbackUrl: {refusal}.", errors=[{"path": "/callbackUrl", "message": refusal}])
    if not items:
        raise InvalidInput("A job needs items.", errors=[{"path": "/items", "message": "must not be empty"}])
    if len(items) > MAX_ITEMS:
        raise InvalidInput("Too many items.", errors=[{"path": "/items", "message": f"at most {MAX_ITEMS}"}])
    clean: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        try:
            clean.append(run_inputs_validate(version=version, inputs=item))
        except InvalidInput as exc:
            for error in exc.errors or [{"path": "", "message": exc.detail}]:
                path = error["path"].removeprefix("/inputs")
                errors.append({"path": f"/items/{index}{path}", "message": error["message"]})
    if errors:
        raise InvalidInput(f"{len({e['path'].split('/')[2] for e in errors})} item(s) are invalid; nothing was "
                           "submitted.", errors=errors[:200])
    if BatchJob.objects.filter(team=team, job_id=job_id).exists():
        raise Conflict("A job with this jobId exists.", errors=[{"path": "/jobId", "message": "already submitted"}])
    try:
        with transaction.atomic():
            job = BatchJob.objects.create(
                team=team, job_id=job_id, workflow=workflow, version=version, callback_url=callback_url or "",
                total=len(clean), token=token,
                concurrency=max(1, min(concurrency or settings.WEFT_BATCH_CONCURRENCY, 1000)),
            )
            BatchItem.objects.bulk_create(
                [BatchItem(team=team, job=job, index=i, inputs=inputs) for i, inputs in enumerate(clean)],
                batch_size=1000,
            )
    except IntegrityError:
        raise Conflict("A job with this jobId exists.", errors=[{"path": "/jobId", "message": "already submitted"}]) from None
    batch_dispatch(job=job)
    return job


def batch_get(*, team: Team, job_id: str) -> BatchJob:
    return row_get(BatchJob.objects.filter(team=team), "Job", job_id=job_id)


def batch_result_url(job: BatchJob) -> str:
    return f"{settings.WEFT_PUBLIC_URL}/api/v1/offline/jobs/{job.job_id}/result.csv"


def callback_retry_policy() -> RetryPolicy:
    """Completion callbacks: ``WEFT_CALLBACK_ATTEMPTS`` attempts, exponential from ``WEFT_CALLBACK_BACKOFF``."""
    return RetryPolicy(count=max(settings.WEFT_CALLBACK_ATTEMPTS - 1, 0), interval=float(settings.WEFT_CALLBACK_BACKOFF),
                       backoff=Backoff.EXPONENTIAL)


def batch_callback_deliver(*, job_pk: Any, now: datetime | None = None) -> str:
    """One delivery attempt, claimed with a conditional update (one sender even with many clusters)."""
    now = now or timezone.now()
    in_flight = now + timedelta(seconds=60)
    claimed = BatchJob.objects.filter(
        pk=job_pk, callback_delivered_at__isnull=True, callback_next_at__lte=now,
        callback_attempts__lt=settings.WEFT_CALLBACK_ATTEMPTS,
    ).update(callback_next_at=in_flight, callback_attempts=F("callback_attempts") + 1)
    if not claimed:
        return "skipped"
    job = BatchJob.objects.select_related("team").get(pk=job_pk)
    payload = {"jobId": job.job_id, "status": job.status, "resultUrl": batch_result_url(job)}
    body, headers = signed_request(secret=team_webhook_secret(job.team), payload=payload,
                                   msg_id=f"batch_{job.pk.hex}")
    error = ""
    try:
        response = outbound_session(http_policy()).post(job.callback_url, data=body, headers=headers,
                                                        allow_redirects=False, timeout=10)
        response.close()
        if 200 <= response.status_code < 300:
            BatchJob.objects.filter(pk=job.pk).update(callback_delivered_at=timezone.now(), callback_error="",
                                                      callback_next_at=None)
            return "delivered"
        error = f"HTTP {response.status_code}"
    except Exception as exc:  # refused address, timeout, connection error: all retried
        error = f"{type(exc).__name__}: {exc}"[:500]
    attempts = job.callback_attempts
    if attempts >= settings.WEFT_CALLBACK_ATTEMPTS:
        BatchJob.objects.filter(pk=job.pk).update(callback_error=f"gave up after {attempts} attempts: {error}"[:500],
                                                  callback_next_at=None)
        return "gave_up"
    next_at = timezone.now() + timedelta(seconds=callback_retry_policy().delay(attempts))
    BatchJob.objects.filter(pk=job.pk).update(callback_error=error[:500], callback_next_at=next_at)
    task_enqueue_at(BATCH_CALLBACK_TASK, str(job.pk), at=next_at)
    return "retrying"


def batches_advance(*, now: datetime | None = None) -> None:
    """Periodic repair: items whose run ended unseen, free slots, callbacks due."""
    now = now or timezone.now()
    settle = now - timedelta(seconds=max(5, settings.WEFT_TICK_SECONDS * 3))
    orphans = (
        BatchItem.objects.filter(status=ITEM_RUNNING, job__status=BatchStatus.RUNNING, run__status__in=FINAL_STATUSES,
                                 run__finished_at__lt=settle)
        .select_related("run", "run__version", "run__team", "run__workflow")[:500]
    )
    for item in orphans:
        run_finish(item.run)
    lost = BatchItem.objects.filter(status=ITEM_RUNNING, run__isnull=True)  # run deleted under it
    lost.update(status=RunStatus.FAILED)
    for job in BatchJob.objects.filter(status__in=[BatchStatus.PENDING, BatchStatus.RUNNING]).order_by("created_at")[:200]:
        batch_progress(job=job)
    for job_pk in BatchJob.objects.filter(
        Q(callback_next_at__lte=now), callback_delivered_at__isnull=True,
        callback_attempts__lt=settings.WEFT_CALLBACK_ATTEMPTS,
    ).values_list("pk", flat=True)[:200]:
        batch_callback_deliver(job_pk=job_pk, now=now)


def batch_counts(job: BatchJob) -> dict[str, int]:
    counts = dict(BatchItem.objects.filter(job=job).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "total": job.total,
        "pending": counts.get(ITEM_PENDING, 0),
        "running": counts.get(ITEM_RUNNING, 0),
        "succeeded": counts.get(RunStatus.SUCCEEDED, 0),
        "failed": sum(counts.get(s, 0) for s in BATCH_ITEM_FAILED_STATUSES),
    }


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) is
    prefixed with ``'``; plain numbers such as ``-5`` stay as they are."""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _csv_safe(value)
    return _csv_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class _Line:
    def write(self, value: str) -> str:
        return value


def batch_result_rows(*, job: BatchJob) -> Iterator[str]:
    """The CSV, line by line: ``index``, the item fields (union of all items' keys, first-seen order),
    ``status``, ``runId``, ``outputs`` (JSON), ``error`` (the error message; its code in ``errorCode``)."""
    fields: dict[str, None] = {}
    for inputs in BatchItem.objects.filter(job=job).order_by("index").values_list("inputs", flat=True).iterator(2000):
        for key in inputs or {}:
            fields.setdefault(key, None)
    writer = csv.writer(_Line())
    reserved = {"index", "status", "runId", "outputs", "error", "errorCode"}
    item_columns = [f for f in fields if f not in reserved]
    yield writer.writerow(["index", *[_csv_safe(c) for c in item_columns], "status", "runId", "outputs", "error",
                           "errorCode"])
    rows = (
        BatchItem.objects.filter(job=job).order_by("index")
        .values_list("index", "inputs", "status", "run_id", "run__outputs", "run__error")
    )
    for index, inputs, status, run_id, outputs, error in rows.iterator(2000):
        inputs = inputs or {}
        error = error or {}
        yield writer.writerow([
            index, *[_cell(inputs.get(f)) for f in item_columns], status, str(run_id or ""),
            _cell(outputs) if status == RunStatus.SUCCEEDED else "",
            _cell(error.get("message", "")) if isinstance(error, dict) else _cell(error),
            error.get("code", "") if isinstance(error, dict) else "",
        ])
