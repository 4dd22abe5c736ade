"""Django's ASGI handler with each request's thread taken from a pool instead of made for it.

Django's ``ASGIHandler`` runs a request's synchronous part (the middleware chain, the view, the
``request_started`` / ``request_finished`` receivers) in a thread of its own: it enters a fresh
``asgiref.sync.ThreadSensitiveContext`` per request, which starts a thread and joins it when the
request ends. That thread's database connection dies with it, so every request also opened and
closed its connection (on SQLite: open, register functions, PRAGMAs). Measured under load, thread
start and join plus the new connection were about a fifth of a web process's CPU per run
(docs/performance.md).

``PooledThreadASGIHandler`` keeps Django's handler and gives each request's
``ThreadSensitiveContext`` a one-thread executor taken from an idle list (asgiref >= 3.13 accepts
an executor it does not own). All of one request's thread-sensitive work still runs on one thread,
the only one that request uses; requests never share a thread at the same time. The thread and
its database connection outlive the request (``CONN_MAX_AGE``, with Django's health checks at each
request's start).

It also runs the middleware chain in its synchronous form, as under WSGI, in one hop to the
request's thread (``handle``: with ``request_started``, the request itself and ``response.close``
in the same hop). In its asynchronous form Django switches between the event loop and the thread
at every middleware that is only synchronous or only asynchronous, and at every hook of the
``MiddlewareMixin`` ones (about ten switches per request here). Every view of this project is
synchronous; a streaming response's asynchronous iterator (SSE) is still consumed on the event
loop (``ASGIHandler.send_response``), and an ``async def`` view would run through ``async_to_sync``
on the loop as under WSGI.

Every connection's application also starts in a fresh ``contextvars`` context (``FreshContext``,
around the whole ASGI application). Daphne starts the application of the next request on a
keep-alive connection, or of a websocket, from inside the previous response's ``send``, so the new
task inherited the previous request's context, its ``ThreadSensitiveContext`` included: a
websocket consumer's database call then failed with "ThreadSensitiveContext has exited" (asgiref
refuses calls into a context with an executor after it exited; without one, the leak went unseen).

Budget: at most ``WEFT_HTTP_IDLE_THREADS`` idle threads are kept per web process. A request that
finds none idle gets a new thread, as before (streams hold theirs while open, and they have their
own caps: docs/serving.md); when more than the budget are idle, the extra threads close their
database connections and end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix


class PooledThreadASGIHandler(ASGIHandler):
    """``ASGIHandler`` whose per-request thread comes from a pool of kept threads."""

    def __init__(self, *, idle_threads: int) -> None:
        base.BaseHandler.__init__(self)  # not ASGIHandler's: the chain is loaded in its sync form
        self.load_middleware(is_async=False)
        self.idle_threads = idle_threads
        self._idle: list[ThreadPoolExecutor] = []  # touched only on the event loop's thread

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="weft-http")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self._release(executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ``ASGIHandler.handle`` with the request's synchronous part in one hop to its thread.

        Django hops to the thread three times per request (the ``request_started`` receivers, the
        middleware chain and view, ``response.close``) and runs two tasks (the view, a listener for
        the client's disconnect). Here a response that is not streamed is made and closed in one hop
        (``request_started``, the request, the chain, ``close``, which sends ``request_finished``),
        then its bytes are sent: a client that left meanwhile cannot stop a synchronous view anyway,
        and the server drops what is sent to a closed connection. A streamed response (SSE, files)
        is sent as Django sends it, while listening for the client leaving, which ends the stream."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self._stream(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On the request's thread: the response, closed already unless it is streamed."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def _stream(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Django's sending of a streamed response: stopped when the client disconnects."""
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)),
                 asyncio.create_task(self._send_streamed(response, send))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                with contextlib.suppress(RequestAborted):  # the client left
                    task.result()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await sync_to_async(response.close, thread_sensitive=True)()

    async def _send_streamed(self, response: HttpResponseBase, send: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the client disconnected while it was sent
            await self.send_response(response, send)

    def _release(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.idle_threads:
            self._idle.append(executor)
            return
        executor.submit(connections.close_all)  # this thread's connection must not outlive it
        executor.shutdown(wait=False)


class FreshContext:
    """Run an ASGI application in a context of its own, empty: nothing of whatever request was
    being answered when the server started this one (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.app(scope, receive, send), context=contextvars.Context())
        await task  # cancelling this (the server does when the client leaves) cancels the task too
