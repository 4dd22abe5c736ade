"""Idempotent run starts: the ``Idempotency-Key`` header on any run-starting request (native,
Dify, Coze; Coze's ``x-run-id`` means the same), applied by ``runs.lifecycle.run_start``.

Within ``WEFT_IDEMPOTENCY_TTL`` seconds the same key from the same team and app starts nothing
new and answers the first run: a blocking request its result once finished, a streaming one the
same run's stream (replayed from its first event), an async one the same run id. The same key
with a different request (another endpoint or another body: the fingerprint) is a ``Conflict``
naming the header. Concurrent requests with one key race on a unique row: the loser waits for the
winner's run. A key whose run could not start (bad input) is released, so a corrected retry runs.
Expired keys are swept hourly (``idempotency_sweep``, a django-q2 schedule).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Team
from config.errors import Conflict, InvalidInput
from runs.models import IdempotencyKey, Run

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
CLAIM_WAIT_SECONDS = 10.0  # how long a concurrent duplicate waits for the winner's run row


@dataclass(frozen=True)
class IdempotencyRequest:
    """What identifies a request: its key, and a fingerprint of what it asks."""

    key: str
    fingerprint: str
    header: str = HEADER


def idempotency_request(*, key: str | None, endpoint: str, body: Any, header: str = HEADER) -> IdempotencyRequest | None:
    """The request's key and fingerprint, None without a key; a malformed key is ``InvalidInput``."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"{header} must be 1 to {MAX_KEY_LENGTH} printable characters.",
                           errors=[{"path": f"/{header}", "message": f"1 to {MAX_KEY_LENGTH} printable characters"}])
    canonical = json.dumps([endpoint, body], sort_keys=True, separators=(",", ":"), default=str)
    return IdempotencyRequest(key, hashlib.sha256(canonical.encode()).hexdigest(), header)


def _conflict(request: IdempotencyRequest) -> Conflict:
    return Conflict(f"{request.header} {request.key!r} was already used with a different request.",
                    errors=[{"path": f"/{request.header}", "message": "already used with a different request"}])


def idempotency_claim(*, team: Team, scope: str, request: IdempotencyRequest) -> tuple[Run | None, IdempotencyKey | None]:
    """``(run, None)``: answer the first run of this key. ``(None, claim)``: start the run, then
    ``idempotency_bind(claim, run)`` (or ``idempotency_release(claim)`` if it cannot start)."""
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while True:
        now = timezone.now()
        IdempotencyKey.objects.filter(team=team, scope=scope, key=request.key, expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                claim = IdempotencyKey.objects.create(
                    team=team, scope=scope, key=request.key, fingerprint=request.fingerprint,
                    expires_at=now + timedelta(seconds=int(settings.WEFT_IDEMPOTENCY_TTL)))
            return None, claim
        except IntegrityError:
            pass
        row = IdempotencyKey.objects.filter(team=team, scope=scope, key=request.key).first()
        if row is not None:
            if row.fingerprint != request.fingerprint:
                raise _conflict(request)
            if row.run_id is not None:
                return Run.objects.select_related("workflow", "app", "version").get(pk=row.run_id), None
        if time.monotonic() > deadline:  # the first request is still recording its run
            raise Conflict(f"A request with {request.header} {request.key!r} is still starting; retry.",
                           errors=[{"path": f"/{request.header}", "message": "in progress"}])
        time.sleep(0.05)


def idempotency_bind(claim: IdempotencyKey, run: Run) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk).update(run=run)


def idempotency_release(claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, run__isnull=True).delete()


def idempotency_sweep(*, now: Any = None) -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
