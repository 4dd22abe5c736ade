"""Kept request threads (config.handlers): Django's ASGI handler, with each request's thread taken
from an idle list. Requests in turn reuse one thread and its database connection; requests at the
same time each get a thread of their own; idle threads past the budget end, their connection
closed; a view's thread-sensitive work runs on its request's thread."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.db import connection
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from config.handlers import FreshContext, PooledThreadASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)

gate = threading.Barrier(2, timeout=10)


def whoami(request: HttpRequest) -> JsonResponse:
    connection.ensure_connection()
    return JsonResponse({"thread": threading.get_ident(), "connection": id(connection.connection)})


def together(request: HttpRequest) -> JsonResponse:
    gate.wait()  # returns only when the other request is in its own view at the same time
    return JsonResponse({"thread": threading.get_ident()})


async def hops(request: HttpRequest) -> JsonResponse:
    first = await sync_to_async(threading.get_ident)()
    second = await sync_to_async(threading.get_ident)()
    return JsonResponse({"first": first, "second": second})


stream_closed = threading.Event()


def endless(request: HttpRequest) -> StreamingHttpResponse:
    async def events() -> Any:
        try:
            while True:
                yield b"data: tick\n\n"
                await asyncio.sleep(0.01)
        finally:
            stream_closed.set()  # as an SSE stream releases its slot and subscription

    return StreamingHttpResponse(events(), content_type="text/event-stream")


urlpatterns = [path("whoami", whoami), path("together", together), path("hops", hops), path("endless", endless)]


async def call(handler: PooledThreadASGIHandler, route: str) -> tuple[int, dict[str, Any]]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": f"/{route}", "raw_path": f"/{route}".encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}
    messages: list[dict[str, Any]] = []
    sent = asyncio.Event()
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            sent.set()

    await handler(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], json.loads(body)


@pytest.fixture
def handler() -> Any:
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
        yield PooledThreadASGIHandler(idle_threads=1)


def test_requests_in_turn_reuse_one_thread_and_its_connection(handler: PooledThreadASGIHandler) -> None:
    async def main() -> list[dict[str, Any]]:
        return [(await call(handler, "whoami"))[1] for _ in range(3)]

    answers = asyncio.run(main())
    assert len({a["thread"] for a in answers}) == 1
    assert len({a["connection"] for a in answers}) == 1  # kept (CONN_MAX_AGE), not reopened per request
    assert answers[0]["thread"] != threading.get_ident()


def test_requests_at_the_same_time_get_threads_of_their_own(handler: PooledThreadASGIHandler) -> None:
    async def main() -> list[tuple[int, dict[str, Any]]]:
        return list(await asyncio.gather(call(handler, "together"), call(handler, "together")))

    (status_1, one), (status_2, two) = asyncio.run(main())
    assert (status_1, status_2) == (200, 200)
    assert one["thread"] != two["thread"]  # on one thread, the barrier would time out


def test_idle_threads_past_the_budget_end(handler: PooledThreadASGIHandler) -> None:
    before = {t.ident for t in threading.enumerate()}

    async def main() -> None:
        await asyncio.gather(call(handler, "together"), call(handler, "together"))

    asyncio.run(main())
    assert len(handler._idle) == 1  # the budget (idle_threads=1): the second thread was let go
    for _ in range(100):
        made = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("weft-http")]
        if len(made) == 1:
            break
        threading.Event().wait(0.05)
    assert len(made) == 1


def test_thread_sensitive_work_of_an_async_view_stays_on_its_request_thread(handler: PooledThreadASGIHandler) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        return (await call(handler, "hops"))[1], (await call(handler, "whoami"))[1]

    hop, who = asyncio.run(main())
    assert hop["first"] == hop["second"] == who["thread"]


def test_an_application_started_from_inside_an_ended_request_gets_a_fresh_context() -> None:
    """Twisted starts a connection's application from whatever context its callback was scheduled
    in, which may be an ended request's: seen in CI as every websocket failing with
    "ThreadSensitiveContext has exited". ``FreshContext`` (around config.asgi's application) starts
    each one in an empty context."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["thread"] = await sync_to_async(threading.get_ident)()  # thread-sensitive, as consumers' DB calls

    async def main() -> tuple[Any, Any]:
        executor = ThreadPoolExecutor(1)
        async with ThreadSensitiveContext(executor=executor):
            leaked = contextvars.copy_context()  # what a callback scheduled during the request keeps
        executor.shutdown()
        loop = asyncio.get_running_loop()
        bare: dict[str, Any] = {}
        with pytest.raises(RuntimeError, match="ThreadSensitiveContext has exited"):
            await loop.create_task(app(bare, None, None), context=leaked)
        fresh: dict[str, Any] = {}
        await loop.create_task(FreshContext(app)(fresh, None, None), context=leaked)
        return bare.get("thread"), fresh.get("thread")

    bare, fresh = asyncio.run(main())
    assert bare is None and fresh is not None


def test_a_response_is_made_and_closed_in_one_hop_to_the_request_thread(handler: PooledThreadASGIHandler) -> None:
    """``request_started``, the view and ``request_finished`` (from ``response.close``) run once
    each, in that order, on the request's thread, before the response is sent."""
    seen: list[tuple[str, int]] = []

    def started(**kwargs: Any) -> None:
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs: Any) -> None:
        seen.append(("finished", threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        status, body = asyncio.run(call(handler, "whoami"))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert status == 200
    assert seen == [("started", body["thread"]), ("finished", body["thread"])]


def test_a_streamed_response_ends_when_the_client_disconnects(handler: PooledThreadASGIHandler) -> None:
    stream_closed.clear()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/endless", "raw_path": b"/endless", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    chunks: list[bytes] = []

    async def main() -> None:
        gone = asyncio.Event()
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if len(chunks) == 3:
                    gone.set()  # the client leaves after three events

        await asyncio.wait_for(handler(scope, receive, send), timeout=10)

    asyncio.run(main())
    assert chunks[:3] == [b"data: tick\n\n"] * 3
    assert stream_closed.wait(5)  # the stream's generator was closed, not left running
