"""A first-come, first-served queue of SQLite writers across processes (and threads).

SQLite has one writer at a time; its own wait (the busy handler) polls with growing sleeps and
lets whoever polls at the right moment win, so under load some writers lose again and again.
Here every writer takes a ticket and waits for the writer just before it, blocking in the kernel
(no polling), so writers of every process are served in the order they asked:

- The queue lives in one lock file next to the database (``<db>-writers``). Its first 8 bytes are
  the next ticket, read and incremented under ``flock`` (a few microseconds).
- Ticket ``t`` owns the byte at ``BASE + t % SLOTS``: the writer locks it (an open file
  description lock, ``F_OFD_SETLK``: per open file, so per thread here) before giving the state
  lock back, then waits for a read lock on the byte of ``t - 1``, which the kernel grants when
  the writer before it unlocks, commits or dies (a dead process's locks go with it). This is a
  CLH queue with the kernel's lock wait as the only wait.
- Waiting is bounded: if the writer before does not finish within ``timeout`` (a process stopped
  mid-transaction), the wait gives up and the transaction goes to SQLite's own wait as before.
  The queue only orders writers; SQLite's lock still guarantees one writer at a time, so giving up
  costs fairness, never correctness. The bounded wait is done by a helper thread only when the
  writer before still holds its byte (the uncontended case does not wait at all); waiter threads
  are kept and reused.

One ``Ticket`` is held from ``BEGIN IMMEDIATE`` to the commit, rollback or close that ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import struct
import threading
from dataclasses import dataclass, field

BASE = 1 << 32
SLOTS = 1 << 30
_COUNTER = struct.Struct("<Q")


def _range_lock(fd: int, kind: int, offset: int, *, wait: bool) -> bool:
    """An OFD lock on one byte; False when ``wait`` is False and someone else holds it."""
    arg = struct.pack("hhqqi", kind, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK, arg)
    except (BlockingIOError, PermissionError):
        return False
    return True


@dataclass
class Ticket:
    queue: WriterQueue
    fd: int
    number: int
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            _range_lock(self.fd, fcntl.F_UNLCK, BASE + self.number % SLOTS, wait=False)


@dataclass
class WriterQueue:
    """The queue of one database file; one instance per file per process."""

    path: str
    local: threading.local = field(default_factory=threading.local)
    fds: list[int] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)
    # Contended waits are handed to kept waiter threads (``_waiter``), each with its own file.
    waits: queue.SimpleQueue[tuple[int, threading.Event]] = field(default_factory=queue.SimpleQueue)
    idle_waiters: int = 0

    def _fd(self) -> int:
        fd = getattr(self.local, "fd", None)
        if fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with self.guard:
                self.fds.append(fd)
            self.local.fd = fd
        return fd

    def acquire(self, timeout: float) -> Ticket:
        """Wait for the writers that asked before; returns this writer's ticket (hold it, release it)."""
        fd = self._fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(fd, 8, 0)
            number = _COUNTER.unpack(raw)[0] if len(raw) == 8 else 0
            os.pwrite(fd, _COUNTER.pack(number + 1), 0)
            # Locked before the next writer can read its ticket: it will find this byte held.
            _range_lock(fd, fcntl.F_WRLCK, BASE + number % SLOTS, wait=False)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        ticket = Ticket(self, fd, number)
        if number > 0:
            self._wait_for(BASE + (number - 1) % SLOTS, timeout)
        return ticket

    def _wait_for(self, offset: int, timeout: float) -> None:
        fd = self._fd()
        if _range_lock(fd, fcntl.F_RDLCK, offset, wait=False):
            _range_lock(fd, fcntl.F_UNLCK, offset, wait=False)
            return
        # Contended: a waiter thread with its own file waits in the kernel; this thread waits for
        # it at most ``timeout``. An abandoned wait ends as soon as the byte is free.
        done = threading.Event()
        with self.guard:
            if self.idle_waiters:
                self.idle_waiters -= 1  # one of them takes the request
            else:
                threading.Thread(target=self._waiter, name="weft-sqlite-writer-wait", daemon=True).start()
        self.waits.put((offset, done))
        done.wait(timeout)

    def _waiter(self) -> None:
        """A kept waiter: takes wait requests in turn (thread and file reused; starting a thread and
        opening the file for every contended write was a measurable part of a run's cost)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        waits = self.waits
        while True:
            offset, done = waits.get()
            _range_lock(fd, fcntl.F_RDLCK, offset, wait=True)
            _range_lock(fd, fcntl.F_UNLCK, offset, wait=False)
            done.set()
            with self.guard:
                if waits is not self.waits:  # forked meanwhile: this thread is the parent's
                    return
                self.idle_waiters += 1

    def after_fork_in_child(self) -> None:
        # Locks held by the parent's threads belong to the parent's open files; the child gets
        # its own files (closing the inherited copies leaves the parent's locks alone).
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.local = threading.local()
        self.guard = threading.Lock()
        self.waits = queue.SimpleQueue()  # the parent's waiter threads are not in the child
        self.idle_waiters = 0


_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def writer_queue(db_path: str) -> WriterQueue:
    path = f"{db_path}-writers"
    with _queues_lock:
        found = _queues.get(path)
        if found is None:
            found = _queues[path] = WriterQueue(path)
        return found


def _after_fork_in_child() -> None:
    global _queues_lock
    _queues_lock = threading.Lock()
    for writers in _queues.values():
        writers.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
