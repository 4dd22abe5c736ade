"""Shared pieces of the benchmarks: results, statistics, the machine's description, and temporary
sites (a fresh data dir with a migrated SQLite file, or a temporary PostgreSQL database) that
Django-side helpers run against in subprocesses.

The orchestrator (``bench.run``) never imports Django: every database-backed measurement runs in
a subprocess with its own ``DATABASE_URL``/``WEFT_DATA_DIR`` and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@dataclass
class Config:
    """What the whole run uses: quick (CI smoke) or full sizes."""

    quick: bool = False
    repeats: int = 5
    only: set[str] = field(default_factory=set)

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the results table."""

    section: str
    name: str
    value: str
    goal: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "**missed**")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    side_by_side: str = ""  # the n8n comparison table (bench.peer), shown first

    def add(self, section: str, name: str, value: str, goal: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(section, name, value, goal, met))

    def note(self, text: str) -> None:
        self.notes.append(text)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def fmt(value: float, unit: str = "", digits: int = 1) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        digits = 0
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


# -- the machine ---------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def pg_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])
    except Exception:
        return None


def machine() -> dict[str, str]:
    import sqlite3

    import django

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "Memory": _memory(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Django": django.get_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": pg_version() or "not reachable",
        "Load average at start": ", ".join(f"{x:.2f}" for x in load),
    }


# -- temporary sites -----------------------------------------------------------------------------
@dataclass
class Site:
    """A migrated database and a data dir; ``env`` runs Django against it."""

    kind: str  # sqlite | postgres
    data_dir: Path
    database_url: str
    env: dict[str, str]


# Budgets (README "Environment") raised for the benchmarks, in every Django process they start (and
# in the engine benchmark's ``Limits``): the 1,000-node chains (engine, persist, growth) and the 1 MB
# input of the growth benchmark, sized so that figures compare with earlier runs, are past the
# product's defaults (WEFT_MAX_GRAPH_NODES 500; WEFT_NODE_MAX_OUTPUT_BYTES 1 MiB, which the growth
# workflow's copy of a 1 MiB input crosses by its few bytes of JSON around it).
BENCH_BUDGETS = {"WEFT_MAX_GRAPH_NODES": "1100", "WEFT_NODE_MAX_OUTPUT_BYTES": str(2 * 1024 * 1024)}


def base_env(data_dir: Path, database_url: str, settings: str = "config.settings") -> dict[str, str]:
    env = {**os.environ, **BENCH_BUDGETS, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(ROOT),
           "WEFT_DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
           # Benchmarks measure throughput; rate limits would refuse the load on purpose.
           "WEFT_RATE_LIMIT_PER_MINUTE": "0", "WEFT_TEAM_RATE_LIMIT_PER_MINUTE": "0",
           "WEFT_LOG_LEVEL": "ERROR", "WEFT_Q_LOG_LEVEL": "ERROR", "DEBUG": "0",
           "WEFT_LOCAL_KEYS": "1",  # keys generated in the bench's data dir unless the environment has them
           "WEFT_TEST_DB_SUFFIX": f"bench{os.getpid()}"}
    env.pop("REDIS_URL", None)
    return env


def pg_available() -> bool:
    return pg_version() is not None


_sqlite_template: list[Path] = []


def _migrated_sqlite() -> Path:
    """A migrated SQLite file, made once per benchmark process and copied for every site."""
    if not _sqlite_template:
        template_dir = Path(tempfile.mkdtemp(prefix="weft-bench-template-"))
        path = template_dir / "weft.sqlite3"
        env = base_env(template_dir, f"sqlite:///{path}")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        import atexit

        atexit.register(shutil.rmtree, template_dir, True)
        _sqlite_template.append(path)
    return _sqlite_template[0]


@contextmanager
def site(kind: str = "sqlite") -> Iterator[Site]:
    """A fresh data dir and database, migrated; removed afterwards. A SQLite site is a copy of a
    file migrated once per benchmark process (the migrating process has closed it: no WAL left)."""
    data_dir = Path(tempfile.mkdtemp(prefix="weft-bench-"))
    db_name = ""
    try:
        if kind == "sqlite":
            url = f"sqlite:///{data_dir / 'weft.sqlite3'}"
            shutil.copyfile(_migrated_sqlite(), data_dir / "weft.sqlite3")
            yield Site(kind, data_dir, url, base_env(data_dir, url))
            return
        else:
            import psycopg

            db_name = f"weft_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db_name}"')
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
        env = base_env(data_dir, url)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        yield Site(kind, data_dir, url, env)
    finally:
        if db_name:
            import psycopg

            try:
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            except Exception:
                pass
        shutil.rmtree(data_dir, ignore_errors=True)


def django_json(module: str, args: list[str], env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m module args`` with ``env``; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def emit(data: dict[str, Any]) -> None:
    """What a Django-side helper prints last (read by ``django_json``)."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
