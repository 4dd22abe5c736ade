"""The request body limit (``WEFT_MAX_BODY_BYTES``) below Django, before anything is buffered.

Two layers, because the server buffers before the application sees a byte:

- ``BodyLimitMiddleware`` (ASGI, wraps the HTTP application): a ``Content-Length`` over the limit
  is answered 413 without reading the body; a body without one (chunked) is counted while it is
  read and, once past the limit, the application is told the client left (Django drops the
  request) and the 413 is sent. Works under any ASGI server.
- ``daphne_guard_install``: Daphne (Twisted) receives the whole body into a file and then queues
  all of it to the application at once, so a 300 MB upload became 300 MB of memory before any
  ASGI code ran. The guard refuses in Twisted itself: a declared length over the limit, or a
  chunked body once it passes the limit, is answered 413 at once, the rest discarded, the
  connection closed. It also stops Twisted from parsing form and multipart POST bodies into
  ``request.args`` (with the ``email`` package, Content-Type included, for every POST): Daphne
  never reads them, it hands the raw body to the application, so that was CPU spent on every
  request and a hostile multipart body parsed for nothing.

The 413 body is problem+json, or Dify's error body under ``/v1/`` (as ``runs.limits``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings

Scope = dict[str, Any]


# File uploads may be larger than other bodies: up to WEFT_UPLOAD_MAX_BYTES plus the multipart framing.
UPLOAD_PATHS = ("/v1/files/upload",)
COZE_RUN_PATHS = ("/run", "/stream_run", "/run/stream", "/async_run")
MULTIPART_OVERHEAD = 64 * 1024


def body_limit(path: str) -> int:
    """The body limit of a request to ``path`` (0: none)."""
    limit = int(settings.WEFT_MAX_BODY_BYTES)
    if limit and path.rstrip("/") in UPLOAD_PATHS:
        return max(limit, int(settings.WEFT_UPLOAD_MAX_BYTES) + MULTIPART_OVERHEAD)
    return limit


def _channel_path(request: Any) -> str:
    # While the body arrives Twisted has not set request.uri yet; the channel has the path.
    uri = getattr(request.channel, "_path", None) or b""
    return uri.split(b"?", 1)[0].decode("latin-1")


def too_large_body(path: str, limit: int) -> tuple[bytes, bytes]:
    """``(body, content type)`` of the 413 for ``path``."""
    detail = f"The request body is larger than {limit} bytes."
    if path.startswith("/v1/"):
        body: dict[str, Any] = {"code": "request_entity_too_large", "message": detail, "status": 413}
        return json.dumps(body).encode(), b"application/json"
    if path.rstrip("/") in COZE_RUN_PATHS:  # the Coze runtime's FastAPI body
        body = {"detail": {"error_code": "payload_too_large", "error_message": detail}}
        return json.dumps(body).encode(), b"application/json"
    body = {"type": "about:blank", "title": "Payload Too Large", "status": 413, "detail": detail,
            "code": "payload_too_large"}
    return json.dumps(body).encode(), b"application/problem+json"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Any, path: str, limit: int) -> None:
    body, content_type = too_large_body(path, limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        limit = body_limit(scope.get("path", "")) if scope["type"] == "http" else 0
        if scope["type"] != "http" or not limit:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, scope.get("path", ""), limit)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _send_413(send, scope.get("path", ""), limit)


class _Discard:
    """Where a refused request's remaining body goes."""

    closed = False

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> int:
        return 0

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        self.closed = True


def daphne_guard_install() -> None:
    """Patch Daphne's request class (once) to refuse oversized bodies while they arrive, and not to
    parse POST bodies Daphne never reads."""
    from daphne.http_protocol import WebRequest  # only under Daphne (see config.asgi)

    if getattr(WebRequest, "_weft_guarded", False):
        return
    got_length, content_chunk, process = WebRequest.gotLength, WebRequest.handleContentChunk, WebRequest.process

    def refuse(request: Any) -> None:
        request._weft_refused = True
        request.content = _Discard()
        path = _channel_path(request)
        body, content_type = too_large_body(path, body_limit(path))
        transport = request.channel.transport
        transport.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: " + content_type
                        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        transport.loseConnection()

    def guarded_got_length(self: Any, length: int | None) -> None:
        self._weft_received = 0
        limit = body_limit(_channel_path(self))
        if limit and length is not None and length > limit:
            refuse(self)
            return
        got_length(self, length)

    def guarded_content_chunk(self: Any, data: bytes) -> None:
        if getattr(self, "_weft_refused", False):
            return
        self._weft_received = getattr(self, "_weft_received", 0) + len(data)
        limit = body_limit(_channel_path(self))
        if limit and self._weft_received > limit:
            refuse(self)
            return
        content_chunk(self, data)

    def guarded_process(self: Any) -> Any:
        if getattr(self, "_weft_refused", False):
            return None
        return process(self)

    WebRequest.gotLength = guarded_got_length
    WebRequest.handleContentChunk = guarded_content_chunk
    WebRequest.process = guarded_process
    # A data descriptor: Twisted's ``Request.__init__`` assigns the flag, and the assignment is ignored.
    WebRequest._parsePOSTFormSubmission = property(lambda self: False, lambda self, value: None)
    WebRequest._weft_guarded = True


def daphne_serving() -> bool:
    """Whether this process is a Daphne server (it imported Daphne's server or its command line)."""
    return "daphne.server" in sys.modules or "daphne.cli" in sys.modules


def daphne_guard_if_serving() -> None:
    if daphne_serving():
        daphne_guard_install()
