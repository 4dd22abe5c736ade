"""The embedded default's cache: a SQLite file shared by every process of one installation.

Without Redis, several processes share what the cache holds: rate-limit counters (runs.limits),
websocket tickets issued by one web process and redeemed by another (runs.ws_tickets), login
throttling, and the version stamps that tell every process its cached tokens and apps are stale.
Django's local-memory cache is per process, so with one web process per core a ticket would be
refused by the other processes and every limit would be multiplied. This backend keeps the entries
in a small SQLite file of its own (``<database file>-cache`` when the database is SQLite, so the
tests' databases get their own; ``LOCATION`` or ``<data dir>/cache.sqlite3`` otherwise), written
with single statements (``INSERT ... ON CONFLICT``, ``UPDATE ... RETURNING``: ``add`` and ``incr``
are atomic across processes) in the same first-come, first-served writer queue as the database
(config.sqlite.writers), with ``synchronous=OFF`` (a cache may lose its last writes on a power cut,
never its consistency). Integers are stored as integers (so ``incr`` is one statement), anything
else pickled. Expired entries are skipped on read and swept now and then.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.db import connections

from config.sqlite.writers import writer_queue

_SCHEMA = ("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL)"
           " WITHOUT ROWID")
_LIVE = "(expires IS NULL OR expires >= ?)"
SWEEP_EVERY = 2000  # writes per process between two sweeps of expired entries
WRITE_WAIT_SECONDS = 10.0


def default_location() -> str:
    """``<database file>-cache`` for a SQLite database, else ``<data dir>/cache.sqlite3``."""
    db = connections["default"].settings_dict
    name = str(db.get("NAME") or "")
    sqlite = db.get("ENGINE", "").endswith("sqlite") or "sqlite3" in db.get("ENGINE", "")
    if sqlite and name and name != ":memory:" and not name.startswith("file:"):
        return f"{name}-cache"
    return str(settings.DATA_DIR / "cache.sqlite3")


class SharedFileCache(BaseCache):
    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self._location = location
        self._local = threading.local()
        self._writes = 0

    def validate_key(self, key: str) -> None:
        """Every string is a valid key of this backend. (Django's default scans each key's
        characters for memcached's rules on every call: about a third of what the rate limits cost a request.)"""

    # Connections: one per thread and file, opened lazily (the test database's name is only known
    # once the tests have created it), dropped in a forked child.
    def _path(self) -> str:
        return self._location or default_location()

    def _conn(self) -> tuple[sqlite3.Connection, str]:
        path = self._path()
        conns: dict[str, sqlite3.Connection] | None = getattr(self._local, "conns", None)
        if conns is None or getattr(self._local, "pid", None) != os.getpid():
            conns = self._local.conns = {}
            self._local.pid = os.getpid()
        conn = conns.get(path)
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            with _Write(path):
                conn.execute(_SCHEMA)
            conns[path] = conn
        return conn, path

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor | _Rows:
        """One statement in the file's writer queue; a ``RETURNING`` statement's rows are read
        before the place is given back (``fetchall`` on the cursor returned)."""
        conn, path = self._conn()
        with _Write(path):
            cursor = conn.execute(sql, args)
            if cursor.description is not None:
                cursor = _Rows(cursor.fetchall(), cursor.rowcount)
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            with _Write(path):
                conn.execute("DELETE FROM cache WHERE expires < ?", (time.time(),))
        return cursor

    @staticmethod
    def _encode(value: Any) -> Any:
        if type(value) is int and -(2**63) <= value < 2**63:
            return value
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def _decode(raw: Any) -> Any:
        return raw if isinstance(raw, int) else pickle.loads(raw)

    def _expiry(self, timeout: Any) -> float | None:
        return self.get_backend_timeout(timeout)

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        conn, _ = self._conn()
        row = conn.execute(f"SELECT value FROM cache WHERE key = ? AND {_LIVE}", (key, time.time())).fetchone()
        return default if row is None else self._decode(row[0])

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key = self.make_and_validate_key(key, version=version)
        self._write("INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "value = excluded.value, expires = excluded.expires",
                    (key, self._encode(value), self._expiry(timeout)))

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        cursor = self._write(
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value, expires = excluded.expires WHERE cache.expires < ?",
            (key, self._encode(value), self._expiry(timeout), time.time()))
        return cursor.rowcount == 1

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        row = self._write(f"UPDATE cache SET value = value + ? WHERE key = ? AND {_LIVE} AND typeof(value) = 'integer' "
                          "RETURNING value", (delta, key, time.time())).fetchone()
        if row is None:
            raise ValueError(f"Key '{key}' not found")
        return int(row[0])

    def count_windows(self, keys: list[str], timeout: float) -> list[int]:
        """Add one to each counter of ``keys`` (made from 0, expiring in ``timeout`` seconds, when
        missing or expired) in one statement; the counts, in order. The rate limits' counters."""
        made = [self.make_and_validate_key(key) for key in keys]
        now = time.time()
        live = "(cache.expires IS NULL OR cache.expires >= ?) AND typeof(cache.value) = 'integer'"
        sql = ("INSERT INTO cache (key, value, expires) VALUES " + ", ".join(["(?, 1, ?)"] * len(made))
               + f" ON CONFLICT(key) DO UPDATE SET value = CASE WHEN {live} THEN cache.value + 1 ELSE 1 END, "
               f"expires = CASE WHEN {live} THEN cache.expires ELSE excluded.expires END RETURNING key, value")
        counts = dict(self._write(sql, (*[x for key in made for x in (key, now + timeout)], now, now)).fetchall())
        return [int(counts[key]) for key in made]

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        cursor = self._write(f"UPDATE cache SET expires = ? WHERE key = ? AND {_LIVE}",
                             (self._expiry(timeout), key, time.time()))
        return cursor.rowcount == 1

    def delete(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write("DELETE FROM cache WHERE key = ?", (key,)).rowcount == 1

    def has_key(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        conn, _ = self._conn()
        return conn.execute(f"SELECT 1 FROM cache WHERE key = ? AND {_LIVE}", (key, time.time())).fetchone() is not None

    def clear(self) -> None:
        self._write("DELETE FROM cache", ())

    def close(self, **kwargs: Any) -> None:
        """Connections stay open for the thread's next request (Django calls this after each one)."""


class _Rows:
    """A finished statement's returned rows, read under the writer's place (``SharedFileCache._write``)."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _Write:
    """A place in the file's writer queue for one statement."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.ticket = writer_queue(self.path).acquire(WRITE_WAIT_SECONDS)

    def __exit__(self, *exc: object) -> None:
        self.ticket.release()
