"""Scale-out on PostgreSQL + Redis (the production setting), measured on this machine.

- Web: ``manage.py runweft`` with 1 and then 2 Daphne processes on one socket, the Dify blocking
  run of the peer workflow at c=10 (the same load generator as ``bench.peer``), alternating rounds:
  the requests/s ratio (goal >= 1.4x).
- Async: one django-q2 cluster with 1 and then 2 worker processes, 100 async runs submitted at
  once, runs/s until all are final (goal >= 1.5x).

Redis: ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/7``). Skipped when PostgreSQL or Redis
is not reachable, and in quick mode.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

from bench import peer
from bench.common import Config, Report, django_json, fmt, median, pg_available, site

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SECTION = "Scale-out (PostgreSQL + Redis)"
WEB_GOAL = 1.4
ASYNC_GOAL = 1.5
WARM_UP_SECONDS = 15.0


def redis_available() -> bool:
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run(cfg: Config, report: Report) -> None:
    if cfg.quick:
        report.add(SECTION, "web and async scale-out", "skipped in quick mode (CI smoke)")
        return
    if not pg_available() or not redis_available():
        report.add(SECTION, "web and async scale-out", "skipped: PostgreSQL or Redis is not reachable")
        return
    rounds, seconds = 3, 5.0
    with site("postgres") as s:
        env = {**{k: v for k, v in s.env.items() if not k.endswith("RATE_LIMIT_PER_MINUTE")}, "REDIS_URL": REDIS_URL}
        fx = django_json("bench.djside", ["peer.setup_worker"], env)
        url_of: dict[int, Any] = {}
        per: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for _ in range(rounds):
            for processes in (1, 2):
                with peer.weft_server(env, web_processes=processes) as base:
                    url_of[processes] = f"{base}/v1/workflows/run"
                    # Warm at the measured concurrency until the executor pools have grown (bench.peer).
                    peer.measure(url_of[processes], peer.BODY_WEFT, fx["app_token"], 10, WARM_UP_SECONDS)
                    per[processes].append(peer.measure(url_of[processes], peer.BODY_WEFT, fx["app_token"], 10, seconds))
        web = {p: median([r["rps"] for r in runs]) for p, runs in per.items()}
        errors = sum(r["errors"] for runs in per.values() for r in runs)
        ratio = web[2] / web[1]
        report.add(SECTION, "Dify blocking run, c=10: requests/s with 1 web process -> 2",
                   f"{fmt(web[1], '')} -> {fmt(web[2], '')} ({ratio:.2f}x, {errors} errors)", f">= {WEB_GOAL:g}x",
                   ratio >= WEB_GOAL and errors == 0)
        async_rps, busy = {}, {}
        for workers in (1, 2):
            r = django_json("bench.djside", ["asyncq.async_worker",
                                             f'{{"n": 100, "repeats": 3, "parked": 0, "parked_real": 0, "workers": {workers}}}'],
                            env, timeout=900)
            async_rps[workers], busy[workers] = r["rps"], r["cores_busy"]
        ratio = async_rps[2] / async_rps[1]
        report.add(SECTION, "async runs/s (100 at once) with 1 worker process -> 2",
                   f"{fmt(async_rps[1], '')} -> {fmt(async_rps[2], '')} ({ratio:.2f}x; cores busy "
                   f"{busy[1]:.2f} -> {busy[2]:.2f} of {os.cpu_count()})", f">= {ASYNC_GOAL:g}x",
                   ratio >= ASYNC_GOAL)
    report.note(f"Scale-out: PostgreSQL + Redis ({REDIS_URL}) on the same {os.cpu_count()} cores as the load "
                f"generator; web: {rounds} rounds of {seconds:g} s at c=10 per process count (a fresh runweft each "
                f"round, warmed {WARM_UP_SECONDS:g} s at c=10), median; async: median of 3 batches of 100 runs per "
                "worker count. With 2 cores, 2 web processes compete with the load generator, PostgreSQL and the cluster for the same cores.")
