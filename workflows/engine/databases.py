"""SQL for ``db`` nodes: pooled SQLAlchemy Core engines per credential, bounded per team.

One statement at a time, with bound parameters only (``:name`` placeholders). The pieces:

- ``engine_url``: the credential URL to a SQLAlchemy URL (``postgresql+psycopg``,
  ``mysql+pymysql``, ``sqlite``). A network host is resolved and checked against the address
  policy (``workflows.engine.connections``) and the engine connects to the checked address
  (PostgreSQL: ``hostaddr``, so TLS still verifies the name; MySQL: the address itself). A SQLite
  path is a file inside the team's own directory (``DatabasePolicy.sqlite_dir/<team>/``); absolute
  paths and ``..`` are refused; ``ATTACH``, ``VACUUM INTO`` and ``PRAGMA`` are denied by an
  authorizer, and ``max_page_count`` bounds the file's size.
- ``DatabasePools``: one engine (a ``QueuePool``) per team and URL in this process. A team has at
  most ``max_connections`` connections open across all its engines: checking one out waits on the
  team's semaphore (up to the statement timeout, then a retryable ``pool_exhausted``), and idle
  connections of the team's other engines are closed before a new one is opened past the bound.
- ``statement_run``: the statement under a timeout the database enforces (PostgreSQL
  ``SET LOCAL statement_timeout``; MariaDB ``max_statement_time``; MySQL ``max_execution_time``
  plus the driver's read timeout; SQLite a progress handler), rows converted to JSON-safe values
  and bounded by ``max_rows`` and the stored-output budget. A cancel from here half a second past
  the timeout backs it up (PostgreSQL's cancel request, MySQL's ``KILL QUERY``): the tenant's text
  can change the setting for itself.

Errors: connecting, a dropped connection and a timeout are retryable (``connection_error``,
``timeout``); SQL errors are permanent (``sql_error``) and carry the database's message, scrubbed
of the credential's secrets.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import heapq
import itertools
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from workflows.engine.connections import ConnectionPolicy, address_check, scrub, url_parse
from workflows.engine.errors import LimitExceeded, NodeError, NodeTimeout

SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql",
           "sqlite": "sqlite"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
# SQLSTATE / error numbers that mean "the statement ran out of time" (retryable).
PG_QUERY_CANCELED = "57014"
MYSQL_TIMEOUT_ERRNOS = {3024, 1969, 1317}  # MySQL max_execution_time, MariaDB max_statement_time, interrupted
MYSQL_CONNECTION_ERRNOS = {2002, 2003, 2006, 2013, 2055}
_DENIED_SQLITE_ACTIONS = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA}


@dataclass(frozen=True)
class DatabasePolicy(ConnectionPolicy):
    """Budgets of ``db`` nodes (settings ``WEFT_DB_*`` on the Django side)."""

    sqlite_dir: str = ""  # empty: SQLite credentials are refused
    sqlite_max_bytes: int = 100 * 1024 * 1024
    max_connections: int = 5  # per team, per process
    max_rows: int = 10_000  # upper bound of a node's max_rows
    max_output_bytes: int = 1024 * 1024
    statement_timeout: float = 30.0  # when the node sets no timeout
    max_statement_timeout: float = 300.0


# -- URLs ---------------------------------------------------------------------------------------

def sqlite_path(path: str, *, team: str, policy: DatabasePolicy) -> Path:
    """The file of a ``sqlite:///name.db`` URL inside the team's directory (created if missing)."""
    if not policy.sqlite_dir:
        raise NodeError("SQLite databases are not enabled on this platform", code="invalid_url")
    name = path[1:] if path.startswith("/") else path
    if not name or name.startswith("/") or ".." in Path(name).parts or ":" in name:
        raise NodeError("a SQLite URL names a file inside the team's directory: sqlite:///orders.db",
                        code="invalid_url")
    root = (Path(policy.sqlite_dir) / team).resolve()
    target = (root / name).resolve()
    if root not in target.parents:
        raise NodeError("a SQLite URL names a file inside the team's directory", code="invalid_url")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def engine_url(url: str, *, team: str, policy: DatabasePolicy) -> tuple[sa.URL, dict[str, Any]]:
    """The SQLAlchemy URL and driver ``connect_args`` for a credential URL (address checked)."""
    parsed = url_parse(url)
    dialect = SCHEMES.get(parsed.scheme)
    if dialect is None:
        raise NodeError("the credential's URL must start with postgresql://, mysql:// or sqlite:///",
                        code="invalid_url")
    if dialect == "sqlite":
        if parsed.host:
            raise NodeError("a SQLite URL has no host: sqlite:///orders.db", code="invalid_url")
        return sa.URL.create("sqlite", database=str(sqlite_path(parsed.path, team=team, policy=policy))), {}
    database = parsed.path.lstrip("/")
    port = parsed.port or DEFAULT_PORTS[dialect]
    address = address_check(parsed.host, port, policy)
    timeout = max(1, math.ceil(policy.connect_timeout))
    if dialect == "postgresql":
        sa_url = sa.URL.create("postgresql+psycopg", username=parsed.username or None,
                               password=parsed.password or None, host=parsed.host, port=port,
                               database=database or None)
        return sa_url, {"hostaddr": address, "connect_timeout": timeout}
    sa_url = sa.URL.create("mysql+pymysql", username=parsed.username or None, password=parsed.password or None,
                           host=address, port=port, database=database or None, query={"charset": "utf8mb4"})
    read_timeout = math.ceil(policy.max_statement_timeout) + 5  # backstop behind max_execution_time
    return sa_url, {"connect_timeout": timeout, "read_timeout": read_timeout, "write_timeout": read_timeout}


