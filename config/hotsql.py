"""The run's hot-path writes with their SQL compiled once: ``bulk_create`` and ``update``.

Django compiles an INSERT for every ``bulk_create`` call: for the few rows of a run's step (its
node runs and events) that compilation was most of the executor's time per run (docs/
performance.md). ``RowInserter`` asks Django's own compiler for the one-row statement once per
backend and sends every row through ``executemany``; each value is still converted by its field
(``pre_save`` and ``get_db_prep_save``, as ``bulk_create`` does), so what reaches the database is
the same. Auto-increment primary keys are left to the database and not read back: callers that
need them use ``bulk_create``. ``update_where`` is ``Model.objects.filter(a=..., b=...).update(...)``
for equality filters, its statement cached per shape.

Both return a ``Statement``: the SQL and its converted values, ready before the transaction that
executes it begins. On SQLite that transaction holds the one writer's lock: only the statements
themselves run while it is held, not the work of building them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.models.constants import OnConflict
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
        connection = connections[alias]
        params = [[f.get_db_prep_save(f.pre_save(row, True), connection) for f in self.fields] for row in rows]
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
