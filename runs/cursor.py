"""Following a run's events: one cursor for every reader, one shared feed per followed run per process.

- ``EventCursor``: where one reader is in a run's log. It accepts events in ``seq`` order, each once
  (``take``: duplicates dropped, it stops at a gap), reads the log after its position (``read_log``:
  the replay after ``Last-Event-ID`` / ``after``, and every gap fill) and is ``finished`` after
  ``run_finished`` (or when the run is over and its log has nothing more).
- ``Feed``: one per followed run per process, shared by every reader of that run here. It gets the
  run's events as soon as this process learns of them (``runs.live`` listeners: runs executing in
  this process's executor pool or threads) and, while none arrive for ``WEFT_STREAM_POLL_SECONDS``,
  from one poller thread per process that reads the log of every quiet feed in one query (runs
  executing in other processes). Readers subscribe *before* they replay the log (and before the run
  starts), so nothing falls in between; the cursor drops what arrives twice.
- ``follow``: the async loop SSE (``runs.sse``) and the websocket consumer (``runs.consumers``) both
  use: replay, then live batches, gap fill, end after ``run_finished``; an empty batch after
  ``idle`` seconds of silence lets the caller send a keep-alive. No thread is held per stream.
- ``StreamSlots``: open streams (SSE and websockets) counted per token and per team in this process,
  refused past ``WEFT_MAX_STREAMS_PER_TOKEN`` / ``WEFT_MAX_STREAMS_PER_TEAM`` (429, Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.db.models import Q

from config.errors import RateLimited
from runs.live import listener_add, listener_remove
from runs.models import FINAL_STATUSES, Run, RunEvent
from runs.services import event_dict

logger = logging.getLogger(__name__)

FINAL_EVENT = "run_finished"
LOG_PAGE = 1000
POLL_CHUNK = 100


class EventCursor:
    """A reader's position in one run's event log."""

    def __init__(self, run_id: Any, after: int = 0) -> None:
        self.run_id = str(run_id)
        self.last = max(int(after), 0)
        self.finished = False
        self.gap = False

    def take(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events that follow ``last`` without a gap, in order, each once; ``gap`` is set when
        one is missing (the rest must come from the log)."""
        out: list[dict[str, Any]] = []
        for event in sorted(events, key=lambda e: e["seq"]):
            if self.finished or event["seq"] <= self.last:
                continue
            if event["seq"] > self.last + 1:
                self.gap = True
                break
            out.append(event)
            self.last = event["seq"]
            if event["type"] == FINAL_EVENT:
                self.finished = True
        return out

    def read_log(self) -> list[dict[str, Any]]:
        """Every logged event after ``last`` (synchronous: a database read). The run's status is read
        first: a run seen over here has all its events in the read that follows, so a finished run
        whose log has nothing more (or a deleted run) finishes the cursor."""
        self.gap = False
        status = Run.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
        out: list[dict[str, Any]] = []
        while not self.finished:
            rows = [event_dict(e) for e in RunEvent.objects.filter(run_id=self.run_id, seq__gt=self.last)
                    .order_by("seq")[:LOG_PAGE]]
            out += self.take(rows)
            if len(rows) < LOG_PAGE:
                break
        if not self.finished and (status is None or status in FINAL_STATUSES):
            self.finished = True
        return out


class Subscription:
    """One reader's inbox on a feed: batches pushed from any thread, awaited on the reader's loop."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.buffer: deque[list[dict[str, Any]]] = deque()
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.ended = False  # the poller saw the run over: read the log once more
        self.closed = False

    def push(self, events: list[dict[str, Any]], *, ended: bool = False) -> None:
        with self.lock:
            if events:
                self.buffer.append(events)
            self.ended = self.ended or ended
            loop, wake = self.loop, self.wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def next(self, timeout: float) -> list[dict[str, Any]] | None:
        """The events pushed since the last call, or None after ``timeout`` seconds without any."""
        with self.lock:
            if self.wake is None:
                self.loop, self.wake = asyncio.get_running_loop(), asyncio.Event()
        wake = self.wake
        while True:
            with self.lock:
                if self.buffer or self.ended:
                    items = [e for batch in self.buffer for e in batch]
                    self.buffer.clear()
                    wake.clear()
                    return items
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                return None
            wake.clear()

    def seen(self, seq: int) -> None:
        self.feed.seen(seq)


class Feed:
    """The events of one run, as this process learns of them, for every subscriber here."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.subscribers: set[Subscription] = set()
        self.last = 0
        self.live_at = self.polled_at = time.monotonic()
        self.lock = threading.Lock()

    def seen(self, seq: int) -> None:
        with self.lock:
            self.last = max(self.last, seq)

    def push(self, events: list[dict[str, Any]], *, ended: bool = False, live: bool = True) -> None:
        with self.lock:
            if events:
                self.last = max(self.last, max(e["seq"] for e in events))
            if live:
                self.live_at = time.monotonic()
            subscribers = list(self.subscribers)
        for sub in subscribers:
            sub.push(events, ended=ended)

    def listener(self, events: list[dict[str, Any]]) -> None:
        """``runs.live`` delivers committed events of this run."""
        self.push(events)


