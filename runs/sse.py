"""Server-Sent Events: framing, and following a run's events (log replay, then live) for the dialects.

``RunFollower`` is the one way every streaming endpoint reads a run's events:
- register an in-process listener first (``runs.live.listener_add``), *then* start the run's thread
  or replay the log, so no event can fall between the two;
- replay the event log after a given ``seq``;
- then take live events with ``seq > last`` from the listener; a gap (an event missed while the
  listener was full or registered late) is filled from the log;
- when nothing arrives in-process for ``poll_seconds`` (the run executes in another process, or is
  idle in a delay) the log is read again, so a run on a django-q2 worker is followed too;
- it ends after ``run_finished``.

``sse_stream`` turns a follower into the async iterator a ``StreamingHttpResponse`` needs under
ASGI (a sync iterator would be buffered to the end by Django), with pings every
``WEFT_SSE_PING_SECONDS``. The blocking parts (queue wait, database reads) run in the request's own
worker thread through ``sync_to_async``; a client that disconnects only cancels the stream: the run
keeps executing on its own thread and every event stays in its log.
"""

from __future__ import annotations

import queue
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

from config.fastjson import dumps, dumps_str
from runs.live import listener_add, listener_remove
from runs.models import RunEvent
from runs.services import event_dict

FINAL_EVENT = "run_finished"


class EventStreamRenderer(BaseRenderer):
    """Lets a streaming view accept ``Accept: text/event-stream`` (what SSE clients send).

    The stream itself is a ``StreamingHttpResponse``; this renderer only renders error bodies that
    reach it (as JSON), so content negotiation never fails with 406 for an SSE client."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return dumps(data)


def sse_frame(data: Any = None, *, event: str | None = None, id: Any = None, comment: str | None = None) -> bytes:
    """One SSE frame. ``data`` (JSON-encoded unless a string) may be None for a bare ``event:`` frame."""
    lines: list[str] = []
    if comment is not None:
        lines.append(f": {comment}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        text = data if isinstance(data, str) else dumps_str(data)
        lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def ping_seconds() -> float:
    return float(getattr(settings, "WEFT_SSE_PING_SECONDS", 10.0))


class RunFollower:
    """Yields a run's events in ``seq`` order, each once, from ``after`` to ``run_finished``.

    Create it (which registers the listener) before the run starts executing or before the log is
    replayed. ``next_batch`` blocks at most ``poll_seconds``; call ``close`` when done."""

    def __init__(self, run_id: Any, *, after: int = 0, poll_seconds: float = 0.3) -> None:
        self.run_id = run_id
        self.last = after
        self.poll_seconds = poll_seconds
        self.finished = False
        self.queue: queue.SimpleQueue = listener_add(run_id)
        self.replayed = False

    def _from_log(self, *, before: int | None = None) -> list[dict[str, Any]]:
        qs = RunEvent.objects.filter(run_id=self.run_id, seq__gt=self.last)
        if before is not None:
            qs = qs.filter(seq__lt=before)
        return [event_dict(e) for e in qs.order_by("seq")[:1000]]

    def _accept(self, events: Iterable[dict[str, Any]], out: list[dict[str, Any]]) -> None:
        for event in events:
            if self.finished or event["seq"] <= self.last:
                continue
            out.append(event)
            self.last = event["seq"]
            if event["type"] == FINAL_EVENT:
                self.finished = True

    def next_batch(self) -> list[dict[str, Any]]:
        """The next events (possibly none, after ``poll_seconds`` of silence)."""
        out: list[dict[str, Any]] = []
        if not self.replayed:
            self.replayed = True
            self._accept(self._from_log(), out)
            if out:
                return out
        try:
            event = self.queue.get(timeout=self.poll_seconds)
        except queue.Empty:
            self._accept(self._from_log(), out)  # another process runs it, or it is idle: read the log
            return out
        pending = [event]
        while True:  # drain what is already queued, in one batch
            try:
                pending.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for item in pending:
            if item["seq"] > self.last + 1:
                self._accept(self._from_log(before=item["seq"]), out)  # fill the gap from the log
            self._accept([item], out)
        return out

    def close(self) -> None:
        listener_remove(self.run_id, self.queue)  # idempotent


class SseBody:
    """A response body over a follower's frames. Django calls ``close`` when the response ends, even
    when the client went away before the first frame (then the generator never ran its cleanup)."""

    def __init__(self, follower: RunFollower, frames: AsyncIterator[bytes]) -> None:
        self.follower = follower
        self.frames = frames

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.frames

    def close(self) -> None:
        self.follower.close()


def sse_stream(
    follower: RunFollower,
    *,
    frames: Callable[[dict[str, Any]], Iterable[bytes]],
    ping: Callable[[], bytes],
    on_error: Callable[[Exception], bytes] | None = None,
    prelude: Iterable[bytes] = (),
) -> SseBody:
    """SSE bytes for a follower: ``frames(event)`` for each event (a dialect's mapping; may yield
    nothing), ``ping()`` when nothing was sent for ``WEFT_SSE_PING_SECONDS``; ends after the run's
    last event. The follower's listener is removed however the stream ends (disconnect included)."""
    return SseBody(follower, _sse_frames(follower, frames=frames, ping=ping, on_error=on_error, prelude=prelude))


async def _sse_frames(
    follower: RunFollower,
    *,
    frames: Callable[[dict[str, Any]], Iterable[bytes]],
    ping: Callable[[], bytes],
    on_error: Callable[[Exception], bytes] | None = None,
    prelude: Iterable[bytes] = (),
) -> AsyncIterator[bytes]:
    interval = ping_seconds()
    # The request's own worker thread: its database connection is closed with the response.
    fetch = sync_to_async(follower.next_batch, thread_sensitive=True)
    try:
        for chunk in prelude:
            yield chunk
        last_sent = time.monotonic()
        while not follower.finished:
            try:
                batch = await fetch()
            except Exception as exc:  # the stream is open: report in-band, then end
                if on_error is not None:
                    yield on_error(exc)
                return
            for event in batch:
                for chunk in frames(event):
                    yield chunk
                    last_sent = time.monotonic()
            if not follower.finished and time.monotonic() - last_sent >= interval:
                yield ping()
                last_sent = time.monotonic()
    finally:
        follower.close()


def sse_response(stream: SseBody, *, headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # no proxy buffering (nginx)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
