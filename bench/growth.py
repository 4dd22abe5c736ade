"""How cost grows: per-run time (``run_create`` + ``run_execute`` on SQLite) for chains of 10, 100
and 1,000 nodes, and for a start -> transform -> end run carrying inputs of 1 KB, 100 KB and 1 MB.

For the node counts the same compiled graph also runs on a no-op host in the same process, so the
engine's share is visible next to the recorded run.
"""

from __future__ import annotations

import time
from typing import Any

from bench import graphs
from bench.common import Config, Report, django_json, fmt, median, site


def growth_worker(node_counts: list[int], sizes: list[int], repeats: int) -> dict[str, Any]:
    """Django side: median per-run seconds for each node count and each input size."""
    from bench.engine import run_once
    from bench.fixtures import team_with_workflow, timed_run
    from runs.versions import compiled_version

    out: dict[str, Any] = {"nodes": {}, "sizes": {}}
    for count in node_counts:
        fx = team_with_workflow(graphs.chain(count - 2), name=f"Chain {count}")
        timed_run(fx, {})
        compiled = compiled_version(version=fx["workflow"].active_version)
        totals, memory = [], []
        for i in range(repeats):
            create_s, execute_s, _ = timed_run(fx, {})
            totals.append(create_s + execute_s)
            memory.append(run_once(compiled, f"g-{i}"))
        out["nodes"][str(count)] = {"run_s": median(totals), "memory_s": median(memory)}
    fx = team_with_workflow(graphs.passthrough(), name="Passthrough")
    for size in sizes:
        data = ("0123456789abcdef" * (size // 16 + 1))[:size]
        timed_run(fx, {"data": data})
        totals = []
        for _ in range(repeats):
            create_s, execute_s, run = timed_run(fx, {"data": data})
            totals.append(create_s + execute_s)
            if run.outputs.get("size") != size:
                raise RuntimeError(f"passthrough: size {run.outputs} != {size}")
        out["sizes"][str(size)] = {"run_s": median(totals)}
    return out


def _size_label(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def run(cfg: Config, report: Report) -> None:
    section = "Growth (SQLite, run_create + run_execute)"
    node_counts = cfg.pick([10, 100, 1000], [10, 50])
    sizes = cfg.pick([1024, 100 * 1024, 1024 * 1024], [1024, 100 * 1024])
    repeats = cfg.pick(3, 2)
    started = time.perf_counter()
    with site("sqlite") as s:
        r = django_json("bench.djside", ["growth.growth_worker",
                                         f'{{"node_counts": {node_counts}, "sizes": {sizes}, "repeats": {repeats}}}'],
                        s.env)
    for count in node_counts:
        m = r["nodes"][str(count)]
        report.add(section, f"{count:,} nodes: per run (per node)",
                   f"{fmt(m['run_s'] * 1e3, 'ms')} ({fmt(m['run_s'] / count * 1e3, 'ms', 2)})")
        report.add(section, f"{count:,} nodes: same graph on a no-op host, per run",
                   f"{fmt(m['memory_s'] * 1e3, 'ms', 2)}")
    base = r["sizes"][str(sizes[0])]["run_s"]
    for size in sizes:
        m = r["sizes"][str(size)]
        report.add(section, f"input of {_size_label(size)} (start -> transform -> end): per run",
                   f"{fmt(m['run_s'] * 1e3, 'ms', 2)} ({m['run_s'] / base:.1f}x the 1 KB run)")
    report.note(f"Growth: {repeats} runs per size after a warm-up run; took {time.perf_counter() - started:.0f} s.")
