"""``manage.py weftconsumers``: consume the queues and streams of enabled queue triggers.

Runs until SIGTERM or Ctrl-C (what process managers send), then stops consuming and lets the
broker redeliver whatever was not acknowledged. Start several for more throughput or redundancy
(``workflows.queue_consumer``).
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from workflows.queue_consumer import ConsumerProcess


class Command(BaseCommand):
    help = "Consume the queues and Redis streams of enabled queue triggers (one run per message)."

    def handle(self, *args: Any, **options: Any) -> None:
        process = ConsumerProcess(settings)

        def stop(signum: int, frame: Any) -> None:
            process.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"weftconsumers {process.name}: serving queue triggers")
        self.stdout.flush()
        process.serve()
