"""Server-Sent Events: framing, and following a run's events for every streaming endpoint.

``RunFollower`` is the one way every SSE endpoint reads a run's events, through the event cursor
and the process's shared feed of the run (``runs.cursor``, which the websocket consumer uses too):
- create it *before* the run starts or the log is replayed: it takes a stream slot (per token and
  team: ``RateLimited``, a 429 with Retry-After, past ``WEFT_MAX_STREAMS_PER_*``) and subscribes to
  the run's feed, so that no event can fall between the start and the replay;
- the stream replays the log after ``after`` (``Last-Event-ID``), then takes live events (from the
  run's executor through this process, or from the feed's shared log poll when another process
  executes it), fills any gap from the log and ends after ``run_finished``.

``sse_stream`` turns a follower into the async iterator a ``StreamingHttpResponse`` needs under
ASGI (a sync iterator would be buffered to the end by Django), with pings every
``WEFT_SSE_PING_SECONDS``. Waiting holds no thread; a client that disconnects only cancels the
stream: the run keeps executing and every event stays in its log.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

from config.fastjson import dumps, dumps_str
from runs.cursor import FINAL_EVENT, StreamSlot, feeds, follow, stream_slot

__all__ = ["FINAL_EVENT", "EventStreamRenderer", "RunFollower", "sse_frame", "sse_response", "sse_stream"]


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
    """A run's events from ``after`` to ``run_finished``, for one SSE stream. ``team_id`` and
    ``token_id`` / ``user_id`` count the stream against the stream limits (``runs.cursor``)."""

    def __init__(self, run_id: Any, *, after: int = 0, team_id: Any = None, token_id: Any = None,
                 user_id: Any = None, fresh: bool = False, slot: StreamSlot | None = None) -> None:
        self.run_id = run_id
        self.after = after
        self.fresh = fresh  # created before the run started: nothing to replay
        # ``slot``: one taken before the run started (released with this follower)
        self.slot: StreamSlot | None = slot or (stream_slot(team_id=team_id, token_id=token_id, user_id=user_id)
                                                if team_id is not None else None)
        self.subscription = feeds.subscribe(run_id, after)

    def batches(self, idle: float) -> AsyncIterator[list[dict[str, Any]]]:
        return follow(self.run_id, after=self.after, subscription=self.subscription, idle=idle, fresh=self.fresh)

    def close(self) -> None:
        feeds.unsubscribe(self.subscription)  # idempotent
        if self.slot is not None:
            self.slot.release()


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
    ping_interval: float | None = None,
) -> SseBody:
    """SSE bytes for a follower: ``frames(event)`` for each event (a dialect's mapping; may yield
    nothing), ``ping()`` when nothing was sent for ``ping_interval`` seconds (default
    ``WEFT_SSE_PING_SECONDS``); ends after the run's last event. The follower's listener is removed
    however the stream ends (disconnect included)."""
    return SseBody(follower, _sse_frames(follower, frames=frames, ping=ping, on_error=on_error, prelude=prelude,
                                         interval=ping_interval or ping_seconds()))


async def _sse_frames(
    follower: RunFollower,
    *,
    frames: Callable[[dict[str, Any]], Iterable[bytes]],
    ping: Callable[[], bytes],
    on_error: Callable[[Exception], bytes] | None = None,
    prelude: Iterable[bytes] = (),
    interval: float = 10.0,
) -> AsyncIterator[bytes]:
    try:
        for chunk in prelude:
            yield chunk
        last_sent = time.monotonic()
        batches = follower.batches(idle=interval)
        try:
            async for batch in batches:
                # A batch's frames go out as one chunk: one write to the socket, not one per event.
                chunk = b"".join([part for event in batch for part in frames(event)])
                if chunk:
                    yield chunk
                    last_sent = time.monotonic()
                if time.monotonic() - last_sent >= interval:
                    yield ping()
                    last_sent = time.monotonic()
        except Exception as exc:  # the stream is open: report in-band, then end
            if on_error is not None:
                yield on_error(exc)
        finally:
            await batches.aclose()
    finally:
        follower.close()


def sse_response(stream: SseBody, *, headers: dict[str, str] | None = None) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # no proxy buffering (nginx)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
