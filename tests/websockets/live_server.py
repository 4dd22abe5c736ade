"""A live Daphne (HTTP + websockets) in a subprocess, on a free port, using the test database.

pytest-django's ``live_server`` serves WSGI only; the websockets need ASGI. The subprocess gets
``DATABASE_URL`` pointing at the test database (SQLite: the test file, shared with this process;
PostgreSQL: the test database), so tests that use ``transactional_db`` see the same rows.
Runs started by pages execute in the server process, where the consumer gets their live events
over the in-memory channel layer; rows written by the test process reach it through the log poll.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import daphne


class LiveServer:
    def __init__(self, url: str, mail_dir: Path) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.ws_url = url.replace("http://", "ws://", 1)
        self.mail_dir = mail_dir  # the server's mail, one file per message (Django's file backend)

    def mail_links(self, to: str) -> list[str]:
        """The links of every mail the server sent to ``to``, oldest first."""
        links = []
        for path in sorted(self.mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime):
            text = path.read_text()
            if f"To: {to}" in text:
                links += re.findall(r"https?://\S+", text)
        return links


@pytest.fixture(scope="session")
def daphne_server(django_db_setup: Any) -> Iterator[LiveServer]:
    mail_dir = Path(tempfile.mkdtemp(prefix="weft-mail-"))
    with daphne(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir)) \
            as (_, url):
        yield LiveServer(url, mail_dir)
