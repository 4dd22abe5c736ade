"""``manage.py runweft`` (what ``make run`` starts): Daphne and a django-q2 cluster as children,
stopped with it on SIGTERM as on Ctrl-C, so a process manager leaves nothing behind."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import free_port, start, stop, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def children_of(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_runweft_stops_daphne_and_the_cluster(sig: signal.Signals) -> None:
    port = free_port()
    # Its own process group, so that whatever happens the cleanup below kills every process of it
    # (a leftover cluster would take other tests' tasks from the same database).
    proc = start([sys.executable, "manage.py", "runweft", "--host", "127.0.0.1", "--port", str(port), "--no-demo"],
                 name="runweft", new_session=True, WEFT_LOG_LEVEL="ERROR", WEFT_Q_LOG_LEVEL="ERROR")
    try:
        wait_for_port(port, proc)
        assert requests.get(f"http://127.0.0.1:{port}/api/schema/", timeout=10).status_code == 200
        # Daphne and the cluster, and the cluster's own processes (it forks them once it is up).
        deadline = time.monotonic() + 30
        children: set[int] = set()
        grandchildren: set[int] = set()
        while (len(children) < 3 or not grandchildren) and time.monotonic() < deadline:
            time.sleep(0.2)
            children = children_of(proc.pid)
            grandchildren = set().union(set(), *(children_of(c) for c in children if alive(c)))
        assert len(children) == 3 and grandchildren, proc.log_tail()
        proc.send_signal(sig)
        assert proc.wait(20) == 0
        deadline = time.monotonic() + 15
        while any(alive(p) for p in children | grandchildren) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children | grandchildren if alive(p)], proc.log_tail()
    finally:
        if proc.poll() is None:
            stop(proc, kill=True)
