"""The execution tier: a warm pool of executor processes, supervised by the process that owns it.

Tenant expressions and node logic never run in a process that serves HTTP or websockets. Each web
process (``daphne config.asgi:application``, however it was started) brings up its own pool at
ASGI start-up (``config.asgi``); each django-q2 worker supervises one executor of its own
(``runs.tasks.run_task``). The owner claims the run (the lease is in its name), hands the claimed
run to an idle executor over that executor's pipe (no queue, no poll) and waits; the executor
(``runs.executor_process``) runs the engine and sends back, over the same pipe, the run's committed
events while anyone here reads them (delivered to SSE listeners and the channel layer: ``runs.live``;
the hand-over says whether anyone does, and a reader that comes later sends "watch"; unread
events are only in the log), its status changes, and its end (with the final status).

Limits, per run (settings, README's environment table; docs/durable.md "Execution tier"):
- CPU time ``WEFT_EXECUTOR_CPU_SECONDS``: the watchdog reads the executor's CPU time; an
  ``RLIMIT_CPU`` set by the executor before each run is the backstop (SIGXCPU) when the watchdog
  itself is starved;
- wall time: the run's own deadline plus ``WEFT_EXECUTOR_GRACE_SECONDS`` (the engine ends a run at
  its deadline as ``timeout`` by itself; this catches an executor stuck in native code);
- memory ``WEFT_EXECUTOR_MEMORY_MB``: the watchdog reads the executor's resident size; an
  ``RLIMIT_AS`` above it is the backstop against an allocation too fast to watch.
A run over a limit has its executor killed and ends ``failed`` with code ``limit_exceeded``; an
executor that dies on its own (segfault, abort, OOM kill, SIGKILL) ends its run ``failed`` with
``executor_crashed``. Either way the run is never handed to another executor: the claim's fate is
written first (``Run.claim_fate``), then the run is ended, so a reaper that finds the lease
expired after the owner itself died still knows the claim crashed (``runs.reaper``). The dead
executor is replaced at once.

The pool keeps ``WEFT_EXECUTORS`` executors warm and grows to ``WEFT_EXECUTORS_MAX`` while every
executor is busy, one starting at a time (runs wait in order for the next free one); executors above
the warm number retire after ``IDLE_RETIRE_SECONDS`` idle. ``WEFT_EXECUTORS=0`` executes runs in the calling process
instead (tests and debugging only: no isolation).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from config import fastjson
from runs.executor import (
    heartbeats,
    run_claim,
    run_end_by_supervisor,
    run_execute,
    run_execute_in_thread,
    stop_forwarder_add,
)
from runs.live import events_publish, events_wanted, listen_hook_set
from runs.models import FINAL_STATUSES, Run, RunMode

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=models.Model)

ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_MAIN = "import django; django.setup(); from runs.executor_process import main; main()"
WATCH_SECONDS = 0.05
IDLE_RETIRE_SECONDS = 60.0
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

# Fields of the finished run the executor sends back, applied to the owner's Run object.
RUN_FIELDS = ("status", "outputs", "error", "total_steps", "event_seq", "worker", "claim_count")
RUN_TIMES = ("started_at", "finished_at", "heartbeat_at", "lease_expires_at", "wake_at")


def dumps(message: dict[str, Any]) -> bytes:
    """A pipe message (orjson, config.fastjson: rows carry datetimes and UUIDs)."""
    return fastjson.dumps(message)


def run_fields(run: Run) -> dict[str, Any]:
    data = {name: getattr(run, name) for name in RUN_FIELDS}
    data.update({name: (v.isoformat() if (v := getattr(run, name)) else None) for name in RUN_TIMES})
    return data


def run_apply(run: Run, data: dict[str, Any]) -> Run:
    for name in RUN_FIELDS:
        setattr(run, name, data[name])
    for name in RUN_TIMES:
        setattr(run, name, datetime.fromisoformat(data[name]) if data[name] else None)
    return run


def row_wire(obj: models.Model) -> dict[str, Any]:
    """A row as the owner holds it, for the pipe (``row_from_wire`` on the other side): the executor
    starts from the owner's claimed run and its team instead of reading them again."""
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def row_from_wire(model: type[M], data: dict[str, Any]) -> M:
    fields = model._meta.concrete_fields
    return model.from_db("default", [f.attname for f in fields], [f.to_python(data[f.attname]) for f in fields])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (``/proc/<pid>/stat``), None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_bytes().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Limits:
    cpu_seconds: float
    memory_bytes: int
    grace_seconds: float

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(cpu_seconds=float(settings.WEFT_EXECUTOR_CPU_SECONDS),
                   memory_bytes=int(settings.WEFT_EXECUTOR_MEMORY_MB) * 1024 * 1024,
                   grace_seconds=float(settings.WEFT_EXECUTOR_GRACE_SECONDS))


