"""A version stamp of everything a request resolves from its token: caches are valid while it holds.

Resolving a request's token (team, app, scopes within its creator's role) and an app's published
entry workflow takes a few ORM queries per request. Each web process caches them (``StampedCache``)
and checks one number per request: ``weft_stamp.value``, which the database itself increments in
the transaction of every change that could alter a resolution, through triggers on the tables
involved (a token revoked, expired, rescoped or deleted; a membership's role changed or removed; a
team, a team parameter, an app, a workflow's published version or a version changed or deleted). So a revoked token is
refused by the next request in every process, whoever revoked it and however (a service, a bulk
update, the shell, another process): the stamp moved in the same commit.

The table and triggers are (re)installed after every ``migrate`` (``stamp_install`` on
``post_migrate``): a SQLite migration that rebuilds a table drops its triggers, and this puts them
back. Without the table (never migrated) ``stamp_current`` is None and nothing is cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection, connections

V = TypeVar("V")

# (table, columns whose UPDATE changes a resolution, or None for every column)
WATCHED: list[tuple[str, list[str] | None]] = [
    ("accounts_apitoken", ["revoked_at", "expires_at", "scopes", "app_id", "team_id", "created_by_id", "secret_hash",
                           "prefix"]),
    ("accounts_membership", None),
    ("accounts_team", None),
    ("accounts_globalparameter", None),
    ("workflows_app", None),
    ("workflows_workflow", ["active_version_id", "app_id", "team_id"]),
    ("workflows_workflowversion", None),
]


def _statements(vendor: str, existing: set[str]) -> list[str]:
    if vendor == "sqlite":
        sql = ["CREATE TABLE IF NOT EXISTS weft_stamp (name VARCHAR(32) PRIMARY KEY, value BIGINT NOT NULL)",
               "INSERT OR IGNORE INTO weft_stamp (name, value) VALUES ('auth', 1)"]
        bump = "BEGIN UPDATE weft_stamp SET value = value + 1 WHERE name = 'auth'; END"
        for table, columns in WATCHED:
            if table not in existing:
                continue
            of = f" OF {', '.join(columns)}" if columns else ""
            sql += [f"CREATE TRIGGER IF NOT EXISTS weft_stamp_{table}_i AFTER INSERT ON {table} {bump}",
                    f"CREATE TRIGGER IF NOT EXISTS weft_stamp_{table}_u AFTER UPDATE{of} ON {table} {bump}",
                    f"CREATE TRIGGER IF NOT EXISTS weft_stamp_{table}_d AFTER DELETE ON {table} {bump}"]
        return sql
    if vendor == "postgresql":
        sql = ["CREATE TABLE IF NOT EXISTS weft_stamp (name VARCHAR(32) PRIMARY KEY, value BIGINT NOT NULL)",
               "INSERT INTO weft_stamp (name, value) VALUES ('auth', 1) ON CONFLICT (name) DO NOTHING",
               "CREATE OR REPLACE FUNCTION weft_stamp_bump() RETURNS trigger AS $$ BEGIN "
               "UPDATE weft_stamp SET value = value + 1 WHERE name = 'auth'; RETURN NULL; END; $$ LANGUAGE plpgsql"]
        for table, columns in WATCHED:
            if table not in existing:
                continue
            of = f" OF {', '.join(columns)}" if columns else ""
            sql.append(f"CREATE OR REPLACE TRIGGER weft_stamp_{table} AFTER INSERT OR UPDATE{of} OR DELETE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION weft_stamp_bump()")
        return sql
    return []


def stamp_install(using: str = "default", **_: Any) -> None:
    """Create the stamp table and its triggers where missing (idempotent; after every migrate)."""
    conn = connections[using]
    with conn.cursor() as cursor:
        existing = set(conn.introspection.table_names(cursor))
        for statement in _statements(conn.vendor, existing):
            cursor.execute(statement)


def stamp_current() -> int | None:
    """The stamp now (one indexed read), or None when it is not installed (then nothing is cached)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM weft_stamp WHERE name = 'auth'")
            row = cursor.fetchone()
    except DatabaseError:
        return None
    return int(row[0]) if row else None


class StampedCache(Generic[V]):
    """A per-process LRU of resolutions, each valid while the stamp it was made under holds."""

    def __init__(self, size_setting: str = "WEFT_AUTH_CACHE_SIZE") -> None:
        self.size_setting = size_setting
        self.items: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()
        self.lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The cached value for ``key`` under the current stamp, else ``load()`` (a None is not kept)."""
        stamp = stamp_current()  # read before loading: a change committed meanwhile moves it on
        if stamp is not None:
            with self.lock:
                hit = self.items.get(key)
                if hit is not None and hit[0] == stamp:
                    self.items.move_to_end(key)
                    return hit[1]
        value = load()
        size = int(getattr(settings, self.size_setting, 1024))
        if value is not None and stamp is not None and size > 0:
            with self.lock:
                self.items[key] = (stamp, value)
                self.items.move_to_end(key)
                while len(self.items) > size:
                    self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
