"""``manage.py runweft`` (what ``make run`` starts): Daphne and a django-q2 cluster as children,
stopped with it on SIGTERM as on Ctrl-C, so a process manager leaves nothing behind; a taken port
is a clear failure before the demo is touched; several web processes share one socket and each
follows runs executed by another process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.models import ApiToken
from accounts.services import token_create
from runs.models import Run
from tests.support.processes import free_port, start, stop, wait_for_port
from tests.web.factories import delay_graph, published_workflow
from workflows.demo import demo_load, demo_tokens_path

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
def test_stopping_runweft_stops_every_daphne_and_the_cluster(sig: signal.Signals) -> None:
    port = free_port()
    # Its own process group, so that whatever happens the cleanup below kills every process of it
    # (a leftover cluster would take other tests' tasks from the same database).
    proc = start([sys.executable, "manage.py", "runweft", "--host", "127.0.0.1", "--port", str(port), "--no-demo",
                  "--web-processes", "2"], name="runweft", new_session=True, WEFT_LOG_LEVEL="ERROR", WEFT_Q_LOG_LEVEL="ERROR")
    try:
        wait_running(proc, port)
        assert requests.get(f"http://127.0.0.1:{port}/api/schema/", timeout=30).status_code == 200
        # Daphne and the cluster, and the cluster's own processes (it forks them once it is up).
        deadline = time.monotonic() + 30
        children: set[int] = set()
        grandchildren: set[int] = set()
        while (len(children) < 3 or not grandchildren) and time.monotonic() < deadline:
            time.sleep(0.2)
            children = children_of(proc.pid)
            grandchildren = set().union(set(), *(children_of(c) for c in children if alive(c)))
        assert len(children) == 4 and grandchildren, proc.log_tail()  # the cluster, the consumers, two Daphne
        proc.send_signal(sig)
        assert proc.wait(20) == 0
        deadline = time.monotonic() + 15
        while any(alive(p) for p in children | grandchildren) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in children | grandchildren if alive(p)], proc.log_tail()
    finally:
        if proc.poll() is None:
            stop(proc, kill=True)


def wait_running(proc: Any, port: int) -> None:
    """Until runweft says it is running: the socket is bound before the web processes are up, and
    runweft prints its banner once they answer."""
    wait_for_port(port, proc)
    deadline = time.monotonic() + 120
    while "Weft is running" not in proc.log_tail(20000) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.log_tail()
        time.sleep(0.2)
    assert "Weft is running" in proc.log_tail(20000), proc.log_tail()


def serving_pid(client: socket.socket, server_port: int, pids: set[int]) -> int | None:
    """Which of ``pids`` holds the server side of ``client``'s TCP connection (/proc/net/tcp)."""
    client_port = client.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
    return None


@contextlib.contextmanager
def two_web_processes(**env: str) -> Iterator[tuple[Any, int, set[int]]]:
    """``manage.py runweft --web-processes 2`` on a free port: the process, the port and the pids of
    its two Daphne processes; stopped afterwards."""
    port = free_port()
    proc = start([sys.executable, "manage.py", "runweft", "--host", "127.0.0.1", "--port", str(port), "--no-demo",
                  "--web-processes", "2"], name="runweft", new_session=True, WEFT_LOG_LEVEL="ERROR",
                 WEFT_Q_LOG_LEVEL="ERROR", **env)
    try:
        wait_running(proc, port)
        deadline = time.monotonic() + 30
        web: set[int] = set()
        while len(web) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            web = {c for c in children_of(proc.pid) if "daphne" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")}
        assert len(web) == 2, proc.log_tail()
        yield proc, port, web
    finally:
        stop(proc)
        if proc.poll() is None:
            stop(proc, kill=True)


def test_a_taken_port_fails_fast_before_touching_the_demo() -> None:
    demo = demo_load(base_url="http://127.0.0.1:1")
    kept = demo_tokens_path().read_text()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start([sys.executable, "manage.py", "runweft", "--host", "127.0.0.1", "--port", str(port)],
                     name="runweft", new_session=True, WEFT_LOG_LEVEL="ERROR")
        try:
            assert proc.wait(60) == 1
        finally:
            if proc.poll() is None:
                stop(proc, kill=True)
    assert f"Port {port} on 127.0.0.1 is already in use" in proc.log_tail()
    assert "Weft is running" not in proc.log_tail()
    assert demo_tokens_path().read_text() == kept
    live = ApiToken.objects.filter(team__slug="demo", revoked_at__isnull=True)
    assert sorted(live.values_list("name", flat=True)) == ["demo", "demo-app"]
    assert demo_load(base_url="http://127.0.0.1:1")["token"] == demo["token"]  # still the same tokens


def test_web_processes_share_the_socket_and_follow_runs_executed_elsewhere(team_a: Any, owner_a: Any) -> None:
    """Two Daphne processes on one socket: websockets on each of them follow a run the cluster executes."""
    team, owner = team_a, owner_a
    workflow = published_workflow(team, owner, graph=delay_graph(1.0), name="Waiter")
    _, secret = token_create(team=team, name="ws", scopes=["run", "read"])
    headers = {"Authorization": f"Bearer {secret}"}
    with two_web_processes(WEFT_TICK_SECONDS="1") as (proc, port, web):
        base = f"http://127.0.0.1:{port}"
        accepted = requests.post(f"{base}/api/v1/workflows/run", headers=headers, timeout=30,
                                 json={"workflowId": str(workflow.pk), "params": {}, "mode": "async"})
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["runId"]
        sockets: dict[int, Any] = {}
        stack = contextlib.ExitStack()
        for _ in range(40):  # connect until each web process serves one socket of the run
            if len(sockets) == 2:
                break
            ticket = requests.post(f"{base}/api/v1/ws-tickets", headers=headers, timeout=10).json()["ticket"]
            ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws/runs/{run_id}/?ticket={ticket}", open_timeout=10))
            pid = serving_pid(ws.socket, port, web)
            if pid is None or pid in sockets:
                ws.close()
            else:
                sockets[pid] = ws
        assert set(sockets) == web, "the kernel gave every connection to one web process"
        for ws in sockets.values():
            events = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    events.append(json.loads(ws.recv(timeout=30)))
            seen = f"{events[-1:]}, closed {ws.close_code} {ws.close_reason!r}\n{proc.log_tail()}"
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), seen
            assert events and events[-1]["type"] == "run_finished" and events[-1]["data"]["status"] == "succeeded", seen
        stack.close()
        assert Run.objects.get(pk=run_id).status == "succeeded"


def test_connections_opened_at_once_are_taken_in_turn_by_the_web_processes() -> None:
    """Ten connections opened together (a keep-alive pool, a load generator) are spread over both
    Daphne processes (config.accepting), not all taken by whichever woke first."""
    with two_web_processes() as (_, port, web):
        # A busy machine (the other test process) can keep one process from waking for all ten
        # pauses: a few tries, one spread is enough (without config.accepting every try is 10/0).
        tries = []
        for _ in range(5):
            clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(10)]
            try:
                served: dict[int | None, int] = {}
                for _ in range(50):  # until every connection has been accepted by one of them
                    time.sleep(0.1)
                    owners = [serving_pid(c, port, web) for c in clients]
                    served = {pid: owners.count(pid) for pid in set(owners)}
                    if None not in served:
                        break
                tries.append(served)
            finally:
                for client in clients:
                    client.close()
            if set(served) == web and min(served.values()) >= 2:
                break
        else:
            raise AssertionError(f"connections were not spread over the web processes: {tries}")