@dataclass
class Job:
    """One claimed run handed to the pool; ``done`` is set when it ended (or parked) or its executor died."""

    run: Run
    wall_deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None  # the run's fields as the executor (or the supervisor) left them
    outcome: str = ""  # "" (ended normally) | "limit_exceeded" | "executor_crashed"
    executor: Executor | None = None
    cpu_start: float = 0.0
    # Set by this process's heartbeats when a stop is requested (or the lease moved on); the
    # watchdog forwards it to the executor once.
    stop: threading.Event = field(default_factory=threading.Event)
    stop_sent: bool = False

    @property
    def key(self) -> str:
        return str(self.run.pk)


class Executor:
    """The owner's handle on one executor process: its pipe, its reader thread, its current job."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        parent, child = socket.socketpair()
        env = {**os.environ, "WEFT_EXECUTOR_FD": str(child.fileno()), "MALLOC_ARENA_MAX": "2",
               "WEFT_DB_CONN_MAX_AGE": os.environ.get("WEFT_DB_CONN_MAX_AGE", "600"),
               "WEFT_EXECUTOR_MEMORY_MB": str(settings.WEFT_EXECUTOR_MEMORY_MB)}
        self.proc = subprocess.Popen([sys.executable, "-c", EXECUTOR_MAIN], cwd=ROOT, env=env,
                                     pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        child.close()
        self.conn = Connection(parent.detach())
        self.send_lock = threading.Lock()
        self.ready = False
        self.dead = False
        self.job: Job | None = None
        self.kill_reason = ""
        self.idle_since = time.monotonic()
        self.runs = 0
        self.thread = threading.Thread(target=self.read, name=f"weft-executor-{self.proc.pid}", daemon=True)
        self.thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict[str, Any]) -> bool:
        try:
            with self.send_lock:
                self.conn.send_bytes(dumps(message))
            return True
        except OSError:
            return False

    def kill(self, reason: str) -> None:
        if not self.kill_reason:
            self.kill_reason = reason
        self.proc.send_signal(signal.SIGKILL)  # a no-op once the process has exited

    def read(self) -> None:
        while True:
            try:
                message = json.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break
            except ValueError:
                logger.error("executor %s sent garbage; replacing it", self.pid)
                self.kill("protocol")
                break
            kind = message.get("t")
            if kind == "events":
                try:
                    events_publish(run_id=message["run"], team_id=message["team"], events=message["events"],
                                   status=message.get("status"))
                except Exception:
                    logger.exception("delivering events of run %s failed", message.get("run"))
            elif kind == "done":
                self.pool.job_done(self, message.get("fields"))
            elif kind == "ready":
                self.pool.executor_ready(self)
        self.proc.wait()
        self.dead = True
        self.conn.close()
        self.pool.executor_died(self)


class Pool:
    """Warm executor processes of this process. ``run`` hands a claimed run over and waits for its end."""

    def __init__(self, *, warm: int, maximum: int, limits: Limits | None = None) -> None:
        self.warm = max(1, warm)
        self.maximum = max(self.warm, maximum)
        self.limits = limits or Limits.from_settings()
        self.lock = threading.Lock()
        self.executors: list[Executor] = []
        self.idle: deque[Executor] = deque()
        self.queue: deque[Job] = deque()
        self.jobs: dict[str, Job] = {}
        self.closed = False
        self.crashes = 0
        self.startup_failures = 0
        with self.lock:
            for _ in range(self.warm):
                self._spawn()
        self.watchdog = threading.Thread(target=self.watch, name="weft-executor-watchdog", daemon=True)
        self.watchdog.start()

    # Lifecycle of executors (called with the lock held unless said otherwise) ------------------

    def _spawn(self) -> Executor | None:
        if self.closed:
            return None
        try:
            executor = Executor(self)
        except OSError:
            logger.exception("could not start an executor process")
            return None
        self.executors.append(executor)
        return executor

    def _assign(self) -> None:
        while self.queue and self.idle:
            executor = self.idle.popleft()
            if executor.dead or executor.kill_reason:
                continue
            job = self.queue.popleft()
            job.executor = executor
            executor.job = job
            executor.runs += 1
            job.cpu_start = cpu_seconds(executor.pid) or 0.0
            # A streaming run is followed by the request that started it (it subscribes right after the hand-over).
            watch = job.run.mode == RunMode.STREAMING or events_wanted(job.key)
            message = {"t": "run", "run": job.key, "cpu": self.limits.cpu_seconds, "watch": watch,
                       "row": row_wire(job.run), "team": row_wire(job.run.team)}
            if not executor.send(message):
                executor.kill("pipe")  # its death ends the job (executor_crashed), never a second executor
        # One executor starting at a time: starting one costs about a second of CPU, and a burst that
        # starts many at once on a small machine slows every run down more than waiting for the next
        # free executor does. Growth goes on while runs keep waiting.
        live = [e for e in self.executors if not e.dead]
        if self.queue and len(live) < self.maximum and all(e.ready for e in live):
            self._spawn()

    def executor_ready(self, executor: Executor) -> None:
        with self.lock:
            executor.ready = True
            executor.idle_since = time.monotonic()
            self.idle.append(executor)
            self._assign()

    def events_watch(self, run_id: Any) -> None:
        """Someone here started reading the run's events: its executor sends them from now on."""
        with self.lock:
            job = self.jobs.get(str(run_id))
            executor = job.executor if job is not None else None
        if executor is not None:  # not handed over yet: the hand-over asks (events_wanted)
            executor.send({"t": "watch", "run": str(run_id)})

    def job_done(self, executor: Executor, fields: dict[str, Any] | None) -> None:
        with self.lock:
            job = executor.job
            executor.job = None
            if job is None:
                return
            job.result = fields
            self.jobs.pop(job.key, None)
            heartbeats.remove(job.run.pk)
            executor.idle_since = time.monotonic()
            if not executor.kill_reason:
                self.idle.append(executor)
            self._assign()
        if fields is not None and fields["status"] in FINAL_STATUSES:  # an executor leaves the final status to "done"
            events_publish(run_id=job.key, team_id=job.run.team_id, events=[], status=fields["status"])
        job.done.set()

    def executor_died(self, executor: Executor) -> None:
        """An executor exited: end its run (limit or crash; never re-handed), replace the executor."""
        with self.lock:
            if executor in self.executors:
                self.executors.remove(executor)
            if executor in self.idle:
                self.idle.remove(executor)
            job = executor.job
            executor.job = None
            if job is not None:
                self.jobs.pop(job.key, None)
            if executor.ready:
                self.startup_failures = 0
            elif not self.closed:
                self.startup_failures += 1
            failed_start = self.startup_failures >= 3
            stranded = list(self.queue) if failed_start else []
            if failed_start:
                self.queue.clear()
                logger.error("executor processes fail to start (exit status %s); see their output above",
                             executor.proc.returncode)
        for waiting in stranded:
            self.jobs.pop(waiting.key, None)
            self._end(waiting, "crashed", {"code": "executor_unavailable",
                                           "message": "no executor process could be started"})
        if job is not None:
            self.crashes += 1
            returncode = executor.proc.returncode
            if executor.kill_reason in ("cpu", "wall", "memory") or returncode == -signal.SIGXCPU:
                reason = executor.kill_reason or "cpu"
                job.outcome = "limit_exceeded"
                message = {
                    "cpu": f"the run used more than {self.limits.cpu_seconds:g} s of CPU time",
                    "wall": "the run's executor was still busy past the run's deadline",
                    "memory": f"the run used more than {self.limits.memory_bytes // (1024 * 1024)} MB of memory",
                }[reason]
                error = {"code": "limit_exceeded", "message": message, "limit": reason}
            else:
                job.outcome = "executor_crashed"
                what = (f"signal {signal.Signals(-returncode).name}" if returncode is not None and returncode < 0
                        else f"exit status {returncode}")
                error = {"code": "executor_crashed", "message": f"the process executing the run died ({what})"}
            logger.warning("run %s: executor %s %s: %s", job.key, executor.pid, job.outcome, error["message"])
            self._end(job, "limit" if job.outcome == "limit_exceeded" else "crashed", error)
        with self.lock:
            if not self.closed and self.startup_failures < 3 and (len(self.executors) < self.warm or self.queue):
                self._spawn()
                self._assign()

    def _end(self, job: Job, fate: str, error: dict[str, Any]) -> None:
        heartbeats.remove(job.run.pk)
        try:
            ended = run_end_by_supervisor(run=job.run, fate=fate, error=error)
            job.result = run_fields(ended) if ended is not None else None
        except Exception:
            logger.exception("run %s: recording the end of a dead executor's run failed", job.key)
        job.done.set()

    # Waiting, watching ------------------------------------------------------------------------

    def submit(self, run: Run) -> Job:
        now = time.monotonic()
        remaining = (run.deadline - timezone.now()).total_seconds() if run.deadline else 3600.0
        job = Job(run=run, wall_deadline=now + max(remaining, 0.0) + self.limits.grace_seconds)
        with self.lock:
            if self.closed:
                raise RuntimeError("the executor pool is shut down")
            self.jobs[job.key] = job
            self.queue.append(job)
            # The owner renews the lease while the run waits for an executor and while it executes:
            # an executor stuck in native code (the GIL held) cannot, and an expired lease would hand
            # the run to another worker. The watchdog ends a stuck executor instead.
            heartbeats.add(run.pk, run.claim_count, job.stop, run.worker)
            self._assign()
        return job

    def run(self, run: Run) -> Run:
        """Hand a claimed run to an executor and wait for its end (or park); the run, updated."""
        job = self.submit(run)
        job.done.wait()
        if job.result is None:
            run.refresh_from_db()
            return run
        return run_apply(run, job.result)

    def stop(self, run_id: Any) -> None:
        """Forward a stop to the executor of a run of this pool (the executor also polls the flag)."""
        with self.lock:
            job = self.jobs.get(str(run_id))
            executor = job.executor if job is not None else None
        if executor is not None:
            executor.send({"t": "stop", "run": str(run_id)})

    def watch(self) -> None:
        while not self.closed:
            time.sleep(WATCH_SECONDS)
            try:
                self.watch_once()
            except Exception:
                logger.exception("executor watchdog pass failed")

    def watch_once(self) -> None:
        now = time.monotonic()
        with self.lock:
            busy = [(e, e.job) for e in self.executors if e.job is not None and not e.dead]
            retire = [e for e in self.idle if now - e.idle_since > IDLE_RETIRE_SECONDS]
            retire = retire[:max(0, len([e for e in self.executors if not e.dead]) - self.warm)]
            for executor in retire:
                self.idle.remove(executor)
                self.executors.remove(executor)
        for executor in retire:
            executor.send({"t": "exit"})
        for executor, job in busy:
            if job is None or executor.kill_reason:
                continue
            if job.stop.is_set() and not job.stop_sent:
                job.stop_sent = True
                executor.send({"t": "stop", "run": job.key})
            used = cpu_seconds(executor.pid)
            if used is not None and used - job.cpu_start > self.limits.cpu_seconds:
                executor.kill("cpu")
            elif now > job.wall_deadline:
                executor.kill("wall")
            elif (rss := rss_bytes(executor.pid)) is not None and rss > self.limits.memory_bytes:
                executor.kill("memory")

    def close(self) -> None:
        with self.lock:
            self.closed = True
            executors = list(self.executors)
        for executor in executors:
            executor.send({"t": "exit"})
        for executor in executors:
            try:
                executor.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                executor.kill("shutdown")


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool_enabled() -> bool:
    return int(settings.WEFT_EXECUTORS) > 0


