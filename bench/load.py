"""The load generator, run as its own process (``python -m bench.load``): no Django, stdlib only.

``--concurrency`` threads each keep one HTTP/1.1 connection open and send POSTs until
``--requests`` in all are done. Blocking mode times each request to its full response; stream
mode reads the SSE body and times the first event and the ``workflow_finished`` event. Prints
one JSON line: latencies (ms), requests/s, error count and a sample error.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit


class Client:
    def __init__(self, url: str, token: str, body: bytes) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Connection": "keep-alive"}
        self.body = body
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def _send(self) -> http.client.HTTPResponse:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", self.path, body=self.body, headers=self.headers)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def blocking(self) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        resp = self._send()
        data = resp.read()
        elapsed = time.perf_counter() - start
        if resp.getheader("Connection", "").lower() == "close" and self.conn is not None:
            self.conn.close()
            self.conn = None
        return elapsed, resp.status, data

    def stream(self) -> tuple[float, float, int, bytes]:
        """(seconds to the first event, seconds to workflow_finished, status, last data)."""
        start = time.perf_counter()
        resp = self._send()
        first = finished = float("nan")
        last = b""
        if resp.status != 200:
            return first, finished, resp.status, resp.read()
        while True:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                now = time.perf_counter() - start
                if first != first:
                    first = now
                last = line
                if b'"workflow_finished"' in line:
                    finished = now
                    break
        resp.close()
        if self.conn is not None:  # a streamed response may not be reusable: start clean
            self.conn.close()
            self.conn = None
        return first, finished, resp.status, last


def run_load(url: str, token: str, body: bytes, concurrency: int, requests: int, mode: str) -> dict[str, Any]:
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    firsts: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        client = Client(url, token, body)
        while next(counter) < requests:
            try:
                if mode == "stream":
                    first, finished, status, data = client.stream()
                    ok = status == 200 and finished == finished
                    with lock:
                        if ok:
                            firsts.append(first * 1e3)
                            latencies.append(finished * 1e3)
                        else:
                            errors.append(f"{status}: {data[:200]!r}")
                else:
                    elapsed, status, data = client.blocking()
                    with lock:
                        if status == 200:
                            latencies.append(elapsed * 1e3)
                        else:
                            errors.append(f"{status}: {data[:200]!r}")
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                client.conn = None

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"latencies_ms": latencies, "first_ms": firsts, "rps": len(latencies) / seconds, "seconds": seconds,
            "errors": len(errors), "error_sample": errors[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--body", required=True, help="JSON request body")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--mode", choices=["blocking", "stream"], default="blocking")
    args = parser.parse_args()
    result = run_load(args.url, args.token, args.body.encode(), args.concurrency, args.requests, args.mode)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