# -- pools --------------------------------------------------------------------------------------

def _sqlite_connect_hook(max_bytes: int) -> Any:
    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        page_size = dbapi_connection.execute("PRAGMA page_size").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page_size)}")
        dbapi_connection.execute("PRAGMA busy_timeout = 5000")

        def authorizer(action: int, *_args: Any) -> int:
            return sqlite3.SQLITE_DENY if action in _DENIED_SQLITE_ACTIONS else sqlite3.SQLITE_OK

        dbapi_connection.set_authorizer(authorizer)
    return on_connect


class _TeamPools:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.slots = threading.BoundedSemaphore(limit)
        self.engines: dict[str, Engine] = {}


class DatabasePools:
    """Engines per (team, credential URL) in this process, with the team's connection bound."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._teams: dict[str, _TeamPools] = {}

    def _team(self, team: str, policy: DatabasePolicy) -> _TeamPools:
        with self._lock:
            pools = self._teams.get(team)
            if pools is None or pools.limit != policy.max_connections:
                pools = self._teams[team] = _TeamPools(max(1, policy.max_connections))
            return pools

    def _engine(self, pools: _TeamPools, url: str, team: str, policy: DatabasePolicy) -> Engine:
        key = url
        with self._lock:
            engine = pools.engines.get(key)
        if engine is not None:
            return engine
        sa_url, connect_args = engine_url(url, team=team, policy=policy)
        if sa_url.get_backend_name() == "sqlite":
            engine = sa.create_engine(sa_url, poolclass=QueuePool, pool_size=pools.limit, max_overflow=0,
                                      connect_args={"check_same_thread": False, "timeout": 5})
            event.listen(engine, "connect", _sqlite_connect_hook(policy.sqlite_max_bytes))
        else:
            engine = sa.create_engine(sa_url, poolclass=QueuePool, pool_size=pools.limit, max_overflow=0,
                                      pool_pre_ping=True, pool_recycle=300, connect_args=connect_args)
        with self._lock:
            existing = pools.engines.setdefault(key, engine)
        if existing is not engine:
            engine.dispose()
        return existing

    @contextmanager
    def connection(self, *, team: str, url: str, policy: DatabasePolicy, wait: float) -> Iterator[Connection]:
        """A pooled connection of the team's engine for ``url``; waits at most ``wait`` seconds for
        one of the team's ``max_connections`` slots."""
        pools = self._team(team, policy)
        if not pools.slots.acquire(timeout=max(0.0, wait)):
            raise NodeError(f"the team's {pools.limit} database connections are all in use",
                            retryable=True, code="pool_exhausted")
        try:
            engine = self._engine(pools, url, team, policy)
            self._trim(pools, keep=engine)
            try:
                conn = engine.connect()
            except sa.exc.DBAPIError as exc:
                raise connection_error(exc, url) from None
            try:
                yield conn
            finally:
                conn.close()
        finally:
            pools.slots.release()

    def _trim(self, pools: _TeamPools, *, keep: Engine) -> None:
        """Close idle connections of the team's other engines when the team is at its bound."""
        with self._lock:
            engines = list(pools.engines.values())
        open_count = sum(e.pool.checkedin() + e.pool.checkedout() for e in engines)
        if open_count < pools.limit or keep.pool.checkedin():
            return
        for other in engines:
            if other is not keep and other.pool.checkedin():
                other.dispose(close=True)  # checked-out connections finish their statement first

    def open_connections(self, team: str) -> int:
        pools = self._teams.get(team)
        if pools is None:
            return 0
        return sum(e.pool.checkedin() + e.pool.checkedout() for e in list(pools.engines.values()))

    def dispose(self) -> None:
        with self._lock:
            teams, self._teams = self._teams, {}
        for pools in teams.values():
            for engine in pools.engines.values():
                engine.dispose()


POOLS = DatabasePools()


# -- errors -------------------------------------------------------------------------------------

