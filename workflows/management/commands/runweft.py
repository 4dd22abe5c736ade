"""``manage.py runweft``: the embedded default in one process group.

Binds the listening socket first (a taken port is a clear error and exit status 1, before the
demo or anything else is touched), loads the demo team (its tokens are kept across restarts,
``--reset-demo-tokens`` issues new ones), then starts a django-q2 cluster (async runs, schedules,
the reaper), the queue trigger consumer (``weftconsumers``) and one Daphne process per core (``WEFT_WEB_PROCESSES``, ``--web-processes``), all
serving that one socket (``daphne --fd N``: the kernel hands each connection to one of them;
on an IPv6 ``HOST`` one Daphne binds the address itself, as Daphne adopts IPv4 sockets only). Prints the URL, the demo login and tokens, and stops every child on Ctrl-C or SIGTERM
(what process managers send); if one child dies the others are stopped too and the exit status
is 1, so a process manager restarts the whole set.

The web processes share nothing in memory: the database (and its writer queue, config.sqlite),
the cache (config.sharedcache without Redis) and the event log (websockets and streams read it,
so a socket served by one process follows a run executed by another) are what they share.
"""

from __future__ import annotations

import errno
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.demo import demo_load

LISTEN_BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    """The listening socket on ``host:port``, inheritable by the web processes; CommandError if taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CommandError(f"HOST={host!r} is not an address this machine can listen on ({exc}).") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not SO_REUSEPORT: a second server must fail
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"Port {port} on {host} is already in use (another Weft or another program is listening there). "
                f"Stop it, or start on another port: make run PORT={port + 1}  (manage.py runweft --port {port + 1})."
            ) from exc
        if exc.errno == errno.EACCES:
            raise CommandError(f"Not allowed to listen on port {port} (ports below 1024 need privileges); "
                               "choose another with PORT=...") from exc
        raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


class Command(BaseCommand):
    help = "Load the demo and run Daphne (one process per core, one socket) plus a django-q2 cluster together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-processes", type=int, default=None,
                            help="Daphne processes sharing the socket (default WEFT_WEB_PROCESSES; 0: one per core)")
        parser.add_argument("--no-demo", action="store_true")
        parser.add_argument("--reset-demo-tokens", action="store_true",
                            help="revoke the kept demo tokens and issue new ones")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        sock = listen(host, port)  # first: a taken port must not touch the demo or the tokens
        processes = options["web_processes"]
        processes = settings.WEFT_WEB_PROCESSES if processes is None else processes
        processes = processes if processes > 0 else (os.cpu_count() or 1)
        shown_host = f"[{host}]" if ":" in host else host
        base = f"http://{shown_host}:{port}"
        env = {**os.environ, "WEFT_PUBLIC_URL": os.environ.get("WEFT_PUBLIC_URL", base)}
        if settings.WEFT_LOCAL_KEYS:
            # The children read the same generated keys from the data directory (config/localkeys.py).
            env.setdefault("WEFT_LOCAL_KEYS", "1")
        python = sys.executable
        signal.signal(signal.SIGTERM, _interrupt)  # stop the children like Ctrl-C does
        children: list[subprocess.Popen[bytes]] = []
        failed = False
        try:
            call_command("weftschedules")  # the cluster's periodic durable tick (reaper, schedules, batches)
            demo = None if options["no_demo"] else demo_load(base_url=base, reset_tokens=options["reset_demo_tokens"])
            children.append(subprocess.Popen([python, "manage.py", "qcluster"], env=env))
            # Queue triggers' consumer (idle while there are none; docs/queues.md).
            children.append(subprocess.Popen([python, "manage.py", "weftconsumers"], env=env))
            if sock.family == socket.AF_INET6:
                # Daphne adopts inherited IPv4 sockets only: on an IPv6 address one process binds it.
                processes = 1
                sock.close()
                children.append(subprocess.Popen(
                    [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"], env=env))
            for _ in range(processes if sock.family != socket.AF_INET6 else 0):
                children.append(subprocess.Popen(
                    [python, "-m", "daphne", "--fd", str(sock.fileno()), "config.asgi:application"],
                    env=env, pass_fds=(sock.fileno(),)))
            _wait_ready(host, port, children)
            url = f"{base}/"
            self.stdout.write(self.style.SUCCESS(f"\nWeft is running at {url} ({processes} web process"
                                                 f"{'es' if processes != 1 else ''}, one per core unless WEFT_WEB_PROCESSES)"))
            self.stdout.write(f"  API docs:   {url}api/docs/")
            if demo:
                self.stdout.write(f"  demo login: {demo['login']} / {demo['password']}")
                self.stdout.write(f"  team token (all scopes): {demo['token']}")
                self.stdout.write(f"  app token (Dify/Coze dialects, run+read): {demo['appToken']}")
                self.stdout.write("  (the demo tokens stay the same across restarts; --reset-demo-tokens issues new ones)")
                self.stdout.write(
                    f"  try: curl -s {url}v1/workflows/run -H 'Authorization: Bearer {demo['appToken']}' "
                    "-H 'Content-Type: application/json' "
                    "-d '{\"inputs\": {\"orderId\": \"A1\", \"amount\": 1200}, \"response_mode\": \"blocking\", \"user\": \"me\"}'"
                )
                for name, hook in demo["hooks"].items():
                    self.stdout.write(
                        f"  webhook of '{name}': curl -s -X POST {url.rstrip('/')}{hook} "
                        "-H 'Content-Type: application/json' -d '{\"orderId\": \"A7\", \"amount\": 2500}'"
                    )
            if demo and demo.get("queue"):
                self.stdout.write(
                    f"  queue demo: publish an order to RabbitMQ queue '{demo['queue']['orders']}', e.g. "
                    f"{python} -c \"import pika, json; c = pika.BlockingConnection(); c.channel().basic_publish('', "
                    f"'{demo['queue']['orders']}', json.dumps({{'orderId': 'Q1', 'amount': 42}})); c.close()\"; "
                    f"the notification arrives on '{demo['queue']['notifications']}'")
            self.stdout.write("Press Ctrl-C to stop.\n")
            self.stdout.flush()
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            failed = True
            self.stderr.write("A Weft process exited; stopping the others.")
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        if failed:
            raise CommandError("stopped because a child process exited", returncode=1)


def _wait_ready(host: str, port: int, children: list[subprocess.Popen[bytes]], timeout: float = 120.0) -> None:
    """Until the web processes answer HTTP (the socket accepts from the start; requests wait in its backlog)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(child.poll() is None for child in children):
        conn = http.client.HTTPConnection(host if host not in ("0.0.0.0", "::") else "127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/api/v1/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
