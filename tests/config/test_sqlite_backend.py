"""The SQLite backend's writer queue (config/sqlite): every write transaction takes its place and
gives it back however the transaction ends, a forked worker never keeps its parent's place, the
writers of one process all get through, and writers of several real processes are served in turn."""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from accounts.models import GlobalParameter, Team
from config.sqlite.writers import BASE, SLOTS, writer_queue
from tests.support.processes import python_process, stop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the writer queue is part of the SQLite backend only")


def queue_file() -> str:
    return f"{connection.settings_dict['NAME']}-writers"


def queue_busy() -> bool:
    """True when the newest ticket's writer still holds its place (probed from a fresh file)."""
    fd = os.open(queue_file(), os.O_RDWR)
    try:
        raw = os.pread(fd, 8, 0)
        number = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
        if number == 0:
            return False
        arg = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, BASE + (number - 1) % SLOTS, 1, 0)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, arg)
        except (BlockingIOError, PermissionError):
            return True
        return False
    finally:
        os.close(fd)  # drops the probe's lock


def test_held_for_the_transaction_and_released_by_commit_rollback_and_close(team_a: Team) -> None:
    assert not queue_busy()
    with transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="a", value="1")
        assert queue_busy()
    assert not queue_busy()
    with pytest.raises(RuntimeError), transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="b", value="2")
        assert queue_busy()
        raise RuntimeError("roll back")
    assert not queue_busy()
    assert list(GlobalParameter.objects.values_list("name", flat=True)) == ["a"]
    with transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="c", value="3")
        assert queue_busy()
        connection.close()  # a connection closed mid-transaction gives its place back
        assert not queue_busy()
    assert list(GlobalParameter.objects.values_list("name", flat=True)) == ["a"]
    assert not queue_busy()


def test_concurrent_writers_of_one_process_all_get_through(team_a: Team) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        try:
            barrier.wait()
            for j in range(15):
                with transaction.atomic():
                    GlobalParameter.objects.create(team=team_a, name=f"p{i}-{j}", value=str(j))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert GlobalParameter.objects.filter(team=team_a).count() == 8 * 15
    assert not queue_busy()


def test_a_forked_child_does_not_keep_its_parents_place(team_a: Team) -> None:
    path = connection.settings_dict["NAME"]
    read, write = os.pipe()
    with transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="parent", value="1")
        pid = os.fork()
        if pid == 0:  # the child outlives the parent's transaction, then queues itself
            code = 1
            try:
                os.close(write)
                os.read(read, 1)  # the parent has committed
                started = time.monotonic()
                ticket = writer_queue(path).acquire(10.0)
                waited = time.monotonic() - started
                ticket.release()
                code = 0 if waited < 2.0 else 2
            finally:
                os._exit(code)
        os.close(read)
    # Committed: the place is free although the child (holding copies of the files) still runs.
    assert not queue_busy()
    os.write(write, b"x")
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # 2: it waited for a place its parent had given back
    assert not queue_busy()


WRITER = """
import pathlib, sys, time
from django.db import transaction
from accounts.models import GlobalParameter
team_id, tag, rounds, barrier = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
(barrier / tag).touch()  # ready; start once all three are (Django's start-up takes a while on a busy machine)
while len(list(barrier.iterdir())) < 3:
    time.sleep(0.005)
for j in range(rounds):
    with transaction.atomic():
        n = GlobalParameter.objects.filter(team_id=team_id).count()
        GlobalParameter.objects.create(team_id=team_id, name=f"{tag}-{j}", value=str(n))
        time.sleep(0.003)  # hold the write lock a while, as a run's transaction does
"""


def test_writers_of_several_processes_are_served_in_turn(team_a: Team, tmp_path: Path) -> None:
    """Three processes write in a loop: in arrival order each waits for the other two, so while all
    three are writing none gets two turns in a row (SQLite's polling lets one win again and again)."""
    rounds = 40
    barrier = tmp_path / "ready"
    barrier.mkdir()
    procs = [python_process(f"import sys; sys.argv = ['w', {str(team_a.pk)!r}, {tag!r}, '{rounds}', {str(barrier)!r}]\n"
                            + WRITER) for tag in ("x", "y", "z")]
    try:
        for proc in procs:
            assert proc.wait(120) == 0, proc.log_tail()
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc, kill=True)
    rows = sorted(GlobalParameter.objects.filter(team=team_a).values_list("value", "name"), key=lambda r: int(r[0]))
    assert [int(v) for v, _ in rows] == list(range(3 * rounds))
    order = [name.split("-")[0] for _, name in rows]
    # The part where all three were writing: from the last first turn to the first last turn.
    begin = max(order.index(tag) for tag in "xyz")
    end = min(len(order) - 1 - order[::-1].index(tag) for tag in "xyz")
    middle = order[begin:end + 1]
    assert len(middle) > rounds, order
    repeats = sum(1 for a, b in zip(middle, middle[1:], strict=False) if a == b)
    assert repeats == 0, "".join(order)
    assert not queue_busy()




def test_contended_waits_reuse_one_kept_waiter_thread(tmp_path: Path) -> None:
    def waiters() -> int:
        return sum(t.name == "weft-sqlite-writer-wait" for t in threading.enumerate())

    before = waiters()
    queue = writer_queue(str(tmp_path / "db.sqlite3"))
    for _ in range(5):
        first = queue.acquire(10.0)
        got: list[Any] = []
        second = threading.Thread(target=lambda into=got: into.append(queue.acquire(10.0)))
        second.start()
        time.sleep(0.1)
        assert not got  # waiting for the first
        first.release()
        second.join(10)
        assert got, "the second writer never got its turn"
        got[0].release()
    time.sleep(0.1)
    assert waiters() - before == 1 and queue.idle_waiters == 1  # one waiter, started once, idle again
