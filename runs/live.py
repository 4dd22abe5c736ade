"""Live delivery of run events after they are committed to the event log.

Two paths, both fed by ``events_publish`` (called from ``transaction.on_commit``):
- in-process listeners (``runs.cursor``'s feed of a run followed by SSE or websocket readers of
  this process) get the events with no round trip, whether the run executes on a thread here or
  in an executor process of this process's pool (``runs.pool`` delivers its events here);
- the channel layer group ``run.<id>`` (and ``team.<id>`` for status changes) carries them to
  websocket consumers, across processes when channels-redis is configured.
The event log stays the record: a reader that missed something reads it from the database.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

Listener = Callable[[list[dict[str, Any]]], None]
_listeners: dict[str, list[Listener]] = defaultdict(list)
_lock = threading.Lock()


def run_group(run_id: Any) -> str:
    return f"run.{str(run_id).replace('-', '')}"


def team_group(team_id: Any) -> str:
    return f"team.{str(team_id).replace('-', '')}"


def listener_add(run_id: Any, listener: Listener) -> None:
    """Call ``listener(events)`` with the run's committed events as this process learns of them
    (``runs.cursor.Feed`` is the one listener of a followed run). It must not block."""
    with _lock:
        _listeners[str(run_id)].append(listener)
    if _on_listen is not None:
        _on_listen(run_id)


_on_listen: Callable[[Any], None] | None = None


def listen_hook_set(hook: Callable[[Any], None] | None) -> None:
    """``hook(run_id)`` is called when a listener is added (``runs.pool``: the executor running
    that run starts sending its events, which it sends only while someone here reads them)."""
    global _on_listen
    _on_listen = hook


def events_wanted(run_id: Any) -> bool:
    """Whether anyone may read the run's events as they are committed: a listener in this process,
    or a reader of its channel-layer group (always, on a layer shared by processes)."""
    with _lock:
        if _listeners.get(str(run_id)):
            return True
    return _readers(run_group(run_id))


def listener_remove(run_id: Any, listener: Listener) -> None:
    with _lock:
        items = _listeners.get(str(run_id))
        if items and listener in items:
            items.remove(listener)
            if not items:
                del _listeners[str(run_id)]


class _Publisher:
    """Sends to the channel layer without blocking the run that produced the events.

    - In-memory layer: the only listeners are websocket consumers of this process, which live on
      the server's event loop (noted by ``loop_note`` when a consumer connects). The send is
      scheduled on that loop (thread-safe) and skipped when the group has no member.
    - Other layers (channels-redis): one long-lived thread with its own event loop sends in order;
      the executor only enqueues.
    Either way a lost message costs latency, never data: consumers also read the event log.
    """

    def __init__(self) -> None:
        self.server_loop: asyncio.AbstractEventLoop | None = None
        self.queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def send(self, group: str, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            loop = self.server_loop
            if loop is None or loop.is_closed() or not layer.groups.get(group):
                return
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="weft-live-publisher", daemon=True)
                self.thread.start()
        self.queue.put((group, message))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        while True:
            item = self.queue.get()
            if item is None:
                break
            group, message = item
            try:
                loop.run_until_complete(layer.group_send(group, message))
            except Exception:  # the log is the record; a lost live message is recovered from it
                logger.warning("channel layer publish to %s failed", group, exc_info=True)


_publisher = _Publisher()


def loop_note(loop: asyncio.AbstractEventLoop) -> None:
    """Remember the server's event loop (called by websocket consumers as they connect)."""
    _publisher.server_loop = loop


Events = list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]
Forward = Callable[[Any, Any, Events, str | None], None]
_forward: Forward | None = None


def forward_set(forward: Forward | None) -> None:
    """In an executor process (``runs.executor_process``) committed events go to the web process or
    worker that handed it the run (over the pool's pipe), which delivers them: nobody listens here.
    ``forward`` gets ``events`` as given (a function building them, or the list)."""
    global _forward
    _forward = forward


def _readers(group: str) -> bool:
    """Whether anyone may read a message sent to ``group`` (always, on a layer shared by processes)."""
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        return bool(layer.groups.get(group))
    return True


def events_publish(*, run_id: Any, team_id: Any, events: Events, status: str | None = None) -> None:
    """Deliver committed events to in-process listeners and the channel layer; never blocks.
    ``events`` may be a function building them: it is called only when someone reads them."""
    if _forward is not None:
        _forward(run_id, team_id, events, status)
        return
    with _lock:
        targets = list(_listeners.get(str(run_id), ()))
    group = run_group(run_id)
    if targets or _readers(group):
        built = events() if callable(events) else events
        if built:  # a status change alone has no events
            for listener in targets:
                try:
                    listener(built)
                except Exception:  # a reader's problem never reaches the run that produced the events
                    logger.exception("run %s: an event listener failed", run_id)
            _publisher.send(group, {"type": "run.events", "events": built})
    if status is not None:
        _publisher.send(team_group(team_id), {"type": "run.status", "run_id": str(run_id), "status": status})
