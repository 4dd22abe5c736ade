"""``manage.py runweft``: the embedded default in one process group.

Loads the demo team, starts a django-q2 cluster (async runs, schedules, the reaper), the queue
trigger consumer (``weftconsumers``) and Daphne
(HTTP + websockets), prints the URL, the demo login and fresh tokens, and stops both on Ctrl-C
or SIGTERM (what process managers send).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from workflows.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo and run Daphne plus a django-q2 cluster together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        env = {**os.environ, "WEFT_PUBLIC_URL": os.environ.get("WEFT_PUBLIC_URL", f"http://{host}:{port}")}
        if settings.WEFT_LOCAL_KEYS:
            # The children read the same generated keys from the data directory (config/localkeys.py).
            env.setdefault("WEFT_LOCAL_KEYS", "1")
        python = sys.executable
        signal.signal(signal.SIGTERM, _interrupt)  # stop the children like Ctrl-C does
        call_command("weftschedules")  # the cluster's periodic durable tick (reaper, schedules, batches)
        children = [
            subprocess.Popen([python, "manage.py", "qcluster"], env=env),
            # Queue triggers' consumer (idle while there are none; docs/queues.md).
            subprocess.Popen([python, "manage.py", "weftconsumers"], env=env),
            subprocess.Popen([python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"], env=env),
        ]
        try:
            demo = None if options["no_demo"] else demo_load(base_url=f"http://{host}:{port}")
            url = f"http://{host}:{port}/"
            self.stdout.write(self.style.SUCCESS(f"\nWeft is running at {url}"))
            self.stdout.write(f"  API docs:   {url}api/docs/")
            if demo:
                self.stdout.write(f"  demo login: {demo['login']} / {demo['password']}")
                self.stdout.write(f"  team token (all scopes): {demo['token']}")
                self.stdout.write(f"  app token (Dify/Coze dialects, run+read): {demo['appToken']}")
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
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
