"""An executor process of the execution tier (started by ``runs.pool``: ``main`` after ``django.setup()``).

Sets Django up once (warm: imports, database connection, compiled versions cached), then executes
the claimed runs its owner hands it over the inherited socket (``WEFT_EXECUTOR_FD``: the run's row
and its team's as the owner claimed them, so nothing is read again; versions are immutable and
cached here), one at a time, with the ordinary executor (``runs.executor.run_execute``). Committed events and the run's end
go back over the same socket; nobody listens in this process.

Its own limits: ``RLIMIT_CORE`` 0, an ``RLIMIT_AS`` backstop above ``WEFT_EXECUTOR_MEMORY_MB`` (the
owner's watchdog enforces the limit itself from the resident size), and before each run an
``RLIMIT_CPU`` soft limit of the CPU used so far plus the run's budget plus a margin (the owner's
watchdog normally kills first; SIGXCPU is the backstop). It exits when its owner goes away (EOF on
the socket, or a new parent process id) and after a run that took its memory past the limit.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from django.db import close_old_connections, connection
from django.utils import timezone

from accounts.models import Team
from config.gctune import gc_tune
from runs import live
from runs.executor import run_execute, stop_signal_local
from runs.models import FINAL_STATUSES, Run, RunStatus
from runs.pool import dumps, row_from_wire, run_fields
from runs.versions import version_get
from workflows.engine.graph import compile_graph
from workflows.engine.ports import RunContext
from workflows.engine.scheduler import run_graph

logger = logging.getLogger("runs.executor_process")


def _limit_memory(memory_mb: int) -> None:
    vm_kib = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                vm_kib = int(line.split()[1])
    backstop = vm_kib * 1024 + 2 * memory_mb * 1024 * 1024 + 512 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (backstop, backstop))


def _limit_cpu(budget: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + budget + 2) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


WARM_UP_GRAPH = {
    "inputs": {"name": {"type": "string"}}, "outputs": {},
    "nodes": [{"id": "start", "type": "start"},
              {"id": "t", "type": "transform", "config": {"mapping": {"v": "{{ size(inputs.name) + 1 }}", "p": "$.x"}}},
              {"id": "end", "type": "end", "config": {"outputs": {"v": "{{ t.v }}"}}}],
    "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
}


class _NoHost:
    def load(self) -> list[Any]:
        return []

    def commit(self, records: list[Any], events: list[Any], *, last: bool = False) -> None:
        return None


def _warm_up() -> None:
    """Before saying ready: what every first run would otherwise pay (lazy imports, the CEL
    runtime, the database connection), so that a fresh executor's first run is as fast as any."""
    try:
        run_graph(compile_graph(WARM_UP_GRAPH), RunContext(run_id="warm-up", inputs={"name": "x"},
                                                           business_time=timezone.now(), host=_NoHost()))
        connection.ensure_connection()
    except Exception:
        logger.exception("executor warm-up failed (the first run will be slower)")


def main() -> None:
    conn = Connection(int(os.environ["WEFT_EXECUTOR_FD"]))
    parent = os.getppid()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory_mb = int(os.environ.get("WEFT_EXECUTOR_MEMORY_MB", "512"))
    _limit_memory(memory_mb)
    send_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        data = dumps(message)
        with send_lock:
            conn.send_bytes(data)

    watched: set[str] = set()  # runs whose events someone in the owner reads ("watch")

    def forward(run_id: Any, team_id: Any, events: live.Events, status: str | None) -> None:
        # Events only while someone reads them (the owner says so: at hand-over, or "watch" when a
        # reader comes later; meanwhile the log has them). A final status rides on "done".
        key = str(run_id)
        final = status in FINAL_STATUSES
        if key in watched:
            send({"t": "events", "run": key, "team": str(team_id), "events": events() if callable(events) else events,
                  "status": None if final else status})
        elif status is not None and not final:
            send({"t": "events", "run": key, "team": str(team_id), "events": [], "status": status})

    live.forward_set(forward)
    jobs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                message = json.loads(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                os._exit(0)  # the owner went away: so does its executor (its leases run out)
            if message.get("t") == "stop":
                stop_signal_local(message["run"])
            elif message.get("t") == "watch":
                watched.add(message["run"])
            elif message.get("t") == "exit":
                jobs.put(None)
            else:
                jobs.put(message)

    def orphaned() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=read, name="weft-executor-pipe", daemon=True).start()
    threading.Thread(target=orphaned, name="weft-executor-parent", daemon=True).start()
    _warm_up()
    gc_tune()  # after the warm-up: what it loaded is frozen too (config.gctune)
    send({"t": "ready", "pid": os.getpid()})
    while True:
        message = jobs.get()
        if message is None:
            break
        fields = None
        try:
            run = row_from_wire(Run, message["row"])
            run.team = row_from_wire(Team, message["team"])
            run.version = version_get(run.version_id)
            if run.status == RunStatus.RUNNING:
                _limit_cpu(float(message.get("cpu", 60)))
                if message.get("watch"):
                    watched.add(message["run"])
                finished = run_execute(run.pk, claimed=run)
                fields = run_fields(finished) if finished is not None else None
        except BaseException:
            # Not the engine's failure (that is a failed run): this process is in a bad state. Its
            # death ends the run executor_crashed (runs.pool), and a fresh executor replaces it.
            logger.exception("run %s: the executor failed", message.get("run"))
            close_old_connections()
            os._exit(70)
        watched.discard(message["run"])
        send({"t": "done", "run": message["run"], "fields": fields})
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > memory_mb * 1024:
            break  # memory grew past the limit during the run: a fresh executor takes over
    sys.exit(0)