def _secrets(url: str) -> list[str]:
    parsed = url_parse(url)
    return [parsed.password, url]


def connection_error(exc: Exception, url: str) -> NodeError:
    """Connecting failed: a clear, retryable error with the driver's reason (no secrets).

    Authentication failures and unknown databases are permanent: retrying cannot fix them."""
    orig = getattr(exc, "orig", exc)
    message = scrub(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__, _secrets(url))
    lowered = message.lower()
    if "password authentication failed" in lowered or "access denied" in lowered or "authentication" in lowered:
        return NodeError(f"authentication failed: {message}", code="auth_failed")
    if ("database" in lowered and "does not exist" in lowered) or "unknown database" in lowered:
        return NodeError(f"unknown database: {message}", code="unknown_database")
    if "refused" in lowered:
        return NodeError(f"connection refused: {message}", retryable=True, code="connection_refused")
    if "timeout" in lowered or "timed out" in lowered:
        return NodeError(f"connecting timed out: {message}", retryable=True, code="connection_error")
    return NodeError(f"cannot connect: {message}", retryable=True, code="connection_error")


def _is_timeout(orig: Any) -> bool:
    if getattr(orig, "sqlstate", None) == PG_QUERY_CANCELED:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in MYSQL_TIMEOUT_ERRNOS:
        return True
    return isinstance(orig, sqlite3.OperationalError) and "interrupted" in str(orig)


def statement_error(exc: sa.exc.SQLAlchemyError, url: str) -> NodeError:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    message = scrub(text.splitlines()[0] if text else type(exc).__name__, _secrets(url))
    if orig is not None and _is_timeout(orig):
        return NodeTimeout(f"the statement ran past its timeout: {message}")
    args = getattr(orig, "args", ())
    lost = getattr(exc, "connection_invalidated", False) or (
        args and isinstance(args[0], int) and args[0] in MYSQL_CONNECTION_ERRNOS)
    if lost:
        return NodeError(f"the connection was lost: {message}", retryable=True, code="connection_error")
    return NodeError(f"SQL error: {message}", code="sql_error")


# -- values -------------------------------------------------------------------------------------

def json_value(value: Any) -> Any:
    """A database value as JSON: decimals as numbers when exact (else strings), dates and times as
    ISO 8601, intervals as seconds, bytes as base64, UUIDs as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_value(v) for v in value]
    return str(value)


def bind_value(value: Any) -> Any:
    """A node parameter as a driver value: objects and arrays are sent as JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


# -- running one statement -----------------------------------------------------------------------

@contextmanager
def _sqlite_deadline(conn: Connection, seconds: float) -> Iterator[None]:
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


# The client-side backstop behind the database's own statement timeout, seconds past it.
CANCEL_MARGIN_SECONDS = 0.5


class _Canceller:
    """One thread per process that sends the cancel requests of statements past their deadline (no
    thread per statement: a ``threading.Timer`` each cost ~0.2 ms). A finished statement's cancel is
    dropped at once; its place in the heap goes when it comes up, or when finished ones outnumber
    the armed (so that short statements behind a long one do not pile up)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.due: list[tuple[float, int]] = []  # (deadline, ticket), a heap
        self.armed: dict[int, Callable[[], Any]] = {}  # ticket -> its cancel
        self.tickets = itertools.count()
        self.firing: int | None = None
        self.thread: threading.Thread | None = None

    def arm(self, seconds: float, cancel: Callable[[], Any]) -> int:
        ticket = next(self.tickets)
        with self.cond:
            heapq.heappush(self.due, (time.monotonic() + seconds, ticket))
            self.armed[ticket] = cancel
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="weft-db-cancel", daemon=True)
                self.thread.start()
            self.cond.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        """No cancel for ``ticket`` after this returns (one being sent is waited for): the connection
        may go on to its commit and then to another statement."""
        with self.cond:
            self.armed.pop(ticket, None)
            if len(self.due) > 2 * len(self.armed) + 64:
                self.due = [entry for entry in self.due if entry[1] in self.armed]
                heapq.heapify(self.due)
            while self.firing == ticket:
                self.cond.wait()

    def _run(self) -> None:
        while True:
            with self.cond:
                while self.due and self.due[0][1] not in self.armed:
                    heapq.heappop(self.due)  # finished in time
                wait = self.due[0][0] - time.monotonic() if self.due else None
                if wait is None or wait > 0:
                    self.cond.wait(wait)
                    continue
                _, ticket = heapq.heappop(self.due)
                cancel = self.armed.pop(ticket)
                self.firing = ticket
            with contextlib.suppress(Exception):  # the connection is gone already: nothing to cancel
                cancel()
            with self.cond:
                self.firing = None
                self.cond.notify_all()


_canceller = _Canceller()


def _mysql_kill_query(conn: Connection) -> Callable[[], None]:
    """A function that interrupts the statement running on ``conn`` (``KILL QUERY`` on a connection of
    its own, to the address the pooled one was opened to). Only the thread id is read here: the rest
    is the rare case's work."""
    thread_id = int(conn.connection.dbapi_connection.thread_id())
    engine = conn.engine

    def kill() -> None:
        import pymysql

        _, options = engine.dialect.create_connect_args(engine.url)
        killer = pymysql.connect(**{**options, "connect_timeout": 5, "read_timeout": 5, "write_timeout": 5})
        try:
            with killer.cursor() as cursor:
                cursor.execute(f"KILL QUERY {thread_id}")
        finally:
            killer.close()

    return kill


