"""Fixtures for the run API tests: a live Daphne server and a django-q2 cluster on the test database,
and ``run_env`` (an app with a published workflow, app and team tokens, clients).

Reusable elsewhere (the UI tests may import them): ``live_server_url`` is a session-scoped Daphne
(``python -m daphne config.asgi:application``) on a free port serving the pytest-django test
database (``tests.support.processes.django_env`` points ``DATABASE_URL`` at it). Tests that talk to
it must use ``transactional_db`` (``run_env`` does) so that their rows are committed and visible
to the server. The server's SSE ping interval is ``LIVE_PING_SECONDS`` and its rate limits are
high; limits are tested in-process with ``override_settings``. ``qcluster`` starts
``manage.py qcluster`` once per session, on first use.
"""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from accounts.models import ALL_SCOPES, ApiToken, Team
from accounts.services import token_create
from accounts.tokens import token_split
from runs.models import Run
from tests.conftest import app_make, published_make, unique
from tests.support.processes import daphne, stop
from tests.support.processes import qcluster as start_qcluster
from workflows.models import App, Workflow

LIVE_PING_SECONDS = 0.5

# A greeting, then a delay (``seconds``), then the end: long enough to watch events arrive live.
DELAY_GRAPH: dict[str, Any] = {
    "inputs": {
        "name": {"type": "string", "required": True, "description": "Who to greet"},
        "amount": {"type": "number", "default": 1},
        "seconds": {"type": "number", "default": 0},
        "tier": {"type": "string", "enum": ["gold", "silver"], "default": "silver"},
    },
    "outputs": {"greeting": {"type": "string"}, "total": {"type": "number"}},
    "params": {},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "greet", "type": "transform", "name": "Greet",
         "config": {"mapping": {"greeting": "Hello {{ inputs.name }}", "total": "{{ double(inputs.amount) * 2.0 }}"}}},
        {"id": "wait", "type": "delay", "name": "Wait", "config": {"mode": "fixed", "seconds": "{{ inputs.seconds }}"}},
        {"id": "end", "type": "end",
         "config": {"outputs": {"greeting": "{{ greet.greeting }}", "total": "{{ greet.total }}"}}},
    ],
    "edges": [{"from": "start", "to": "greet"}, {"from": "greet", "to": "wait"}, {"from": "wait", "to": "end"}],
}


# What Dify clients must parse: a node skipped by ``run: skip`` (no events), a loop (its outputs a
# list, sent as ``{"output": [...]}``), four parallel branches from ``start``, and a node that fails
# under ``on_error: continue`` (Dify's ``exception``, counted in ``exceptions_count``).
FIDELITY_GRAPH: dict[str, Any] = {
    "inputs": {
        "xs": {"type": "array", "default": [1, 2, 3]},
        "note": {"type": "string", "title": "Note", "format": "paragraph", "maxLength": 2000, "default": ""},
    },
    "outputs": {"squares": {"type": "array"}, "left": {"type": "string"}},
    "params": {},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "skipped", "type": "transform", "run": "skip", "config": {"mapping": {"v": "never"}}},
        {"id": "each", "type": "loop", "name": "For each x", "config": {
            "items": "{{ inputs.xs }}",
            "body": {"nodes": [{"id": "square", "type": "transform", "config": {"mapping": {"v": "{{ item * item }}"}}}],
                     "edges": []},
            "output": "{{ square.v }}"}},
        {"id": "left", "type": "transform", "config": {"mapping": {"v": "L"}}},
        {"id": "broken", "type": "transform", "name": "Broken", "on_error": "continue",
         "config": {"mapping": {"v": "{{ 10 / (size(inputs.xs) - size(inputs.xs)) }}"}}},
        {"id": "end", "type": "end", "config": {"outputs": {"squares": "{{ each }}", "left": "{{ left.v }}"}}},
    ],
    "edges": [{"from": "start", "to": "skipped"}, {"from": "skipped", "to": "each"}, {"from": "start", "to": "left"},
              {"from": "start", "to": "broken"}, {"from": "each", "to": "end"}, {"from": "left", "to": "end"},
              {"from": "broken", "to": "end"}],
}


