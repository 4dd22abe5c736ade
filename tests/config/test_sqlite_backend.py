"""The SQLite backend's in-process write queue (config/sqlite): taken by every write transaction,
released however the transaction ends, never inherited locked by a forked worker, and concurrent
writers of one process all get through."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from django.db import connection, transaction

from accounts.models import GlobalParameter, Team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the write queue is part of the SQLite backend only")


def write_lock() -> Any:
    from config.sqlite import base

    return base._write_lock


def test_held_for_the_transaction_and_released_by_commit_rollback_and_close(team_a: Team) -> None:
    assert not write_lock().locked()
    with transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="a", value="1")
        assert write_lock().locked()
    assert not write_lock().locked()
    with pytest.raises(RuntimeError), transaction.atomic():
        GlobalParameter.objects.create(team=team_a, name="b", value="2")
        raise RuntimeError("roll back")
    assert not write_lock().locked()
    assert list(GlobalParameter.objects.values_list("name", flat=True)) == ["a"]
    transaction.set_autocommit(False)
    try:
        GlobalParameter.objects.create(team=team_a, name="c", value="3")
    finally:
        connection.close()  # a connection closed mid-transaction gives the lock back
    assert not write_lock().locked()


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
    assert not write_lock().locked()


def test_a_forked_child_starts_with_a_free_lock() -> None:
    lock = write_lock()
    assert lock.acquire(timeout=5)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the lock it sees must be free
            os._exit(0 if not write_lock().locked() else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        lock.release()
