"""A live Daphne (HTTP + websockets) in a subprocess, on a free port, using the test database.

pytest-django's ``live_server`` serves WSGI only; the websockets need ASGI. The subprocess gets
``DATABASE_URL`` pointing at the test database (SQLite: the test file, shared with this process;
PostgreSQL: the test database), so tests that use ``transactional_db`` see the same rows.
Runs started by pages execute in the server process, where the consumer gets their live events
over the in-memory channel layer; rows written by the test process reach it through the log poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.processes import daphne


class LiveServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.ws_url = url.replace("http://", "ws://", 1)


@pytest.fixture(scope="session")
def daphne_server(django_db_setup: Any) -> Iterator[LiveServer]:
    with daphne() as (_, url):
        yield LiveServer(url)
