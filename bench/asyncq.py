"""Async runs: runs/s completed by one django-q2 cluster with 2 workers (``manage.py qcluster`` as
a subprocess), on SQLite and PostgreSQL; and parked runs cost no worker.

The Django-side helper starts the cluster, warms it, then submits batches of async runs (the
demo-like workflow) the way the API does (``run_create`` + ``async_task`` after commit) and
times them from submission until every run is final. Then it parks runs on a one-hour delay:
some through the real executor (``run_execute`` in the helper's own process, so the cluster is
not involved), the rest as copies of a parked run (its run row, node runs and wake schedule),
and measures the cluster's throughput again with all of them parked: workers that stay free give
the same runs/s (the ratio) and the parked runs stay untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

from bench import graphs
from bench.common import ROOT, Config, Report, django_json, fmt, median, pg_available, site

FINAL = ["succeeded", "failed", "stopped", "timeout"]


_CPU: list[float] = []  # cores busy on average during each batch (the whole machine, /proc/stat)


def _cpu() -> tuple[int, int]:
    """The machine's (busy, total) jiffies (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _cpu_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Cores busy on average between two readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total * (os.cpu_count() or 1), 2) if total else 0.0


def _submit_and_wait(fx: dict[str, Any], n: int, timeout: float = 300) -> float:
    """Runs/s for ``n`` async runs submitted at once, until all are final."""
    from django.db import transaction

    from runs.models import Run
    from runs.services import run_create
    from runs.taskqueue import run_enqueue

    start = time.perf_counter()
    cpu0 = _cpu()
    ids = []
    with transaction.atomic():
        for i in range(n):
            run = run_create(team=fx["team"], workflow=fx["workflow"], inputs={"order_id": f"B-{i}", "amount": i},
                             mode="async")
            run_enqueue(run.pk)
            ids.append(run.pk)
    deadline = time.monotonic() + timeout
    while True:
        done = Run.objects.filter(pk__in=ids, status__in=FINAL).count()
        if done == n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"async runs: only {done}/{n} finished in {timeout:.0f} s")
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    _CPU.append(_cpu_share(cpu0, _cpu()))
    failed = Run.objects.filter(pk__in=ids).exclude(status="succeeded").count()
    if failed:
        raise RuntimeError(f"async runs: {failed} did not succeed")
    return n / elapsed


def _park(fx: dict[str, Any], total: int, real: int) -> dict[str, Any]:
    """Park ``total`` runs: ``real`` through run_execute, the rest as copies of a parked one."""
    from django.db import transaction
    from django_q.models import Schedule

    from runs.executor import run_execute
    from runs.models import NodeRun, Run, RunEvent
    from runs.services import run_create

    start = time.perf_counter()
    last = None
    for _ in range(real):
        run = run_create(team=fx["team"], workflow=fx["workflow"], inputs={}, mode="async")
        last = run_execute(run.pk)
        if last is None or last.status != "waiting":
            raise RuntimeError(f"park: run ended {getattr(last, 'status', None)}")
    per_park_ms = (time.perf_counter() - start) / max(1, real) * 1e3
    assert last is not None
    template_run = {f.attname: getattr(last, f.attname) for f in Run._meta.concrete_fields}
    template_nodes = list(NodeRun.objects.filter(run_id=last.pk))
    template_events = list(RunEvent.objects.filter(run_id=last.pk))
    schedule = Schedule.objects.filter(name=f"wake:{last.pk}"[:100]).first()
    remaining = total - real
    batch = 500
    while remaining > 0:
        size = min(batch, remaining)
        runs, nodes, events, schedules = [], [], [], []
        for _ in range(size):
            clone = Run(**{**template_run, "id": uuid.uuid4(), "task_id": uuid.uuid4()})
            runs.append(clone)
            for row in template_nodes:
                nodes.append(NodeRun(**{**{f.attname: getattr(row, f.attname) for f in NodeRun._meta.concrete_fields},
                                        "id": uuid.uuid4(), "run_id": clone.pk}))
            for ev in template_events:
                events.append(RunEvent(**{**{f.attname: getattr(ev, f.attname) for f in RunEvent._meta.concrete_fields},
                                          "id": None, "run_id": clone.pk}))
            if schedule is not None:
                schedules.append(Schedule(name=f"wake:{clone.pk}"[:100], func=schedule.func, args=repr(str(clone.pk)),
                                          schedule_type=Schedule.ONCE, next_run=schedule.next_run, repeats=1))
        with transaction.atomic():
            Run.objects.bulk_create(runs)
            NodeRun.objects.bulk_create(nodes)
            RunEvent.objects.bulk_create(events)
            Schedule.objects.bulk_create(schedules)
        remaining -= size
    return {"per_park_ms": per_park_ms, "waiting": Run.objects.filter(status="waiting").count()}


