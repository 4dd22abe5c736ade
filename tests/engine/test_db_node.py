"""The ``db`` node against real SQLite, PostgreSQL (:5432) and MariaDB (:3306) databases.

No Django here: the node gets its credential and policy from a plain services object."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pymysql
import pytest

from tests.engine.helpers import chain, compile_test, run
from workflows.engine.databases import POOLS, DatabasePolicy, DatabasePools, connection_test, statement_run
from workflows.engine.errors import NodeError
from workflows.engine.graph import GraphInvalid
from workflows.engine.ports import NullServices

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOOPBACK = ("127.0.0.0/8",)


class Services(NullServices):
    def __init__(self, url: str, policy: DatabasePolicy, team: str = "team-a") -> None:
        super().__init__(db_policy=policy, team_key=team)
        self.url = url

    def credential(self, name: str) -> dict[str, str]:
        if name != "db":
            raise KeyError(name)
        return {"kind": "database", "url": self.url}


@pytest.fixture
def policy(tmp_path: Any) -> DatabasePolicy:
    return DatabasePolicy(allow_networks=LOOPBACK, sqlite_dir=str(tmp_path), connect_timeout=5)


@pytest.fixture(scope="module")
def pg_url() -> Any:
    name = f"weft_queues_node_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    POOLS.dispose()
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mysql_url() -> Any:
    name = f"queues_node_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    POOLS.dispose()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def db_graph(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    nodes = [{"id": f"q{i}", "type": "db", "config": {"credential": "db", **step}} for i, step in enumerate(steps)]
    return chain(*nodes, inputs={"id": {"type": "integer"}, "name": {"type": "string"}}, **extra)


def run_db(graph: dict[str, Any], services: Services, inputs: dict[str, Any] | None = None) -> Any:
    compiled = compile_test(graph, credential_names={"db"})
    return run(compiled, inputs or {}, services=services)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_rows_one_execute_with_bound_parameters(backend: str, policy: DatabasePolicy, request: Any) -> None:
    url = {"sqlite": "sqlite:///orders.db", "postgresql": None, "mysql": None}[backend]
    if url is None:
        url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    services = Services(url, policy)
    table = f"orders_{uuid.uuid4().hex[:6]}"
    graph = db_graph(
        {"query": f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(200), total DECIMAL(10,2))",
         "mode": "execute"},
        {"query": f"INSERT INTO {table} (id, name, total) VALUES (:id, :name, :total)", "mode": "execute",
         "params": {"id": "{{ inputs.id }}", "name": "{{ inputs.name }}", "total": 12.5}},
        {"query": f"SELECT id, name, total FROM {table} WHERE id = :id", "mode": "one",
         "params": {"id": "{{ inputs.id }}"}},
        {"query": f"SELECT name FROM {table} ORDER BY id", "mode": "rows"},
    )
    # A name that would be an injection if it were pasted into SQL is stored as plain text.
    hostile = "x'); DROP TABLE " + table + "; --"
    outcome, host = run_db(graph, services, {"id": 7, "name": hostile})
    assert outcome.status == "succeeded", outcome.error
    assert host.records["q1"].output == {"rowcount": 1}
    assert host.records["q2"].output == {"id": 7, "name": hostile, "total": 12.5}
    assert host.records["q3"].output == {"rows": [{"name": hostile}], "rowcount": 1}


def test_templates_in_query_are_refused_at_publish() -> None:
    for query in ("SELECT * FROM t WHERE id = {{ inputs.id }}", "SELECT '${region}'", "SELECT '$[yyyyMMdd]'"):
        with pytest.raises(GraphInvalid) as exc:
            compile_test(db_graph({"query": query}), credential_names={"db"}, global_params={"region": "eu"})
        assert {"path": "/nodes/1/config/query",
                "message": "templates, ${} parameters and macros are not allowed in SQL; use :name placeholders "
                           "and put the values in params"} in exc.value.errors


def test_json_safe_values_and_max_rows(pg_url: str, policy: DatabasePolicy) -> None:
    out = statement_run(
        team="t", url=pg_url, mode="one", max_rows=1, timeout=5, policy=policy, params={},
        query="SELECT 1.25::numeric AS d, 0.1::numeric(30,20) AS exact, 12345678901234567890.5::numeric AS big, "
              "DATE '2026-03-15' AS day, TIMESTAMPTZ '2026-03-15 10:00:00+00' AS at, '\\x00ff'::bytea AS raw, "
              "INTERVAL '90 seconds' AS span, gen_random_uuid() IS NOT NULL AS ok",
    )
    assert out == {"d": 1.25, "exact": 0.1, "big": "12345678901234567890.5", "day": "2026-03-15",
                   "at": "2026-03-15T10:00:00+00:00", "raw": "AP8=", "span": 90.0, "ok": True}
    rows = statement_run(team="t", url=pg_url, mode="rows", max_rows=3, timeout=5, policy=policy, params={},
                         query="SELECT g FROM generate_series(1, 10) AS g")
    assert rows == {"rows": [{"g": 1}, {"g": 2}, {"g": 3}], "rowcount": 3, "truncated": True}


def test_output_budget_is_a_limit_exceeded_failure(pg_url: str, policy: DatabasePolicy) -> None:
    small = DatabasePolicy(allow_networks=LOOPBACK, max_output_bytes=10_000)
    with pytest.raises(NodeError) as exc:
        statement_run(team="t", url=pg_url, mode="rows", max_rows=1000, timeout=5, policy=small, params={},
                      query="SELECT repeat('x', 100) AS filler FROM generate_series(1, 500)")
    assert exc.value.code == "limit_exceeded"


@pytest.mark.parametrize("backend", ["postgresql", "mysql", "sqlite"])
def test_statement_timeout_is_enforced_by_the_database(backend: str, policy: DatabasePolicy, request: Any) -> None:
    if backend == "sqlite":
        url, query = "sqlite:///slow.db", ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                           "SELECT count(*) FROM c")
    else:
        url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
        query = "SELECT pg_sleep(10)" if backend == "postgresql" else "SELECT SLEEP(10) AS s FROM DUAL"
    started = time.monotonic()
    # MariaDB interrupts SLEEP() at max_statement_time with error 1969 (a SLEEP() ended by KILL QUERY
    # would return 1 instead; the node sets max_statement_time, so the outcome is the error).
    with pytest.raises(NodeError) as exc:
        statement_run(team="t", url=url, mode="one", max_rows=1, timeout=1, policy=policy, params={},
                      query=query)
    assert exc.value.code == "timeout" and exc.value.retryable
    assert time.monotonic() - started < 5


def test_sql_errors_are_permanent_connection_errors_retryable(pg_url: str, policy: DatabasePolicy) -> None:
    with pytest.raises(NodeError) as exc:
        statement_run(team="t", url=pg_url, mode="rows", max_rows=1, timeout=5, policy=policy, params={},
                      query="SELECT * FROM no_such_table")
    assert exc.value.code == "sql_error" and not exc.value.retryable and "no_such_table" in exc.value.message
    with pytest.raises(NodeError) as exc:
        statement_run(team="t", url="postgresql://postgres:hunter2@127.0.0.1:1/x", mode="rows", max_rows=1,
                      timeout=5, policy=policy, params={}, query="SELECT 1")
    assert exc.value.code == "connection_refused" and exc.value.retryable
    assert "hunter2" not in exc.value.message


def test_connection_test_reports_clear_errors_without_the_secret(pg_url: str, mysql_url: str,
                                                                 policy: DatabasePolicy) -> None:
    connection_test(team="t", url=pg_url, policy=policy)
    cases = [
        ("postgresql://postgres:s3cret-pw@127.0.0.1:5432/no_such_db_here", "unknown_database"),
        ("mysql://nobody:s3cret-pw@127.0.0.1:3306/x", "auth_failed"),
        ("mysql://root@127.0.0.1:3306/no_such_db_here", "unknown_database"),
        ("postgresql://postgres:s3cret-pw@127.0.0.1:1/x", "connection_refused"),
    ]
    for url, code in cases:
        with pytest.raises(NodeError) as exc:
            connection_test(team="t", url=url, policy=policy)
        assert exc.value.code == code, (url, exc.value.message)
        assert "s3cret-pw" not in exc.value.message


def test_address_policy_applies_to_the_resolved_host(policy: DatabasePolicy) -> None:
    strict = DatabasePolicy(allow_networks=())
    for url in ("postgresql://postgres@localhost:5432/postgres", "mysql://root@2130706433:3306/x",
                "postgresql://postgres@[::ffff:127.0.0.1]:5432/postgres"):
        with pytest.raises(NodeError) as exc:
            statement_run(team="t", url=url, mode="one", max_rows=1, timeout=5, policy=strict, params={},
                          query="SELECT 1")
        assert exc.value.code == "address_refused", url


def test_sqlite_stays_inside_the_team_directory(policy: DatabasePolicy, tmp_path: Any) -> None:
    for url in ("sqlite:////etc/passwd", "sqlite:///../other-team/x.db", "sqlite:///a/../../x.db"):
        with pytest.raises(NodeError) as exc:
            statement_run(team="t", url=url, mode="one", max_rows=1, timeout=5, policy=policy, params={},
                          query="SELECT 1")
        assert exc.value.code == "invalid_url", url
    for query in (f"ATTACH DATABASE '{tmp_path}/escape.db' AS e", f"VACUUM INTO '{tmp_path}/escape.db'",
                  "PRAGMA max_page_count = 100000000"):
        with pytest.raises(NodeError) as exc:
            statement_run(team="t", url="sqlite:///own.db", mode="execute", max_rows=1, timeout=5,
                          policy=policy, params={}, query=query)
        assert exc.value.code == "sql_error", query
    assert not (tmp_path / "escape.db").exists()
    assert (tmp_path / "t" / "own.db").exists()


def test_connections_per_team_are_bounded(pg_url: str) -> None:
    pools = DatabasePools()
    policy = DatabasePolicy(allow_networks=LOOPBACK, max_connections=2)
    errors: list[str] = []

    def sleeper() -> None:
        try:
            statement_run(team="busy", url=pg_url, mode="one", max_rows=1, timeout=2, policy=policy, params={},
                          query="SELECT pg_sleep(1)", pools=pools)
        except NodeError as exc:
            errors.append(exc.code)

    threads = [threading.Thread(target=sleeper) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert pools.open_connections("busy") == 2
    with pytest.raises(NodeError) as exc:
        statement_run(team="busy", url=pg_url, mode="one", max_rows=1, timeout=0.2, policy=policy, params={},
                      query="SELECT 1", pools=pools)
    assert exc.value.code == "pool_exhausted" and exc.value.retryable
    # Another team is not held up by the busy one.
    assert statement_run(team="other", url=pg_url, mode="one", max_rows=1, timeout=2, policy=policy,
                         params={}, query="SELECT 1 AS one", pools=pools) == {"one": 1}
    for t in threads:
        t.join()
    assert errors == []
    assert pools.open_connections("busy") <= 2
    pools.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_tenants_own_timeout_setting_does_not_outlive_its_statement(backend: str, policy: DatabasePolicy,
                                                                       request: Any) -> None:
    """A hostile statement that turns the timeout off (alone, or in front of a slow query) cannot lift
    the budget: the next statement on the same pooled connection is still cut at its timeout."""
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    lift = "SET statement_timeout = 0" if backend == "postgresql" else "SET SESSION max_statement_time = 0"
    slow = "SELECT pg_sleep(10)" if backend == "postgresql" else "SELECT SLEEP(10) AS s FROM DUAL"
    # PostgreSQL runs both of "lift; slow" (the simple query protocol); MariaDB lifts it for one statement.
    own = f"{lift}; {slow}" if backend == "postgresql" else "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(10) AS s"
    pools = DatabasePools()
    try:
        assert statement_run(team="t", url=url, mode="execute", max_rows=1, timeout=1, policy=policy, params={},
                             query=lift, pools=pools) == {"rowcount": 0}
        for query in (slow, own):
            started = time.monotonic()
            with pytest.raises(NodeError) as exc:
                statement_run(team="t", url=url, mode="one", max_rows=1, timeout=1, policy=policy, params={},
                              query=query, pools=pools)
            assert exc.value.code == "timeout", exc.value
            assert time.monotonic() - started < 5, query
        assert statement_run(team="t", url=url, mode="one", max_rows=1, timeout=1, policy=policy, params={},
                             query="SELECT 1 AS one", pools=pools) == {"one": 1}
    finally:
        pools.dispose()


def test_the_canceller_fires_only_armed_deadlines_and_forgets_finished_ones() -> None:
    """A statement past its deadline is cancelled once; one that finished in time never is, and many
    finished short statements behind a long one leave no pile of entries behind."""
    from workflows.engine.databases import _Canceller

    canceller, fired = _Canceller(), []
    long_ticket = canceller.arm(60, lambda: fired.append("long"))
    for i in range(1000):
        canceller.disarm(canceller.arm(0.05, lambda i=i: fired.append(i)))
    assert len(canceller.due) <= 2 * len(canceller.armed) + 64
    canceller.arm(0.05, lambda: fired.append("late"))
    deadline = time.monotonic() + 5
    while "late" not in fired and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert fired == ["late"]
    canceller.disarm(long_ticket)
    assert canceller.armed == {}
