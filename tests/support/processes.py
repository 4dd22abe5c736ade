"""Real platform processes for tests (Daphne, a django-q2 cluster, a run executor) on the test database.

pytest-django creates the test database; a subprocess must use that same database, so it gets a
``DATABASE_URL`` pointing at it (the SQLite file, or the PostgreSQL test database) and otherwise
the same settings. Output goes to a log file under the data directory (never to an unread pipe,
which would block a chatty server once its buffer fills); the log's tail is shown when a process
fails to start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """A DATABASE_URL for the database the tests are using right now."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def django_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
           "PYTHONPATH": str(ROOT)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process(subprocess.Popen):
    """A subprocess whose output goes to ``log_path``."""

    log_path: Path

    def log_tail(self, size: int = 4000) -> str:
        with suppress(OSError):
            return self.log_path.read_text(errors="replace")[-size:]
        return ""


def start(args: list[str], *, name: str, new_session: bool = False, **env: str) -> Process:
    log_path = Path(settings.DATA_DIR) / f"test_{name}_{os.getpid()}_{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = Process(args, cwd=ROOT, env=django_env(**env), stdout=log, stderr=subprocess.STDOUT,
                       start_new_session=new_session)
    proc.log_path = log_path
    return proc


def stop(proc: subprocess.Popen[Any], *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL, a crash) the process and, when it leads one, its process group."""
    sig = signal.SIGKILL if kill else signal.SIGTERM
    with suppress(ProcessLookupError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
        proc.wait()


def wait_for_port(port: int, proc: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.log_tail()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    stop(proc, kill=True)
    raise RuntimeError(f"process did not listen on {port}:\n{proc.log_tail()}")


@contextmanager
def daphne(**env: str) -> Iterator[tuple[Process, str]]:
    """Daphne (HTTP + websockets) on a free port; yields the process and its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                 name="daphne", **{"WEFT_PUBLIC_URL": url, "WEFT_LOG_LEVEL": "WARNING", **env})
    try:
        wait_for_port(port, proc)
        yield proc, url
    finally:
        stop(proc)


def qcluster(workers: int = 2, **env: str) -> Process:
    """A django-q2 cluster in its own process group (``stop(proc, kill=True)`` kills every worker)."""
    return start([sys.executable, "manage.py", "qcluster"], name="qcluster", new_session=True,
                 **{"WEFT_Q_WORKERS": str(workers), "WEFT_LOG_LEVEL": "ERROR", **env})


def python_process(code: str, **env: str) -> Process:
    """``python -c code`` with Django set up on the test database."""
    return start([sys.executable, "-c", "import django; django.setup()\n" + code], name="python", **env)