def async_worker(n: int, repeats: int, parked: int, parked_real: int, workers: int = 2) -> dict[str, Any]:
    """Django side: throughput of a cluster of ``workers``, then again with ``parked`` runs parked."""
    from django.db import connection

    from bench.fixtures import team_with_workflow
    from runs.models import Run

    fx = team_with_workflow(graphs.demo_like(), name="Async")
    park_fx = team_with_workflow(graphs.parking(3600), name="Parking")
    log_path = os.path.join(os.environ["WEFT_DATA_DIR"], "qcluster.log")
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                               env={**os.environ, "WEFT_Q_WORKERS": str(workers)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            _submit_and_wait(fx, 4, timeout=60)  # the cluster is up and warm
        except RuntimeError as exc:
            log.flush()
            with open(log_path, "rb") as f:
                raise RuntimeError(f"{exc}; cluster log: {f.read()[-1500:].decode(errors='replace')}") from None
        base = [_submit_and_wait(fx, n) for _ in range(repeats)]
        result: dict[str, Any] = {"vendor": connection.vendor, "rps": median(base), "n": n,
                                  "cores_busy": median(_CPU[-repeats:])}
        if parked:
            park = _park(park_fx, parked, parked_real)
            with_parked = [_submit_and_wait(fx, n) for _ in range(repeats)]
            claims = Run.objects.filter(team=park_fx["team"]).exclude(status="waiting").count()
            result.update({"rps_parked": median(with_parked), "per_park_ms": park["per_park_ms"],
                           "waiting": park["waiting"], "parked_disturbed": claims})
        return result
    finally:
        cluster.terminate()
        try:
            cluster.wait(15)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()
        log.close()


def run(cfg: Config, report: Report) -> None:
    section = "Async (django-q2, 2 workers)"
    n = cfg.pick(100, 10)
    repeats = cfg.pick(3, 1)
    parked = cfg.pick(10_000, 100)
    parked_real = cfg.pick(500, 20)
    kinds = ["sqlite"] + (["postgres"] if pg_available() and not cfg.quick else [])
    if "postgres" not in kinds and not cfg.quick:
        report.note("PostgreSQL was not reachable: async figures on PostgreSQL are skipped.")
    for kind in kinds:
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        with site(kind) as s:
            r = django_json("bench.djside", ["asyncq.async_worker",
                                             f'{{"n": {n}, "repeats": {repeats}, "parked": {parked if kind == "sqlite" else 0}, '
                                             f'"parked_real": {parked_real}}}'], s.env, timeout=900)
        report.add(section, f"{label}: runs/s completed ({n} submitted at once)", fmt(r["rps"], "runs/s"))
        if "rps_parked" in r:
            ratio = r["rps_parked"] / r["rps"]
            report.add(section, f"{label}: runs/s with {r['waiting']:,} runs parked on a 1 h delay",
                       fmt(r["rps_parked"], "runs/s"))
            report.add(section, "parked runs cost no worker: runs/s with parked / without", f"{ratio:.2f}",
                       "~1.0 (>= 0.8)", ratio >= 0.8)
            report.add(section, "parked runs claimed or changed while parked", str(r["parked_disturbed"]), "0",
                       r["parked_disturbed"] == 0)
            report.add(section, "parking one run through run_execute (start -> delay parks)",
                       fmt(r["per_park_ms"], "ms", 2))
    report.note(f"Async: {parked_real:,} runs were parked through the real executor and copied (run row, node runs, "
                f"events, wake schedule) up to {parked:,}, to stay within the time budget; parked runs are measured "
                "on SQLite only.")
