"""The hot path's writes with cached SQL (config.hotsql): rows written by ``RowInserter`` read back
exactly as ``bulk_create`` writes them (JSON, datetimes, UUIDs, nulls), an upsert updates only the
listed fields of the conflicting row, and ``update_where`` changes only the rows all its filters
match, saying how many."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Team
from config.hotsql import RowInserter, update_where
from runs.models import NodeRun, Run, RunEvent, RunStatus
from tests.conftest import published_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(team_a: Team) -> Run:
    workflow = published_make(team_a)
    now = timezone.now()
    return Run.objects.create(team=team_a, app=workflow.app, workflow=workflow, version=workflow.active_version,
                              inputs={"name": "x"}, business_time=now, deadline=now + timedelta(minutes=1))


def values(rows: Any, *names: str) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, n) for n in names) for r in rows]


def test_inserted_rows_read_back_as_bulk_create_writes_them(run: Run) -> None:
    now = timezone.now()
    data = [{"a": [1, 2.5, None, "é"], "nested": {"x": True}}, {}, {"unicode": "\u2603"}]
    RowInserter(RunEvent).prepare([RunEvent(team_id=run.team_id, run=run, seq=i + 1, type="t", data=d, created_at=now)
                                  for i, d in enumerate(data)]).execute()
    RunEvent.objects.bulk_create([RunEvent(team_id=run.team_id, run=run, seq=i + 11, type="t", data=d, created_at=now)
                                  for i, d in enumerate(data)])
    ours = RunEvent.objects.filter(run=run, seq__lt=10).order_by("seq")
    theirs = RunEvent.objects.filter(run=run, seq__gt=10).order_by("seq")
    assert values(ours, "type", "data", "created_at", "team_id") == values(theirs, "type", "data", "created_at", "team_id")
    assert [e.data for e in ours] == data


def test_an_upsert_updates_the_listed_fields_of_the_conflicting_row(run: Run) -> None:
    upsert = RowInserter(NodeRun, unique_fields=["run", "key"], update_fields=["status", "outputs"])
    first = NodeRun(team_id=run.team_id, run=run, key="a", node_id="a", node_type="start", status="running",
                    title="first", started_at=timezone.now())
    upsert.prepare([first, NodeRun(team_id=run.team_id, run=run, key="b", node_id="b", node_type="end",
                                   status="running")]).execute()
    upsert.prepare([NodeRun(team_id=run.team_id, run=run, key="a", node_id="a", node_type="start", status="succeeded",
                            title="second", outputs={"v": 1})]).execute()
    rows = {r.key: r for r in NodeRun.objects.filter(run=run)}
    assert set(rows) == {"a", "b"}
    assert (rows["a"].status, rows["a"].outputs, rows["a"].title) == ("succeeded", {"v": 1}, "first")
    assert rows["a"].pk == first.pk and rows["a"].started_at == first.started_at
    assert rows["b"].status == "running"
    assert upsert.prepare([]).execute() == 0  # nothing to write: no statement, no error


def test_update_where_changes_only_matching_rows(run: Run) -> None:
    later = timezone.now() + timedelta(hours=1)
    assert update_where(Run, {"pk": run.pk, "status": RunStatus.RUNNING}, {"outputs": {"no": 1}}).execute() == 0
    run.refresh_from_db()
    assert run.outputs is None
    changed = update_where(Run, {"pk": run.pk, "status": RunStatus.PENDING, "claim_count": 0},
                           {"outputs": {"ok": [1]}, "wake_at": later, "total_steps": 3, "error": None}).execute()
    assert changed == 1
    run.refresh_from_db()
    assert (run.outputs, run.wake_at, run.total_steps, run.error) == ({"ok": [1]}, later, 3, None)
