"""The run's hot-path writes with their SQL compiled once: ``bulk_create`` and ``update``.

Django compiles an INSERT for every ``bulk_create`` call: for the few rows of a run's step (its
node runs and events) that compilation was most of the executor's time per run (docs/
performance.md). ``RowInserter`` asks Django's own compiler for the one-row statement once per
backend and sends every row through ``executemany``; each value is still converted by its field
(``pre_save`` and ``get_db_prep_save``, as ``bulk_create`` does), so what reaches the database is
the same. Auto-increment primary keys are left to the database and not read back: callers that
need them use ``bulk_create``. ``update_where`` is ``Model.objects.filter(a=..., b=...).update(...)``
for equality filters, its statement cached per shape.

Converting the values was most of what was left (``Field.get_db_prep_save`` is a chain of calls per
value, about 50 values per run), so each field gets its conversion once per backend
(``value_converter``): for a value of exactly the type the hot path writes (an aware ``datetime``, a
``UUID``, a ``str``, an ``int``, a JSON document, ``None``) the field's own conversion written out
(the same value Django produces: tested for every field of the run's rows on both backends); for
any other value the field's own ``get_db_prep_save``. ``RowInserter.prepare_values`` takes rows as
mappings of field names, so that no model instance is built only to be taken apart again.

Both return a ``Statement``: the SQL and its converted values, ready before the transaction that
executes it begins. On SQLite that transaction holds the one writer's lock: only the statements
themselves run while it is held, not the work of building them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, models, router
from django.db.models.constants import OnConflict
from django.db.models.fields import AutoFieldMixin
from django.db.models.sql import InsertQuery


@dataclass(frozen=True)
class Statement:
    """One prepared statement: ``execute`` runs it (``executemany`` for several rows); the rows changed."""

    alias: str
    sql: str
    params: list[Any] | list[list[Any]]
    many: bool = False

    def execute(self) -> int:
        if self.many and not self.params:
            return 0
        with connections[self.alias].cursor() as cursor:
            if self.many:
                cursor.executemany(self.sql, self.params)
            else:
                cursor.execute(self.sql, self.params)
            return cursor.rowcount


Converter = Callable[[Any], Any]
JSON_TYPES = (dict, list, str, int, float, bool)


def value_converter(field: models.Field, connection: Any) -> Converter:
    """``value -> field.get_db_prep_save(value, connection)``, with the common cases written out."""

    def slow(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if isinstance(field, models.ForeignKey):
        target = value_converter(field.target_field, connection)
        return lambda v: None if v is None else (slow(v) if v == "" else target(v))
    if isinstance(field, models.JSONField):
        if connection.vendor == "postgresql":
            return slow  # psycopg's Jsonb wrapper: nothing to save
        encoder = field.encoder
        dumps = json.dumps if encoder is None else (lambda v: json.dumps(v, cls=encoder))
        return lambda v: None if v is None else (dumps(v) if type(v) in JSON_TYPES else slow(v))
    if isinstance(field, models.UUIDField):
        if connection.features.has_native_uuid_field:
            return lambda v: v if type(v) is uuid.UUID else slow(v)
        return lambda v: v.hex if type(v) is uuid.UUID else slow(v)
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite" and settings.USE_TZ:
            tz = connection.timezone
            return lambda v: (str(v.astimezone(tz).replace(tzinfo=None)) if type(v) is datetime and v.tzinfo is not None
                              else slow(v))
        if connection.vendor == "postgresql":
            return lambda v: v if type(v) is datetime and v.tzinfo is not None else slow(v)
        return slow
    if isinstance(field, models.IntegerField) and not isinstance(field, AutoFieldMixin):
        adapt, internal = connection.ops.adapt_integerfield_value, field.get_internal_type()
        return lambda v: adapt(v, internal) if type(v) is int else slow(v)  # psycopg: its int type per column
    exact = {models.CharField: str, models.TextField: str, models.FloatField: float,
             models.BooleanField: bool}.get(type(field))
    if exact is not None:
        return lambda v: v if type(v) is exact or v is None else slow(v)
    return slow


def _uses_pre_save(field: models.Field) -> bool:
    """Whether ``pre_save`` does more than read the attribute (``auto_now``, ``auto_now_add``, files)."""
    if isinstance(field, models.DateField):
        return bool(field.auto_now or field.auto_now_add)
    return type(field).pre_save is not models.Field.pre_save


class RowInserter:
    """Inserts rows of ``model``; with ``unique_fields`` and ``update_fields``, an upsert (``INSERT
    ... ON CONFLICT (unique) DO UPDATE SET update = excluded``, as ``bulk_create(update_conflicts=True)``)."""

    def __init__(self, model: type[models.Model], *, unique_fields: Sequence[str] = (),
                 update_fields: Sequence[str] = ()) -> None:
        meta = model._meta
        self.model = model
        self.fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
        self.unique_fields = [meta.get_field(name) for name in unique_fields]
        self.update_fields = [meta.get_field(name) for name in update_fields]
        self._sql: dict[str, str] = {}
        self._plans: dict[str, list[tuple[models.Field, bool, Converter]]] = {}
        self._lock = threading.Lock()

    def plan(self, alias: str) -> list[tuple[models.Field, bool, Converter]]:
        """Per field: (field, whether ``pre_save`` matters, its converter) for ``alias``."""
        hit = self._plans.get(alias)
        if hit is None:
            connection = connections[alias]
            hit = [(f, _uses_pre_save(f), value_converter(f, connection)) for f in self.fields]
            with self._lock:
                self._plans[alias] = hit
        return hit

    def sql(self, alias: str) -> str:
        hit = self._sql.get(alias)
        if hit is None:
            connection = connections[alias]
            query = InsertQuery(self.model, on_conflict=OnConflict.UPDATE if self.update_fields else None,
                                update_fields=self.update_fields, unique_fields=self.unique_fields)
            query.insert_values(self.fields, [self.model()])
            compiler = query.get_compiler(using=alias, connection=connection)
            compiler.returning_fields = None
            ((hit, _params),) = compiler.as_sql()
            self._sql[alias] = hit
        return hit

    def prepare(self, rows: Iterable[models.Model]) -> Statement:
        """The insert of ``rows`` (unsaved instances: ``pre_save`` fills what it fills, e.g.
        ``auto_now_add``), as one ``executemany``; nothing to do for no rows."""
        alias = router.db_for_write(self.model)
        plan = self.plan(alias)
        params = [[convert(f.pre_save(row, True) if pre else getattr(row, f.attname)) for f, pre, convert in plan]
                  for row in rows]
        return Statement(alias, self.sql(alias), params, many=True)

    def prepare_values(self, rows: Iterable[Mapping[str, Any]]) -> Statement:
        """As ``prepare``, for rows given as ``{attname: value}`` (``team_id``, not ``team``); a field
        not given takes its default. No model instance is built: a field whose ``pre_save`` sets its
        value (``auto_now_add``) must be given."""
        alias = router.db_for_write(self.model)
        plan = self.plan(alias)
        params = []
        for row in rows:
            values = []
            for f, _pre, convert in plan:
                value = row[f.attname] if f.attname in row else f.get_default()
                values.append(convert(value))
            params.append(values)
        return Statement(alias, self.sql(alias), params, many=True)


_updates: dict[tuple[Any, ...], tuple[str, list[Any], list[Any]]] = {}
_updates_lock = threading.Lock()


def update_where(model: type[models.Model], where: dict[str, Any], values: dict[str, Any]) -> Statement:
    """``UPDATE model SET values WHERE`` each ``where`` field equals its value. Names are field
    names (``pk`` for the primary key); each value is converted by its field."""
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    key = (model, alias, tuple(where), tuple(values))
    hit = _updates.get(key)
    if hit is None:
        set_fields = [meta.get_field(name) for name in values]
        where_fields = [meta.pk if name == "pk" else meta.get_field(name) for name in where]
        qn = connection.ops.quote_name
        sql = (f"UPDATE {qn(meta.db_table)} SET " + ", ".join(f"{qn(f.column)} = %s" for f in set_fields)
               + " WHERE " + " AND ".join(f"{qn(f.column)} = %s" for f in where_fields))
        hit = (sql, set_fields, where_fields)
        with _updates_lock:
            _updates[key] = hit
    sql, set_fields, where_fields = hit
    params = [f.get_db_prep_save(v, connection) for f, v in zip(set_fields, values.values(), strict=True)]
    params += [f.get_db_prep_value(v, connection) for f, v in zip(where_fields, where.values(), strict=True)]
    return Statement(alias, sql, params)


class RowReader:
    """Model instances from raw rows holding every concrete column of the model, each value converted
    as the ORM converts it when it loads the model (the backend's and the field's converters:
    ``SQLCompiler.apply_converters``), then ``Model.from_db``. For statements the ORM cannot write
    (``UPDATE ... RETURNING``), and for a row read by its primary key with the SQL compiled once."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self._plans: dict[str, list[tuple[Any, list[Callable[..., Any]]]]] = {}
        self._by_pk: dict[str, str] = {}
        self._lock = threading.Lock()

    def columns(self, alias: str) -> str:
        """The column list, in the order ``instance`` reads a row."""
        qn = connections[alias].ops.quote_name
        return ", ".join(qn(f.column) for f in self.fields)

    def plan(self, alias: str) -> list[tuple[Any, list[Callable[..., Any]]]]:
        plan = self._plans.get(alias)
        if plan is None:
            connection = connections[alias]
            plan = []
            for field in self.fields:
                col = field.get_col(self.model._meta.db_table)
                plan.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
            with self._lock:
                self._plans[alias] = plan
        return plan

    def instance(self, alias: str, row: Sequence[Any]) -> models.Model:
        connection = connections[alias]
        values = []
        for (col, converters), value in zip(self.plan(alias), row, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            values.append(value)
        return self.model.from_db(alias, self.names, values)

    def get(self, pk: Any) -> models.Model | None:
        """``Model.objects.filter(pk=pk).first()``, its SQL compiled once."""
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        meta = self.model._meta
        sql = self._by_pk.get(alias)
        if sql is None:
            qn = connection.ops.quote_name
            sql = f"SELECT {self.columns(alias)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s"
            with self._lock:
                self._by_pk[alias] = sql
        with connection.cursor() as cursor:
            cursor.execute(sql, [meta.pk.get_db_prep_value(pk, connection)])
            row = cursor.fetchone()
        return None if row is None else self.instance(alias, row)
