"""The one event cursor and the shared feed (``runs.cursor``) used by SSE and websockets, and the
open-stream limits per token and team."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.db import transaction

from accounts.models import ALL_SCOPES
from accounts.services import token_create
from config.asgi import application
from runs import consumers
from runs.cursor import EventCursor, feeds
from runs.models import Run, RunMode
from runs.services import run_create, run_events_append
from runs.ws_tickets import ws_ticket_issue
from tests.conftest import client_with_token, published_make, unique


def ev(seq: int, type_: str = "node_started") -> dict[str, Any]:
    return {"seq": seq, "type": type_, "data": {}, "createdAt": ""}


def test_the_cursor_takes_each_event_once_in_order_and_stops_at_a_gap() -> None:
    cursor = EventCursor("r", after=2)
    assert [e["seq"] for e in cursor.take([ev(4), ev(3), ev(2), ev(1)])] == [3, 4]
    assert cursor.take([ev(4), ev(3)]) == [] and not cursor.gap  # duplicates
    assert [e["seq"] for e in cursor.take([ev(5), ev(7)])] == [5] and cursor.gap  # 6 must come from the log
    assert cursor.last == 5 and not cursor.finished
    cursor.gap = False
    assert [e["seq"] for e in cursor.take([ev(6), ev(7, "run_finished"), ev(8)])] == [6, 7]
    assert cursor.finished and cursor.take([ev(8)]) == []


@pytest.mark.django_db
def test_the_cursor_fills_from_the_log_and_finishes_on_a_run_over_without_run_finished(team_a: Any) -> None:
    run = run_create(team=team_a, workflow=published_make(team_a), inputs={"name": "x"}, mode=RunMode.ASYNC)
    run_events_append(run=run, events=[("run_started", {}), ("node_started", {}), ("node_finished", {})])
    cursor = EventCursor(run.pk, after=1)
    assert [e["seq"] for e in cursor.read_log()] == [2, 3] and not cursor.finished
    Run.objects.filter(pk=run.pk).update(status="failed")
    assert cursor.read_log() == [] and cursor.finished


@pytest.mark.django_db
def test_one_feed_per_run_and_one_poll_for_every_quiet_feed(team_a: Any, django_assert_num_queries: Any,
                                                            settings: Any) -> None:
    settings.WEFT_STREAM_POLL_SECONDS = 0
    workflow = published_make(team_a)
    runs = [run_create(team=team_a, workflow=workflow, inputs={"name": str(i)}, mode=RunMode.ASYNC) for i in range(5)]
    for run in runs:
        run_events_append(run=run, events=[("run_started", {})])
    subs = [feeds.subscribe(run.pk) for run in runs for _ in range(4)]  # 4 readers of each of 5 runs
    try:
        assert len({id(sub.feed) for sub in subs}) == 5
        with django_assert_num_queries(2):  # statuses + events, for all 20 readers
            assert feeds.poll_once() == 5
        assert all(sub.buffer and sub.buffer[0][0]["seq"] == 1 for sub in subs)
    finally:
        for sub in subs:
            feeds.unsubscribe(sub)
    assert all(str(run.pk) not in feeds.feeds for run in runs)


@pytest.mark.django_db(transaction=True)  # closing a response closes the connection
def test_sse_streams_past_the_token_limit_are_429_with_retry_after(team_a: Any, settings: Any) -> None:
    settings.WEFT_MAX_STREAMS_PER_TOKEN = 2
    settings.WEFT_MAX_STREAMS_PER_TEAM = 3
    run = run_create(team=team_a, workflow=published_make(team_a), inputs={"name": "x"}, mode=RunMode.ASYNC)
    client = client_with_token(team_a, ["read"])
    url = f"/api/v1/runs/{run.pk}/events"
    open_ = [client.get(url) for _ in range(2)]
    assert [r.status_code for r in open_] == [200, 200]
    refused = client.get(url)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert "token" in refused.json()["detail"]
    other = client_with_token(team_a, ["read"])  # another token of the team: the team has room for one
    kept = other.get(url)
    assert kept.status_code == 200
    assert other.get(url).status_code == 429  # the team's limit now
    open_[0].close()
    again = client.get(url)
    assert again.status_code == 200
    for response in (*open_[1:], kept, again):
        response.close()


def run_async(coroutine: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


@pytest.mark.django_db(transaction=True)
def test_websockets_past_the_token_limit_are_closed_with_4429(team_a: Any, settings: Any) -> None:
    settings.WEFT_MAX_STREAMS_PER_TOKEN = 1
    run = run_create(team=team_a, workflow=published_make(team_a), inputs={"name": "x"}, mode=RunMode.ASYNC)
    with transaction.atomic():
        run_events_append(run=run, events=[("run_started", {})])
    token, _ = token_create(team=team_a, name=unique("ws"), scopes=list(ALL_SCOPES))

    async def scenario() -> tuple[Any, Any]:
        first = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?ticket={ws_ticket_issue(team_id=team_a.pk, token_id=token.pk)}")
        assert (await first.connect(timeout=5))[0]
        assert (await first.receive_json_from(timeout=5))["seq"] == 1
        second = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/?ticket={ws_ticket_issue(team_id=team_a.pk, token_id=token.pk)}")
        connected = await second.connect(timeout=5)
        closed = await second.receive_output(timeout=5)
        await first.disconnect()
        await second.disconnect()
        return connected, closed

    connected, closed = run_async(scenario())
    assert connected[0] is True and closed == {"type": "websocket.close", "code": consumers.CLOSE_TOO_MANY}