@pytest.fixture(scope="session")
def live_server_url(django_db_setup: Any) -> Iterator[str]:
    """Base URL of a Daphne serving the test database (session-scoped)."""
    with daphne(WEFT_SSE_PING_SECONDS=str(LIVE_PING_SECONDS), WEFT_COZE_PING_SECONDS=str(LIVE_PING_SECONDS),
                WEFT_RATE_LIMIT_PER_MINUTE="0",
                WEFT_TEAM_RATE_LIMIT_PER_MINUTE="0", WEFT_LOG_LEVEL="ERROR",
                WEFT_HTTP_ALLOW_NETWORKS="127.0.0.1/32") as (_, url):
        yield url


@pytest.fixture(scope="module")
def qcluster(django_db_setup: Any) -> Iterator[subprocess.Popen[Any]]:
    """A django-q2 cluster (``manage.py qcluster``) on the test database, for one module: it takes
    every queued task of this test process's database, so it must not outlive the module that asked
    for it (later modules run tasks themselves, count the queue, or start clusters of their own)."""
    proc = start_qcluster(2, WEFT_HTTP_ALLOW_NETWORKS="127.0.0.1/32")
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError(proc.log_tail())
    try:
        yield proc
    finally:
        stop(proc)


@dataclass
class RunEnv:
    team: Team
    other_team: Team
    app: App
    workflow: Workflow
    app_token: str  # bound to ``app``: the Dify and Coze dialects run its entry workflow
    team_token: str  # every scope, no app

    def app_token_row(self) -> ApiToken:
        """The ``ApiToken`` of ``app_token``: runs a test writes directly as started by it."""
        return ApiToken.objects.get(prefix=token_split(self.app_token)[0])

    def client(self, token: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token or self.app_token}")
        return client

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.app_token}", **extra}

    def session(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.headers(token))
        return session


def run_env_make(team: Team, other_team: Team, graph: dict[str, Any] | None = None) -> RunEnv:
    app = app_make(team, description="Greets people", tags=["test"])
    workflow = published_make(team, graph=copy.deepcopy(graph or DELAY_GRAPH), app=app)
    _, app_token = token_create(team=team, name=unique("app-token"), scopes=["run", "read"], app=app)
    _, team_token = token_create(team=team, name=unique("team-token"), scopes=list(ALL_SCOPES))
    return RunEnv(team=team, other_team=other_team, app=app, workflow=workflow, app_token=app_token,
                  team_token=team_token)


@pytest.fixture
def run_env(transactional_db: Any, team_a: Team, team_b: Team) -> RunEnv:
    return run_env_make(team_a, team_b)


def run_count() -> int:
    return Run.objects.count()


@dataclass
class Received:
    event: str
    data: str
    id: str | None
    at: float  # time.monotonic() when the frame arrived

    def json(self) -> Any:
        import json

        return json.loads(self.data)


def sse_read(response: requests.Response, *, until: Any = None) -> tuple[list[Received], bytes]:
    """Every SSE event of a streaming ``requests`` response, parsed by ``sseclient-py`` (a standard
    client) and stamped with its arrival time, and the raw bytes (pings without data are not
    dispatched by SSE clients); stops early when ``until(received)`` is true."""
    import sseclient

    raw = bytearray()

    def chunks() -> Iterator[bytes]:
        for chunk in response.iter_content(chunk_size=None):
            raw.extend(chunk)
            yield chunk

    out: list[Received] = []
    for event in sseclient.SSEClient(chunks()).events():
        item = Received(event=event.event, data=event.data, id=event.id, at=time.monotonic())
        out.append(item)
        if until is not None and until(item):
            break
    return out, bytes(raw)