def pool_get(*, warm: int | None = None, maximum: int | None = None) -> Pool:
    """This process's pool, started on first use (``config.asgi`` starts it with the web process)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = Pool(warm=warm if warm is not None else int(settings.WEFT_EXECUTORS),
                         maximum=maximum if maximum is not None else int(settings.WEFT_EXECUTORS_MAX))
            stop_forwarder_add(_stop_forward)
            listen_hook_set(_watch)
        return _pool


def pool_start() -> None:
    """Bring this process's pool up now (web processes, at ASGI start-up), unless disabled."""
    if pool_enabled():
        pool_get()


def run_blocking(run: Run) -> Run:
    """Execute a run this process recorded claimed, and return it as it ended (or parked): in an
    executor of the pool, or here when the pool is disabled (``WEFT_EXECUTORS=0``)."""
    if pool_enabled():
        return pool_get().run(run)
    return run_execute(run.pk, claimed=run) or Run.objects.get(pk=run.pk)


def run_hand_over(run: Run) -> None:
    """Start a run this process recorded claimed without waiting for it (streaming, test panel):
    its events reach this process's listeners through the pool's pipe."""
    if pool_enabled():
        pool_get().submit(run)
    else:
        run_execute_in_thread(run.pk, claimed=run)


def run_in_worker(run_id: Any) -> Run | None:
    """A django-q2 worker's run: claimed by the worker (the lease is in its name), executed in the
    worker's one executor process, so a run that crashes or overruns it never takes the worker down
    (nor is it claimed again: its end is written by the worker). None when not claimable."""
    if not pool_enabled():
        return run_execute(run_id)
    run = run_claim(run_id)
    if run is None:
        return None
    return pool_get(warm=1, maximum=1).run(run)


def _watch(run_id: Any) -> None:
    if _pool is not None:
        _pool.events_watch(run_id)


def _stop_forward(run_id: Any) -> None:
    if _pool is not None:
        _pool.stop(run_id)


def _forget_pool_after_fork() -> None:
    # A forked child (django-q2 forks its workers) owns none of its parent's executors.
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool_after_fork)
