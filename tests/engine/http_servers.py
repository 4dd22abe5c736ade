"""Real HTTP servers on 127.0.0.x for the http node tests, and an in-memory host (services).

- ``ScriptedServer``: a ThreadingHTTPServer whose answers a test scripts per path (a ``Reply`` or a
  function of the recorded request); it records every request it received.
- ``seed_task_service``: the seed's Flask task service (tests/fixtures/seed_task_service.py) served
  as written with werkzeug's ``make_server``.
- ``FakeServices``: the host protocol of ``workflows.engine.nodes.http`` (credentials, webhook URL,
  stored callbacks, outbound policy) kept in memory; ``CallbackReceiver`` is the real HTTP endpoint
  ``POST /api/v1/callbacks/{run_id}/{node_id}/{receipt_token}`` that feeds it (first one wins).
- ``make_context``: a ``NodeContext`` for driving the node directly (no scheduler): ``resolve`` is
  the identity, ``evaluate`` the engine's real CEL evaluator, ``wait`` sleeps in short steps and
  raises ``RunStopped`` once ``stop`` is set, like the engine's interruptible wait.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.serving import make_server

from workflows.engine import templates
from workflows.engine.nodes.base import NodeContext, NullServices, RunStopped
from workflows.engine.outbound import OutboundPolicy


@dataclass
class Recorded:
    """One request a test server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Reply:
    """What a scripted server answers. ``body``: bytes, str, or anything JSON (sent as JSON)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    body_delay: float = 0.0  # after the headers, before the body
    stream_bytes: int = 0  # send this many bytes of b"x" without Content-Length, then close


Script = Reply | Callable[[Recorded], Reply] | list[Reply]


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        record = Recorded(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(record)
            script = owner.routes.get(split.path, owner.routes.get("*"))
            # A list answers its replies in turn, then repeats the last one.
            reply = (script.pop(0) if len(script) > 1 else script[0]) if isinstance(script, list) else script
        if callable(reply):
            reply = reply(record)
        if reply is None:
            reply = Reply(404, {"error": "no route"})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        headers = dict(reply.headers)
        body = reply.body
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(reply.status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not reply.stream_bytes:
                self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            if reply.body_delay:
                time.sleep(reply.body_delay)
            if reply.stream_bytes:
                chunk = b"x" * 65536
                sent = 0
                while sent < reply.stream_bytes:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class ScriptedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


class ScriptedServer:
    """A real HTTP server on ``host``; ``route(path, script)`` sets what it answers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Script] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.httpd = ScriptedHTTPServer((host, 0), _Handler)
        self.httpd.owner = self
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, script: Script) -> None:
        with self.lock:
            self.routes[path] = script

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def scripted_server(host: str = "127.0.0.1") -> Iterator[ScriptedServer]:
    server = ScriptedServer(host).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def seed_task_service() -> Iterator[str]:
    """The seed's Flask task service on a free port; yields its base URL."""
    from tests.fixtures.seed_task_service import app

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class FakeServices(NullServices):
    """The host side of the http node, in memory (``ports.Services``). ``can_park`` is handed to
    ``make_context`` (in a real run it comes from the run context)."""

    def __init__(
        self,
        *,
        credentials: dict[str, dict[str, str]] | None = None,
        allow_networks: list[str] | None = None,
        max_response_bytes: int = 10 * 1024 * 1024,
        can_park: bool = False,
    ) -> None:
        self.credentials = credentials or {}
        self.http_policy = OutboundPolicy(
            allow_networks=["127.0.0.1/32"] if allow_networks is None else allow_networks,
            max_response_bytes=max_response_bytes,
        )
        self.can_park = can_park
        self.callbacks: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.callback_base: str | None = None
        self.lock = threading.Lock()

    def credential(self, name: str) -> dict[str, str]:
        return self.credentials[name]

    def webhook_url(self, *, run_id: str, node_id: str, receipt_token: str) -> str:
        assert self.callback_base, "start a CallbackReceiver for webhook mode"
        return f"{self.callback_base}/api/v1/callbacks/{run_id}/{node_id}/{receipt_token}"

    def store_callback(self, run_id: str, node_id: str, receipt_token: str, content_type: str, body: Any) -> bool:
        """Store the first callback; later ones change nothing. Returns whether this one was stored."""
        with self.lock:
            key = (run_id, node_id, receipt_token)
            if key in self.callbacks:
                return False
            self.callbacks[key] = {"content_type": content_type, "body": body}
            return True

    def callback_result(self, *, run_id: str, node_id: str, receipt_token: str) -> dict[str, Any] | None:
        with self.lock:
            return self.callbacks.get((run_id, node_id, receipt_token))


@contextmanager
def callback_receiver(services: FakeServices) -> Iterator[ScriptedServer]:
    """A real callback endpoint on 127.0.0.1 storing into ``services`` (first callback wins)."""

    def receive(request: Recorded) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 6 or parts[:3] != ["api", "v1", "callbacks"]:
            return Reply(404, {"error": "not found"})
        content_type = request.header("Content-Type") or ""
        try:
            body = json.loads(request.body)
        except ValueError:
            body = request.body.decode(errors="replace")
        stored = services.store_callback(parts[3], parts[4], parts[5], content_type, body)
        return Reply(200, {"stored": stored})

    with scripted_server() as server:
        server.route("*", receive)
        services.callback_base = server.base
        yield server



def cel_evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    return templates.evaluate(templates.compile_expr(expr), names)


def make_context(
    config: Mapping[str, Any],
    services: Any,
    *,
    state: dict[str, Any] | None = None,
    timeout: float = 5,
    stop: threading.Event | None = None,
    receipt_token: str | None = None,
    run_id: str = "run-1",
    node_id: str = "call",
) -> NodeContext:
    stop = stop or threading.Event()
    waits: list[tuple[float, dict[str, Any] | None]] = []

    def wait(seconds: float, wait_state: dict[str, Any] | None) -> None:
        waits.append((seconds, wait_state))
        end = time.monotonic() + seconds
        while True:
            if stop.is_set():
                raise RunStopped()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    ctx = NodeContext(
        run_id=run_id,
        node_id=node_id,
        node_type="http",
        config=config,
        scope={},
        receipt_token=receipt_token or uuid.uuid4().hex,
        attempt=1,
        resolve=lambda value: value,
        evaluate=cel_evaluate,
        wait=wait,
        emit=lambda _event: None,
        services=services,
        can_park=getattr(services, "can_park", False),
        state=state,
        timeout=timeout,
    )
    ctx.waits = waits  # type: ignore[attr-defined]  # for assertions on what the node waited for
    return ctx