class Feeds:
    """Every feed of this process, and the one poller thread that reads the log for quiet ones."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def subscribe(self, run_id: Any, after: int = 0) -> Subscription:
        key = str(run_id)
        with self.lock:
            feed = self.feeds.get(key)
            if feed is None:
                feed = self.feeds[key] = Feed(key)
                feed.last = after
                listener_add(key, feed.listener)
            sub = Subscription(feed)
            feed.subscribers.add(sub)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.poll_loop, name="weft-feeds", daemon=True)
                self.thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            if sub.closed:
                return
            sub.closed = True
            feed = sub.feed
            feed.subscribers.discard(sub)
            if not feed.subscribers and self.feeds.get(feed.run_id) is feed:
                del self.feeds[feed.run_id]
                listener_remove(feed.run_id, feed.listener)

    def count(self) -> int:
        with self.lock:
            return len(self.feeds)

    def poll_loop(self) -> None:
        idle_since: float | None = None
        while True:
            time.sleep(min(poll_seconds(), 0.1))
            with self.lock:
                empty = not self.feeds
            if empty:
                connection.close()
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 30:
                    with self.lock:
                        if not self.feeds:
                            self.thread = None
                            return
                continue
            idle_since = None
            try:
                self.poll_once()
            except Exception:
                logger.exception("event feed poll failed")
                connection.close()

    def poll_once(self) -> int:
        """Read the log of every feed that heard nothing live for a poll interval: one query for the
        statuses, one for the events, per ``POLL_CHUNK`` runs. Returns the number of events read."""
        now = time.monotonic()
        interval = poll_seconds()
        with self.lock:
            due = [f for f in self.feeds.values() if now - max(f.live_at, f.polled_at) >= interval]
            for feed in due:
                feed.polled_at = now
        read = 0
        for start in range(0, len(due), POLL_CHUNK):
            chunk = {f.run_id: f for f in due[start:start + POLL_CHUNK]}
            over = set(map(str, Run.objects.filter(pk__in=list(chunk), status__in=FINAL_STATUSES)
                           .values_list("pk", flat=True)))
            where = Q()
            for feed in chunk.values():
                where |= Q(run_id=feed.run_id, seq__gt=feed.last)
            found: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in RunEvent.objects.filter(where).order_by("run_id", "seq")[:LOG_PAGE]:
                found[str(row.run_id)].append(event_dict(row))
            for run_id, feed in chunk.items():
                events = found.get(run_id, [])
                read += len(events)
                if events or run_id in over:
                    feed.push(events, ended=run_id in over and not events, live=False)
        return read


feeds = Feeds()


def poll_seconds() -> float:
    return float(settings.WEFT_STREAM_POLL_SECONDS)


async def follow(run_id: Any, *, after: int = 0, subscription: Subscription | None = None,
                 idle: float = 10.0, fresh: bool = False) -> AsyncIterator[list[dict[str, Any]]]:
    """A run's events after ``after``, in batches, each once, in order, to ``run_finished``: the log
    first, then live (gaps filled from the log). An empty batch after ``idle`` seconds of silence.
    ``subscription``: one taken earlier; ``fresh``: taken before the run started, so its log holds
    nothing yet (no replay read). The subscription is released when this ends."""
    sub = subscription or feeds.subscribe(run_id, after)
    cursor = EventCursor(run_id, after)
    read = database_sync_to_async(cursor.read_log)
    try:
        if not fresh:
            batch = await read()
            sub.seen(cursor.last)
            if batch:
                yield batch
        while not cursor.finished:
            events = await sub.next(idle)
            got = cursor.take(events or [])
            if cursor.gap or sub.ended:
                sub.ended = False
                got += await read()
            yield got
    finally:
        feeds.unsubscribe(sub)


class StreamSlots:
    """Open streams of this process per token (or signed-in user) and per team."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def acquire(self, *, team_id: Any, who: str) -> StreamSlot:
        """A slot for one more stream, or ``RateLimited`` (429 with Retry-After) past a limit."""
        team_key, who_key = f"team:{team_id}", f"who:{who}"
        team_limit, who_limit = int(settings.WEFT_MAX_STREAMS_PER_TEAM), int(settings.WEFT_MAX_STREAMS_PER_TOKEN)
        with self.lock:
            if team_limit and self.counts[team_key] >= team_limit:
                raise RateLimited(f"Too many open streams for this team (limit {team_limit}).", retry_after=1)
            if who_limit and self.counts[who_key] >= who_limit:
                raise RateLimited(f"Too many open streams for this token (limit {who_limit}).", retry_after=1)
            self.counts[team_key] += 1
            self.counts[who_key] += 1
        return StreamSlot(self, (team_key, who_key))

    def release(self, keys: tuple[str, ...]) -> None:
        with self.lock:
            for key in keys:
                self.counts[key] -= 1
                if self.counts[key] <= 0:
                    del self.counts[key]


class StreamSlot:
    def __init__(self, slots: StreamSlots, keys: tuple[str, ...]) -> None:
        self.slots, self.keys, self.released = slots, keys, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.release(self.keys)


stream_slots = StreamSlots()


def stream_slot(*, team_id: Any, token_id: Any = None, user_id: Any = None) -> StreamSlot:
    """A stream slot for a request or socket: counted against its token, or its user when signed in."""
    who = f"token:{token_id}" if token_id is not None else f"user:{user_id}"
    return stream_slots.acquire(team_id=team_id, who=who)
