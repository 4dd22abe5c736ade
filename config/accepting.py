"""Web processes sharing one listening socket take new connections in turn.

``manage.py runweft`` starts one Daphne per core on one inherited socket (docs/serving.md). Every
process waits for that socket in its own event loop, and Twisted accepts up to 100 connections each
time it wakes (``tcp.Port.numberAccepts``, adapted to the last burst). A client that opens its
connections at once (a pool of keep-alive connections, a load generator) had them all accepted by
whichever process woke first: measured with 10 connections, one process served all ten while the
other stayed idle, and throughput was that of one core.

Here a process accepts one connection per wake-up and then leaves the socket alone for
``PAUSE_SECONDS`` (half a millisecond) before it listens again, so the next connection goes to
another process that is waiting; a busy process comes back to its loop later and takes fewer. A
burst of N connections is accepted in about N/processes pauses (a thousand connections on two
processes: a quarter of a second; the kernel's backlog holds them meanwhile).
"""

from __future__ import annotations

from typing import Any

PAUSE_SECONDS = 0.0005


def accept_one_at_a_time() -> None:
    """Patch Twisted's TCP listening port (in a Daphne process, before it listens)."""
    from twisted.internet import tcp  # only under Daphne (see config.asgi)

    if getattr(tcp.Port, "_weft_in_turn", False):
        return
    # A data descriptor: ``startListening`` and ``doRead`` assign it, and the assignments are ignored.
    tcp.Port.numberAccepts = property(lambda self: 1, lambda self, value: None)
    read = tcp.Port.doRead

    def do_read(self: Any) -> Any:
        before = self.sessionno  # counts accepted connections
        result = read(self)
        if self.sessionno != before and self.connected:
            self.stopReading()
            self.reactor.callLater(PAUSE_SECONDS, resume, self)
        return result

    def resume(self: Any) -> None:
        if self.connected:  # not while the port is being closed
            self.startReading()

    tcp.Port.doRead = do_read
    tcp.Port._weft_in_turn = True
