"""Django's SQLite backend, with write transactions served first come, first served across processes.

Every transaction here is ``BEGIN IMMEDIATE`` (settings), so concurrent writers wait for SQLite's
write lock. SQLite's own wait (the busy handler behind ``timeout``) polls with growing sleeps of
up to 100 ms, and whoever polls at the right moment wins: under load some writers lose again and
again while others pass, and a request waits seconds. Several web processes (one per core) and
the workers all write to the same file, each with many threads.

Here every write transaction first takes its place in the database's writer queue
(``config.sqlite.writers``: a lock file next to the database, waits in the kernel, no polling) and
gives it back at commit, rollback or close, so writers of every process and thread go in the order
they asked; SQLite's busy handler is only reached when the writer before does not finish within
the SQLite timeout. In-memory databases (no file) skip the queue.
"""

from __future__ import annotations

from django.db.backends.sqlite3 import base

from config.sqlite.creation import DatabaseCreation
from config.sqlite.writers import Ticket, writer_queue


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    _write_ticket: Ticket | None = None

    def _queue_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            return None
        return name

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode == "IMMEDIATE" and self._write_ticket is None:
            path = self._queue_path()
            if path is not None:
                timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
                self._write_ticket = writer_queue(path).acquire(timeout)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        ticket, self._write_ticket = self._write_ticket, None
        if ticket is not None:
            ticket.release()

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
