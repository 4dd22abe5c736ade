"""The engine alone: ``run_graph`` on a no-op host (no database, no Django).

For a chain of transforms and a fan-out with a join it reports microseconds per node, total and
excluding the nodes' own work. The nodes' own work is measured separately on the same configs:
each node type's ``run`` is called with a context built from the run's real outputs (its
``resolve`` evaluates templates exactly as the scheduler's does), and the sum is subtracted.
What is left is the engine: readiness, scopes, receipt tokens, resolving configs for the record,
records and events.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from datetime import UTC, datetime
from typing import Any

from bench import graphs
from bench.common import BENCH_BUDGETS, Config, Report, fmt, median
from workflows.engine.graph import CompiledGraph, compile_graph, validate_inputs
from workflows.engine.limits import Limits
from workflows.engine.nodes.base import NodeContext
from workflows.engine.ports import EngineEvent, NodeRecord, RunContext
from workflows.engine.scheduler import receipt_token, run_graph
from workflows.engine.templates import compile_expr, evaluate
from workflows.engine.values import RunValues, resolve_value

BUSINESS_TIME = datetime(2026, 1, 1, tzinfo=UTC)
OVERHEAD_GOAL_US = 20.0
TOTAL_GOAL_US = 100.0


class NullHost:
    """Loads nothing, persists nothing; keeps the last step's records so outputs can be read."""

    def __init__(self) -> None:
        self.outputs: dict[str, Any] = {}
        self.keep = False

    def load(self) -> list[NodeRecord]:
        return []

    def commit(self, records: list[NodeRecord], events: list[EngineEvent], *, last: bool = False) -> None:
        if self.keep:
            for record in records:
                if record.status == "succeeded":
                    self.outputs[record.node_id] = record.output


# The graph-size budget of the bench's Django processes (bench.common.BENCH_BUDGETS), here too.
BENCH_LIMITS = Limits(graph_nodes=int(BENCH_BUDGETS["WEFT_MAX_GRAPH_NODES"]))


def _ctx(compiled: CompiledGraph, host: NullHost, run_id: str) -> RunContext:
    return RunContext(run_id=run_id, inputs=validate_inputs(compiled, {}), business_time=BUSINESS_TIME, host=host,
                      token_secret=b"bench-secret")


def run_once(compiled: CompiledGraph, run_id: str = "bench-run") -> float:
    """CPU seconds of this thread for one ``run_graph`` of ``compiled`` on a no-op host (inline nodes
    run on the calling thread, so this is the whole run; other processes' load does not inflate it)."""
    host = NullHost()
    ctx = _ctx(compiled, host, run_id)
    start = time.thread_time()
    outcome = run_graph(compiled, ctx)
    elapsed = time.thread_time() - start
    if outcome.status != "succeeded":
        raise RuntimeError(f"engine bench run ended {outcome.status}: {outcome.error}")
    return elapsed


def node_work_once(compiled: CompiledGraph) -> float:
    """Seconds the node types' own ``run`` take for every node of one run (same configs, same data)."""
    host = NullHost()
    host.keep = True
    ctx = _ctx(compiled, host, "bench-work")
    run_graph(compiled, ctx)
    values = RunValues(ctx.params, ctx.business_time, ctx.tz)
    scope: dict[str, Any] = {"inputs": ctx.inputs, "params": values.cel_params,
                             "run": {"id": ctx.run_id, "business_time": BUSINESS_TIME.isoformat(),
                                     "started_at": BUSINESS_TIME.isoformat()},
                             **host.outputs}
    contexts = []
    for node_id in compiled.order:
        node = compiled.nodes[node_id]
        preds = compiled.preds[node_id]
        upstream = ({p: host.outputs.get(p) for p in preds} if len(preds) > 1
                    else host.outputs.get(preds[0]) if preds else None)

        def resolve(value: Any, path: list[Any] | None = None, node: Any = node) -> Any:
            return resolve_value(value, scope, values, node.static_ids, list(path or []))

        contexts.append((node.node_type, NodeContext(
            run_id=ctx.run_id, node_id=node.id, node_type=node.type, config=node.config, scope=scope,
            receipt_token=receipt_token(b"bench-secret", ctx.run_id, node.id), attempt=1, resolve=resolve,
            evaluate=lambda expr, names: evaluate(compile_expr(expr), names), wait=lambda s, st=None: None,
            emit=lambda t, d: None, services=None, upstream=upstream, key=node.id, title=node.title)))
    start = time.thread_time()
    for node_type, nctx in contexts:
        node_type.run(nctx)
    return time.thread_time() - start


def profile_text(compiled: CompiledGraph, limit: int = 18) -> str:
    """cProfile of one run, top frames by own time."""
    profiler = cProfile.Profile()
    host = NullHost()
    ctx = _ctx(compiled, host, "bench-profile")
    profiler.enable()
    run_graph(compiled, ctx)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def measure(compiled: CompiledGraph, repeats: int) -> dict[str, float]:
    nodes = len(compiled.nodes)
    run_once(compiled)  # warm caches (compiled CEL, JSONPath)
    node_work_once(compiled)
    totals = [run_once(compiled, f"run-{i}") for i in range(repeats)]
    works = [node_work_once(compiled) for _ in range(repeats)]
    total_us = median(totals) / nodes * 1e6
    work_us = median(works) / nodes * 1e6
    return {"nodes": nodes, "total_us": total_us, "work_us": work_us, "overhead_us": total_us - work_us,
            "run_ms": median(totals) * 1e3}


def run(cfg: Config, report: Report) -> None:
    section = "Engine alone (no database)"
    n = cfg.pick(1000, 100)
    width = cfg.pick(100, 20)
    repeats = cfg.pick(7, 3)
    start = time.perf_counter()
    chain = compile_graph(graphs.chain(n), limits=BENCH_LIMITS)
    compile_ms = (time.perf_counter() - start) * 1e3
    fan = compile_graph(graphs.fanout(width))
    for label, compiled in ((f"{n}-node chain", chain), (f"{width}-wide fan-out + join", fan)):
        m = measure(compiled, repeats)
        report.add(section, f"{label}: whole run, per node", fmt(m["total_us"], "µs"), f"< {TOTAL_GOAL_US:g} µs",
                   m["total_us"] < TOTAL_GOAL_US)
        report.add(section, f"{label}: nodes' own work, per node", fmt(m["work_us"], "µs"))
        report.add(section, f"{label}: engine overhead, per node", fmt(m["overhead_us"], "µs"),
                   f"< {OVERHEAD_GOAL_US:g} µs", m["overhead_us"] < OVERHEAD_GOAL_US)
        report.add(section, f"{label}: engine overhead / whole run", f"{m['overhead_us'] / m['total_us']:.2f}")
    report.add(section, f"compile_graph of the {n}-node chain (once per version, cached)", fmt(compile_ms, "ms"))
    report.note("Engine alone: CPU time of the running thread (time.thread_time), median of "
                f"{repeats} runs after a warm-up; the nodes' own work is timed the same way and subtracted.")
    report.profiles[f"Engine alone, {n}-node chain (cProfile, top frames by own time)"] = profile_text(chain)
