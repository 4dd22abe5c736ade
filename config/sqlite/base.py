"""Django's SQLite backend, with write transactions queued in order inside each process.

Every transaction here is ``BEGIN IMMEDIATE`` (settings), so concurrent writers wait for SQLite's
write lock. SQLite's own wait (the busy handler behind ``timeout``) polls with growing sleeps of
up to 100 ms, and whoever polls at the right moment wins: under load some writers lose again and
again while others pass, and a request waits seconds. Daphne runs each request's sync code on its
own thread, so with ten concurrent runs ten threads of one process contend this way.

Here a process-wide lock is taken before ``BEGIN IMMEDIATE`` and released at commit, rollback or
close, so the threads of one process wait on the lock and are woken as soon as it is free; SQLite's
busy handler only arbitrates between processes (the web server and the workers). If the lock is
not free within the SQLite timeout, the transaction goes on to SQLite as before (no new way to
deadlock: the outcome is then the one SQLite's timeout gives).
"""

from __future__ import annotations

import os
import threading

from django.db.backends.sqlite3 import base

_write_lock = threading.Lock()


def _fresh_lock_after_fork() -> None:
    # django-q2 forks its workers; a lock some other thread held at that moment would stay held
    # in the child for ever. Connections are not shared across a fork, so a new lock is right.
    global _write_lock
    _write_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode == "IMMEDIATE" and not self._holds_write_lock:
            timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
            self._holds_write_lock = _write_lock.acquire(timeout=timeout)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _write_lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_write_lock()
