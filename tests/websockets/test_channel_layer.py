"""The consumer's live path in process: events from the channel layer, a jump in seq filled from
the log, duplicates dropped, close after run_finished. The log poll is slowed down so that only
the channel layer can deliver here."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from config.asgi import application
from runs import consumers
from runs.live import run_group
from runs.models import Run, RunMode
from runs.services import run_create, run_events_append
from runs.ws_tickets import ws_ticket_issue
from tests.web.factories import published_workflow

pytestmark = pytest.mark.django_db(transaction=True)


def run_async(coroutine: Any) -> Any:
    """Run a coroutine on its own thread and loop (another test may leave a loop on this thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def append(run: Run, *types: str) -> list[dict[str, Any]]:
    with transaction.atomic():
        return run_events_append(run=run, events=[(t, {}) for t in types])


def test_live_events_fill_gaps_from_the_log_and_drop_duplicates(teams: dict[str, Any], settings: Any) -> None:
    settings.WEFT_STREAM_POLL_SECONDS = 3600
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    run = run_create(team=teams["acme"], workflow=workflow, inputs={"name": "x"}, mode=RunMode.ASYNC)
    append(run, "run_started")
    ticket = ws_ticket_issue(team_id=teams["acme"].pk)

    async def scenario() -> list[dict[str, Any]]:
        layer = get_channel_layer()
        ws = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?after=0&ticket={ticket}")
        connected, _ = await ws.connect()
        assert connected
        got = [await ws.receive_json_from(timeout=5)]
        events = await database_sync_to_async(append)(run, "node_started", "node_finished", "node_started")
        # Only the last one arrives live: seq 2 and 3 must come from the log, before it.
        await layer.group_send(run_group(run.pk), {"type": "run.events", "events": events[2:]})
        got += [await ws.receive_json_from(timeout=5) for _ in range(3)]
        # A duplicate delivery changes nothing.
        await layer.group_send(run_group(run.pk), {"type": "run.events", "events": events[1:2]})
        await database_sync_to_async(Run.objects.filter(pk=run.pk).update)(status="succeeded")
        finished = await database_sync_to_async(append)(run, "run_finished")
        await layer.group_send(run_group(run.pk), {"type": "run.events", "events": finished})
        got.append(await ws.receive_json_from(timeout=5))
        closed = await ws.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"
        await ws.disconnect()
        return got

    got = run_async(scenario())
    assert [e["seq"] for e in got] == [1, 2, 3, 4, 5]
    assert got[-1]["type"] == "run_finished"


def test_refused_before_accept_for_another_team(teams: dict[str, Any]) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    run = run_create(team=teams["acme"], workflow=workflow, inputs={"name": "x"}, mode=RunMode.ASYNC)
    ticket = ws_ticket_issue(team_id=teams["other"].pk)

    async def scenario() -> tuple[bool, Any]:
        ws = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?ticket={ticket}")
        result = await ws.connect(timeout=5)
        await asyncio.sleep(0)
        return result

    connected, code = run_async(scenario())
    assert connected is False
    assert code == consumers.CLOSE_NOT_FOUND
