"""The body limit on a real Daphne, from raw sockets: a declared 300 MB upload to /login/ and a
chunked body past the limit are answered 413 at once, and the server's memory does not grow with
what the client sends (measured as Daphne's RSS)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Process, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

LIMIT = 1024 * 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[tuple[Process, str]]:
    with daphne(WEFT_MAX_BODY_BYTES=str(LIMIT)) as (proc, url):
        yield proc, url


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _send_until_refused(port: int, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` until the server answers or closes; ``(response, bytes sent)``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    sent = 0
    sock.setblocking(False)
    response = b""
    try:
        for chunk in chunks:
            with contextlib.suppress(BlockingIOError):
                response += sock.recv(65536)
            if response:
                break
            try:
                sock.setblocking(True)
                sock.sendall(chunk)
                sock.setblocking(False)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        sock.close()
    return response, sent


def _problem(response: bytes) -> dict[str, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), response[:300]
    return json.loads(body)


def test_a_declared_300_mb_upload_is_refused_before_it_is_read(server: tuple[Process, str]) -> None:
    proc, url = server
    port = int(url.rsplit(":", 1)[1])
    before = rss(proc.pid)
    head = (b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(300 * MB).encode() + b"\r\n\r\n")
    started = time.monotonic()
    response, sent = _send_until_refused(port, head, (b"a" * MB for _ in range(300)))
    assert _problem(response)["code"] == "payload_too_large"
    assert sent < 100 * MB and time.monotonic() - started < 30
    assert rss(proc.pid) - before < 30 * MB


def test_a_chunked_body_past_the_limit_is_refused_while_it_arrives(server: tuple[Process, str]) -> None:
    proc, url = server
    port = int(url.rsplit(":", 1)[1])
    before = rss(proc.pid)
    head = (b"POST /v1/workflows/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"b" * (256 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    response, sent = _send_until_refused(port, head, (chunk for _ in range(1200)))  # up to 300 MB
    assert _problem(response)["code"] == "request_entity_too_large"  # Dify's body under /v1/
    assert sent < 100 * MB
    assert rss(proc.pid) - before < 30 * MB


def test_a_body_within_the_limit_still_arrives(server: tuple[Process, str]) -> None:
    import requests

    _, url = server
    response = requests.post(f"{url}/api/v1/apps", data=b"{" + b" " * (LIMIT // 2) + b"}",
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 401  # read and parsed far enough to ask for a token
    chunked = requests.post(f"{url}/api/v1/apps", data=iter([b"{", b" " * 1000, b"}"]),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert chunked.status_code == 401


def test_a_websocket_on_an_unknown_path_is_refused_not_an_error(server: tuple[Process, str]) -> None:
    import asyncio

    import websockets

    _, url = server

    async def attempt() -> int:
        try:
            async with websockets.connect(url.replace("http", "ws") + "/ws/nowhere/"):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt()) == 403
    assert "Traceback" not in server[0].log_tail()


def test_the_asgi_layer_refuses_under_any_server_without_reading_past_the_limit(settings: Any) -> None:
    """The ASGI middleware alone (another ASGI server, no Daphne guard): a declared length is refused
    without reading; a chunked body is read no further than the limit."""
    import asyncio

    from config.asgi import application

    settings.WEFT_MAX_BODY_BYTES = LIMIT

    async def call(headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[list[dict[str, Any]], int]:
        read = 0
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal read
            read += 1
            if read > chunks:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": b"x" * 65536, "more_body": read < chunks}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/login/", "raw_path": b"/login/", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1", "asgi": {"version": "3.0"}}
        await application(scope, receive, send)
        return sent, read

    sent, read = asyncio.run(call([(b"content-length", str(300 * MB).encode())], 4800))
    assert sent[0]["status"] == 413 and read == 0
    sent, read = asyncio.run(call([(b"transfer-encoding", b"chunked")], 4800))
    assert sent[0]["status"] == 413 and read == LIMIT // 65536 + 1


def test_a_malformed_multipart_body_reaches_the_application_not_twisted_s_form_parser(
        server: tuple[Process, str]) -> None:
    """Twisted parses POST form bodies for ``request.args`` (which Daphne never reads) and answers a
    malformed multipart body with its own bare 400 before the application sees it; the guard turns
    that parsing off, so the application answers (here: no token, Dify's 401 body)."""
    import requests

    _, url = server
    body = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nno closing boundary"
    response = requests.post(f"{url}/v1/files/upload", data=body, timeout=30,
                             headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    garbage = requests.post(f"{url}/v1/files/upload", data=b"\x00\xff not multipart at all", timeout=30,
                            headers={"Content-Type": "multipart/form-data"})
    assert garbage.status_code == 401
