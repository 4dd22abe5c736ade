"""The engine with persistence: the chain recorded through ``runs.executor.run_execute``.

On SQLite (a temporary file in a fresh data dir) and PostgreSQL (a temporary database, skipped
with a note when the server is not reachable). In the same subprocess and on the same compiled
graph the engine also runs on a no-op host, so the persistence cost per node is a side-by-side
difference. The SQLite run is profiled with cProfile (top frames in the document).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from typing import Any

from bench import graphs
from bench.common import Config, Report, django_json, fmt, median, pg_available, site

GOAL_MS = 1.0


def _listeners_only(*, run_id: Any, team_id: Any, events: list[dict[str, Any]], status: str | None = None) -> None:
    """What-if stand-in for ``runs.live.events_publish``: in-process listeners only, no channel layer."""
    from runs import live

    with live._lock:
        targets = list(live._listeners.get(str(run_id), ()))
    for q in targets:
        for event in events:
            q.put(event)


def chain_worker(n: int, repeats: int, profile: bool = False) -> dict[str, Any]:
    """Django side: per-run times of the chain through run_execute, the same with the channel-layer
    publish stubbed out (a what-if, interleaved), and on a no-op host."""
    from django.db import connection

    import runs.executor as executor
    from bench.engine import run_once
    from bench.fixtures import team_with_workflow, timed_run
    from runs.versions import compiled_version

    fx = team_with_workflow(graphs.chain(n), name="Chain")
    timed_run(fx, {})  # warm: compiled version cache, connections, statements
    executes, creates, memory, whatif = [], [], [], []
    compiled = compiled_version(version=fx["workflow"].active_version)
    publish = executor.events_publish
    for i in range(repeats):
        create_s, execute_s, _ = timed_run(fx, {})
        creates.append(create_s)
        executes.append(execute_s)
        memory.append(run_once(compiled, f"mem-{i}"))
        executor.events_publish = _listeners_only
        try:
            whatif.append(timed_run(fx, {})[1])
        finally:
            executor.events_publish = publish
    result: dict[str, Any] = {"nodes": len(compiled.nodes), "execute_s": median(executes), "whatif_s": median(whatif),
                              "create_s": median(creates), "memory_s": median(memory), "vendor": connection.vendor}
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        timed_run(fx, {})
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(18)
        result["profile"] = out.getvalue()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(18)
        result["profile_cum"] = out.getvalue()
    return result


def run(cfg: Config, report: Report) -> None:
    section = "Engine + persistence"
    n = cfg.pick(1000, 50)
    repeats = cfg.pick(5, 2)
    kinds = ["sqlite"] + (["postgres"] if pg_available() and not cfg.quick else [])
    if "postgres" not in kinds and not cfg.quick:
        report.note("PostgreSQL was not reachable at 127.0.0.1:5432: its persistence figures are skipped.")
    for kind in kinds:
        started = time.perf_counter()
        with site(kind) as s:
            r = django_json("bench.djside", ["persist.chain_worker",
                                             f'{{"n": {n}, "repeats": {repeats}, "profile": {str(kind == "sqlite").lower()}}}'],
                            s.env)
        nodes = r["nodes"]
        per_node_ms = r["execute_s"] / nodes * 1e3
        mem_us = r["memory_s"] / nodes * 1e6
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        goal = f"< {GOAL_MS:g} ms" if kind == "sqlite" else ""
        report.add(section, f"{nodes - 2}-node chain via run_execute, {label}: per node", fmt(per_node_ms, "ms", 2),
                   goal, per_node_ms < GOAL_MS if kind == "sqlite" else None)
        report.add(section, f"{label}: persistence cost per node (minus the same run on a no-op host)",
                   fmt(per_node_ms - mem_us / 1e3, "ms", 2))
        report.add(section, f"{label}: recorded run / in-memory run", f"{r['execute_s'] / r['memory_s']:.1f}x")
        report.add(section, f"{label}: what-if, channel-layer publish stubbed (not the product): per node",
                   f"{fmt(r['whatif_s'] / nodes * 1e3, 'ms', 2)} ({r['whatif_s'] / r['execute_s']:.2f}x)")
        report.add(section, f"{label}: run_create (validate inputs, insert run)", fmt(r["create_s"] * 1e3, "ms", 2))
        if "profile" in r:
            report.profiles[f"run_execute of the {nodes - 2}-node chain on SQLite (cProfile, by own time)"] = r["profile"]
            report.profiles[f"run_execute of the {nodes - 2}-node chain on SQLite (cProfile, cumulative)"] = r["profile_cum"]
        print(f"[bench]   persist {kind}: {time.perf_counter() - started:.1f} s", flush=True,
              file=sys.stderr)
