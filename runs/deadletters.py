"""The dead-letter list: runs that ended for good without succeeding and need a person.

A run lands here when its workflow-level retries are used up (``retries_exhausted``, or
``timeout`` when the last attempt timed out) or when its worker was lost ``WEFT_MAX_CLAIMS``
times (``max_claims``). One entry per run; replaying an entry starts a new async run of the same
version with the same inputs, linked to the dead run (``replay_of``) and recorded on the entry
(``runs.lifecycle.dead_letter_replay``: replaying starts a run). This module adds and reads entries.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.models import Team
from accounts.selectors import row_get
from runs.models import DeadLetter, Run
from runs.selectors import keyset_page


def dead_letter_add(*, run: Run, reason: str, attempts: int = 1) -> DeadLetter:
    """Put the run on the list (idempotent: a run has at most one entry)."""
    existing = DeadLetter.objects.filter(run=run).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return DeadLetter.objects.create(
                team_id=run.team_id, run=run, workflow_id=run.workflow_id, reason=reason, attempts=attempts,
                detail=run.error,
            )
    except IntegrityError:
        return DeadLetter.objects.get(run=run)


def dead_letter_list(*, team: Team, limit: int = 50, cursor: str | None = None,
                     replayed: bool | None = None, workflow_id: Any = None) -> tuple[list[DeadLetter], str | None]:
    """A page of the team's dead letters, newest first, and the next page's cursor."""
    qs = DeadLetter.objects.filter(team=team).select_related("run")
    if replayed is not None:
        qs = qs.filter(replayed_run__isnull=not replayed)
    if workflow_id:
        qs = qs.filter(workflow_id=workflow_id)
    return keyset_page(qs, limit=limit, cursor=cursor)


def dead_letter_get(*, team: Team, id: Any) -> DeadLetter:
    return row_get(DeadLetter.objects.filter(team=team).select_related("run", "run__workflow"), "Dead letter", pk=id)


def dead_letter_qs(*, team: Team) -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(team=team)
