"""``manage.py loaddemo``: load the demo team (idempotent) and print its login and fresh tokens as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from workflows.demo import demo_load


class Command(BaseCommand):
    help = "Create the demo team, app and published workflows; print the login and fresh tokens."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(demo_load()))