@contextmanager
def _cancel_after(conn: Connection, seconds: float) -> Iterator[None]:
    """The statement interrupted from here once it runs ``CANCEL_MARGIN_SECONDS`` past its timeout: on
    PostgreSQL a cancel request (as psql's Ctrl-C), on MySQL and MariaDB ``KILL QUERY``. The database's
    own cut-off comes first, but the tenant's text can lift it for itself: on PostgreSQL ``SET
    statement_timeout = 0; SELECT pg_sleep(600)`` sent as one statement (the simple query protocol
    runs both), on MariaDB ``SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(600)``."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        cancel = getattr(raw, "cancel_safe", None) or raw.cancel
    else:
        cancel = _mysql_kill_query(conn)
    ticket = _canceller.arm(seconds + CANCEL_MARGIN_SECONDS, cancel)
    try:
        yield
    finally:
        _canceller.disarm(ticket)


def _timeout_set(conn: Connection, seconds: float) -> None:
    backend = conn.dialect.name
    if backend == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
    elif backend == "mysql":
        if getattr(conn.dialect, "is_mariadb", False):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {max(0.001, seconds):.3f}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")


def rows_collect(result: sa.CursorResult, *, limit: int, max_bytes: int) -> list[dict[str, Any]]:
    """At most ``limit`` rows as JSON-safe dicts; ``limit_exceeded`` past ``max_bytes`` of JSON."""
    keys = list(result.keys())
    rows: list[dict[str, Any]] = []
    size = 2
    for raw in result.fetchmany(limit) if limit else []:
        row = {k: json_value(v) for k, v in zip(keys, raw, strict=False)}
        size += len(json.dumps(row, ensure_ascii=False, default=str)) + 1
        if size > max_bytes:
            raise LimitExceeded(f"the result is larger than the {max_bytes}-byte output limit; select fewer "
                                f"rows or columns (max_rows)")
        rows.append(row)
    return rows


def statement_run(*, team: str, url: str, query: str, params: Mapping[str, Any], mode: str, max_rows: int,
                  timeout: float | None, policy: DatabasePolicy, pools: DatabasePools = POOLS) -> Any:
    """Run one statement and return the node output for ``mode`` (rows / one / execute)."""
    seconds = min(float(timeout or policy.statement_timeout), policy.max_statement_timeout)
    limit = max(0, min(int(max_rows), policy.max_rows))
    bound = {str(k): bind_value(v) for k, v in params.items()}
    with pools.connection(team=team, url=url, policy=policy, wait=seconds) as conn:
        try:
            with conn.begin():
                _timeout_set(conn, seconds)
                if conn.dialect.name == "sqlite":
                    with _sqlite_deadline(conn, seconds):
                        return _execute(conn, query, bound, mode, limit, policy)
                with _cancel_after(conn, seconds):
                    return _execute(conn, query, bound, mode, limit, policy)
        except NodeError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise statement_error(exc, url) from None


def _execute(conn: Connection, query: str, bound: dict[str, Any], mode: str, limit: int,
             policy: DatabasePolicy) -> Any:
    result = conn.execute(sa.text(query), bound)
    if mode == "execute" or not result.returns_rows:
        count = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else 0
        result.close()
        if mode == "rows":
            return {"rows": [], "rowcount": count}
        return None if mode == "one" else {"rowcount": count}
    if mode == "one":
        rows = rows_collect(result, limit=1, max_bytes=policy.max_output_bytes)
        result.close()
        return rows[0] if rows else None
    rows = rows_collect(result, limit=limit + 1, max_bytes=policy.max_output_bytes)
    result.close()
    if len(rows) > limit:
        return {"rows": rows[:limit], "rowcount": limit, "truncated": True}
    return {"rows": rows, "rowcount": len(rows)}


def connection_test(*, team: str, url: str, policy: DatabasePolicy) -> None:
    """Connect once and run ``SELECT 1`` (the credential's "test connection"); raises ``NodeError``."""
    pools = DatabasePools()
    try:
        statement_run(team=team, url=url, query="SELECT 1", params={}, mode="one", max_rows=1,
                      timeout=policy.connect_timeout, policy=policy, pools=pools)
    finally:
        pools.dispose()
