"""Queue triggers and the ``db`` node.

- Queue-trigger throughput: N messages published to a RabbitMQ queue (one connection, publisher
  confirms) with 1 and then 2 ``manage.py weftconsumers`` processes consuming; messages/s from the
  first publish until every message has a recorded run (the run row written and the message
  acknowledged; the runs execute later in the workers, which are not started here: this measures
  the consumer, not the engine). The site is SQLite, the embedded default.
- ``db`` node overhead per statement: ``SELECT :x`` through ``statement_run`` (pool checkout, the
  per-statement timeout, a transaction, JSON-safe rows) against the same statement on a bare
  driver connection kept open (sqlite3 and psycopg), both in this process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from bench import graphs
from bench.common import ROOT, Config, Report, django_json, fmt, median, pg_available, site

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _broker_available() -> bool:
    import pika

    try:
        pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672, connection_attempts=1,
                                                          socket_timeout=2)).close()
    except Exception:
        return False
    return True


def consumer_throughput(n: int, processes: int) -> dict[str, Any]:
    """Django side: publish ``n`` messages, time until ``n`` runs are recorded by ``processes`` consumers."""
    import pika

    from accounts.services import credential_create
    from bench.fixtures import team_with_workflow
    from runs.models import Run
    from workflows.triggers import trigger_create

    fx = team_with_workflow(graphs.demo_like(), name="Queue")
    queue = f"perf_bench_{uuid.uuid4().hex[:8]}"
    credential_create(team=fx["team"], name="mq", kind="broker", secrets={"url": AMQP_URL})
    trigger_create(team=fx["team"], workflow=fx["workflow"], kind="queue", credential="mq", source=queue)
    env = {**os.environ, "WEFT_HTTP_ALLOW_NETWORKS": "127.0.0.0/8", "WEFT_CONSUMER_RELOAD_SECONDS": "0.5"}
    procs = [subprocess.Popen([sys.executable, "manage.py", "weftconsumers"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        channel.confirm_delivery()

        def publish(count: int, prefix: str) -> None:
            for i in range(count):
                channel.basic_publish("", queue, json.dumps({"order_id": f"{prefix}{i}", "amount": i}),
                                      pika.BasicProperties(message_id=f"{prefix}{i}", delivery_mode=2))

        def wait(total: int, timeout: float = 300) -> None:
            deadline = time.monotonic() + timeout
            while Run.objects.filter(workflow=fx["workflow"]).count() < total:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("queue bench: consumers did not record every message")
                time.sleep(0.02)

        publish(5, "warm-")  # every consumer connected and warm
        wait(5, timeout=60)
        start = time.perf_counter()
        publish(n, "m-")
        wait(5 + n)
        elapsed = time.perf_counter() - start
        channel.queue_delete(queue)
        return {"mps": n / elapsed, "n": n}
    finally:
        conn.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _bare_sqlite(path: str, repeats: int) -> float:
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    for i in range(repeats):
        conn.execute("SELECT ? AS x", (i,)).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / repeats


def _bare_psycopg(repeats: int) -> float:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        start = time.perf_counter()
        for i in range(repeats):
            conn.execute("SELECT %s AS x", (i,)).fetchall()
        return (time.perf_counter() - start) / repeats


def _node(url: str, policy: Any, repeats: int) -> float:
    from workflows.engine.databases import DatabasePools, statement_run

    pools = DatabasePools()
    statement_run(team="bench", url=url, query="SELECT :x AS x", params={"x": 0}, mode="rows", max_rows=10,
                  timeout=5, policy=policy, pools=pools)
    start = time.perf_counter()
    for i in range(repeats):
        statement_run(team="bench", url=url, query="SELECT :x AS x", params={"x": i}, mode="rows", max_rows=10,
                      timeout=5, policy=policy, pools=pools)
    elapsed = time.perf_counter() - start
    pools.dispose()
    return elapsed / repeats


def db_overhead(cfg: Config, report: Report) -> None:
    from workflows.engine.databases import DatabasePolicy

    section = "db node"
    repeats = cfg.pick(2000, 50)
    rounds = cfg.pick(5, 1)
    with tempfile.TemporaryDirectory(prefix="weft-bench-db-") as tmp:
        policy = DatabasePolicy(allow_networks=("127.0.0.0/8",), sqlite_dir=tmp)
        path = os.path.join(tmp, "bench", "bench.db")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sqlite3.connect(path).close()
        bare = median([_bare_sqlite(path, repeats) for _ in range(rounds)])
        node = median([_node("sqlite:///bench.db", policy, repeats) for _ in range(rounds)])
        report.add(section, "SQLite: SELECT :x, bare sqlite3", fmt(bare * 1e6, "µs"))
        report.add(section, "SQLite: SELECT :x through statement_run (pool, timeout, transaction)", fmt(node * 1e6, "µs"))
        report.add(section, "SQLite: db node overhead per statement", fmt((node - bare) * 1e6, "µs"))
        if pg_available() and not cfg.quick:
            bare = median([_bare_psycopg(repeats) for _ in range(rounds)])
            node = median([_node("postgresql://postgres@127.0.0.1:5432/postgres", policy, repeats)
                           for _ in range(rounds)])
            report.add(section, "PostgreSQL: SELECT :x, bare psycopg (autocommit)", fmt(bare * 1e6, "µs"))
            report.add(section, "PostgreSQL: SELECT :x through statement_run", fmt(node * 1e6, "µs"))
            report.add(section, "PostgreSQL: db node overhead per statement (BEGIN, SET LOCAL statement_timeout, "
                                "COMMIT: 3 extra round trips)", fmt((node - bare) * 1e6, "µs"))
        elif not cfg.quick:
            report.note("PostgreSQL was not reachable: the db node's PostgreSQL overhead is skipped.")


def run(cfg: Config, report: Report) -> None:
    db_overhead(cfg, report)
    section = "Queue triggers (RabbitMQ -> recorded run, SQLite)"
    if not _broker_available():
        report.note("RabbitMQ was not reachable on 127.0.0.1:5672: queue-trigger throughput is skipped.")
        return
    n = cfg.pick(1000, 20)
    for processes in (1, 2):
        with site("sqlite") as s:
            r = django_json("bench.djside", ["queues.consumer_throughput", json.dumps({"n": n, "processes": processes})],
                            s.env, timeout=900)
        report.add(section, f"{processes} consumer process{'es' if processes > 1 else ''}: messages/s, publish -> "
                            f"recorded run ({n} messages)", fmt(r["mps"], "msg/s"))
    report.note("Queue triggers: one thread per trigger per process records each message's run (run row, delivery "
                "row for the dedupe, django-q2 task) and acknowledges it; on SQLite every record is one write "
                "transaction, and all writers share one file, so a second process adds little. The machine is shared "
                "with seven other engineers' test runs (2 cores): absolute figures vary run to run.")
