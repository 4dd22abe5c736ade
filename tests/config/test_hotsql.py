"""The hot path's writes with cached SQL (config.hotsql): rows written by ``RowInserter`` read back
exactly as ``bulk_create`` writes them (JSON, datetimes, UUIDs, nulls), an upsert updates only the
listed fields of the conflicting row, and ``update_where`` changes only the rows all its filters
match, saying how many."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import models
from django.utils import timezone

from accounts.models import Team
from config.hotsql import RowInserter, RowReader, update_where
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


def _comparable(value: Any) -> Any:
    obj = getattr(value, "obj", None)  # psycopg's Jsonb wrapper: compare what it wraps
    return ("jsonb", obj) if obj is not None or type(value).__name__ == "Jsonb" else value


@pytest.mark.parametrize("model", [Run, NodeRun, RunEvent])
def test_every_fields_converter_gives_what_the_field_itself_gives(model: type, run: Run) -> None:
    """The written-out conversions (``value_converter``) equal ``Field.get_db_prep_save`` for the
    values the hot path writes and for the odd ones that take the field's own path."""
    import uuid
    from datetime import UTC, datetime
    from datetime import timezone as dt_timezone

    from django.db import connection

    from config.hotsql import value_converter

    aware = timezone.now()
    samples: dict[str, list[Any]] = {
        "DateTimeField": [None, aware, aware.astimezone(dt_timezone(timedelta(hours=5))),
                          datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05+00:00"],
        "UUIDField": [None, uuid.uuid4(), str(uuid.uuid4())],
        "ForeignKey": [None, run.pk, str(run.pk), run.team_id, ""],
        "JSONField": [None, {"a": [1, 2.5, None, "é", {"b": True}]}, [], "text", 3, 2.5, False],
        "CharField": [None, "", "abc", "\u2603"],
        "IntegerField": [None, 0, 7, 2**40, True, "12"],
        "PositiveIntegerField": [None, 0, 7], "PositiveSmallIntegerField": [0, 3],
        "FloatField": [None, 0.0, 1.5, 2], "BooleanField": [True, False, None],
    }
    checked = 0
    for field in model._meta.concrete_fields:
        if field.primary_key and isinstance(field, models.AutoField | models.BigAutoField):
            continue
        kind = "ForeignKey" if isinstance(field, models.ForeignKey) else field.get_internal_type()
        values_ = samples.get(kind, [None])
        if isinstance(field, models.ForeignKey) and field.related_model is not Run:
            values_ = [None, getattr(run, field.attname) or run.team_id] if field.related_model is Team else [None]
        convert = value_converter(field, connection)
        for value in values_:
            if value is None and not field.null and kind in ("ForeignKey",):
                continue
            assert _comparable(convert(value)) == _comparable(field.get_db_prep_save(value, connection)), (field, value)
            checked += 1
    assert checked >= len(model._meta.concrete_fields) - 1


def test_rows_given_as_values_are_written_as_instances_are(run: Run) -> None:
    now = timezone.now()
    RowInserter(RunEvent).prepare_values([{"team_id": run.team_id, "run_id": run.pk, "seq": 1, "type": "t",
                                           "data": {"k": [1, None]}, "created_at": now}]).execute()
    upsert = RowInserter(NodeRun, unique_fields=["run", "key"], update_fields=["status"])
    upsert.prepare_values([{"team_id": run.team_id, "run_id": run.pk, "key": "a", "node_id": "a", "node_type": "start",
                            "status": "succeeded", "started_at": now}]).execute()
    event = RunEvent.objects.get(run=run, seq=1)
    assert (event.type, event.data, event.created_at, event.team_id) == ("t", {"k": [1, None]}, now, run.team_id)
    node = NodeRun.objects.get(run=run, key="a")
    # Fields not given take their defaults: a fresh UUID, "", 1, 0.0, NULL.
    assert node.pk is not None and node.title == "" and node.attempt == 1 and node.elapsed == 0.0
    assert node.outputs is None and node.finished_at is None and node.started_at == now


def fields_of(obj: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_rows_read_raw_are_the_instances_the_orm_loads(run: Run, team_a: Team) -> None:
    """``RowReader`` converts each column as the ORM does: JSON documents, aware datetimes, UUIDs,
    booleans and NULLs come back equal, and the instance is a saved one (not adding)."""
    Run.objects.filter(pk=run.pk).update(outputs={"total": 2.5, "items": [None, "é"]}, heartbeat_at=timezone.now(),
                                         stop_requested_at=None, claim_count=3)
    read = RowReader(Run).get(run.pk)
    assert read is not None and not read._state.adding
    assert fields_of(read) == fields_of(Run.objects.get(pk=run.pk))
    assert read.outputs == {"total": 2.5, "items": [None, "é"]} and read.heartbeat_at.tzinfo is not None
    assert fields_of(RowReader(Team).get(team_a.pk)) == fields_of(Team.objects.get(pk=team_a.pk))
    assert RowReader(Team).get(Run._meta.pk.to_python("00000000-0000-0000-0000-000000000000")) is None
