"""Websocket consumers: one run's events (replay, then live) and the team's run status changes.

``/ws/runs/{run_id}/?after=<seq>`` follows the run through the same event cursor and shared feed
as SSE (``runs.cursor.follow``): subscribed to the run's feed and channel-layer group *first*, then
the log after ``seq`` is replayed, then live events follow, each once and in order, gaps filled
from the log; the socket closes after ``run_finished`` has been sent. Live events come from this
process (runs its executor pool executes), from the channel layer (other processes, with Redis)
and from the feed's one shared log poll per process (the in-memory layer reaches no other
process): the log is the record, the layer only makes it quicker.

``/ws/runs/`` forwards ``{"type": "run.status", "runId", "status"}`` for the team's runs, from the
team group and from a cheap poll of recently changed runs (same reason).

Who may connect: a browser with the session (its current team; the Origin was checked by
``runs.routing``), or an API client with a ticket from ``POST /api/v1/ws-tickets``. A run of
another team, a malformed id and a missing run are the same refusal (close before accept). Open
sockets count against the stream limits (``WEFT_MAX_STREAMS_PER_TOKEN`` / ``_PER_TEAM``): past
them the socket is accepted and closed at once with code 4429.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiToken, Membership, Team
from accounts.permissions import SESSION_TEAM_KEY
from config.errors import NotFound, RateLimited
from runs.cursor import StreamSlot, Subscription, feeds, follow, stream_slot
from runs.live import loop_note, run_group, team_group
from runs.models import ACTIVE_STATUSES, Run
from runs.selectors import run_get
from runs.ws_tickets import ws_ticket_redeem

STATUS_POLL_SECONDS = 1.0
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429


@dataclass
class Caller:
    """Who a socket acts for: the team, the only app an app-bound token may see, and who counts
    against the stream limits (the token, or the signed-in user)."""

    team: Team
    app_id: Any = None
    token_id: Any = None
    user_id: Any = None

    def slot(self) -> StreamSlot:
        return stream_slot(team_id=self.team.pk, token_id=self.token_id, user_id=self.user_id)


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin1"))
    return {k: v[-1] for k, v in raw.items() if v}


@database_sync_to_async
def scope_caller(scope: dict[str, Any]) -> Caller | None:
    """Who the socket acts for, or None (refused)."""
    ticket = query_params(scope).get("ticket")
    if ticket:
        grant = ws_ticket_redeem(ticket)
        if grant is None:
            return None
        app_id = None
        if grant.get("token_id"):
            token = ApiToken.objects.filter(pk=grant["token_id"], team_id=grant["team_id"], revoked_at__isnull=True).first()
            if token is None:
                return None
            app_id = token.app_id
        team = Team.objects.filter(pk=grant["team_id"]).first()
        return Caller(team, app_id, token_id=grant.get("token_id"), user_id=grant.get("user_id")) if team else None
    # Session sockets only from a browser whose Origin was checked (routing.OriginCheck).
    user = scope.get("user")
    if not scope.get("weft_origin_ok") or user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("team").filter(user=user)
    session = scope.get("session")
    team_id = session.get(SESSION_TEAM_KEY) if session is not None else None
    membership = memberships.filter(team_id=team_id).first() if team_id else None
    membership = membership or memberships.order_by("created_at").first()
    return Caller(membership.team, user_id=user.pk) if membership else None


async def slot_or_close(consumer: AsyncJsonWebsocketConsumer, caller: Caller) -> StreamSlot | None:
    """A stream slot, or the socket accepted and closed with 4429 (a client can read that code)."""
    try:
        return caller.slot()
    except RateLimited:
        await consumer.accept()
        await consumer.close(code=CLOSE_TOO_MANY)
        return None


class RunEventsConsumer(AsyncJsonWebsocketConsumer):
    """Replay a run's log after ``after``, then follow it live; close after ``run_finished``."""

    run: Run
    group: str | None = None
    slot: StreamSlot | None = None
    subscription: Subscription | None = None
    task: asyncio.Task | None = None

    async def connect(self) -> None:
        caller = await scope_caller(self.scope)
        run = await self.run_lookup(caller, self.scope["url_route"]["kwargs"]["run_id"]) if caller else None
        if caller is None or run is None:
            await self.close(code=CLOSE_NOT_FOUND)  # before accept: the handshake is refused
            return
        self.run = run
        try:
            after = max(int(query_params(self.scope).get("after", "0")), 0)
        except ValueError:
            after = 0
        self.slot = await slot_or_close(self, caller)
        if self.slot is None:
            return
        # Subscribe first, then replay: an event published between the two is either in the replay
        # or arrives live, and the cursor drops the duplicate.
        self.subscription = feeds.subscribe(run.pk, after)
        self.group = run_group(run.pk)
        loop_note(asyncio.get_running_loop())
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.task = asyncio.create_task(self.forward(after))

    @database_sync_to_async
    def run_lookup(self, caller: Caller, run_id: str) -> Run | None:
        try:
            return run_get(team=caller.team, id=run_id, app_id=caller.app_id)
        except NotFound:
            return None

    async def forward(self, after: int) -> None:
        assert self.subscription is not None
        async for batch in follow(self.run.pk, after=after, subscription=self.subscription, idle=STATUS_POLL_SECONDS):
            for event in batch:
                await self.send_json(event)
        await self.close()

    async def run_events(self, message: dict[str, Any]) -> None:
        """Live events from the channel layer (any process): into the same cursor as the rest."""
        if self.subscription is not None:
            self.subscription.push(message.get("events") or [])

    async def disconnect(self, code: int) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.subscription is not None:
            feeds.unsubscribe(self.subscription)
        if self.slot is not None:
            self.slot.release()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)


class TeamRunsConsumer(AsyncJsonWebsocketConsumer):
    """The team's run status changes, for live run lists."""

    poll_task: asyncio.Task | None = None

    slot: StreamSlot | None = None

    async def connect(self) -> None:
        self.group: str | None = None
        caller = await scope_caller(self.scope)
        if caller is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.slot = await slot_or_close(self, caller)
        if self.slot is None:
            return
        self.team = caller.team
        self.app_id = caller.app_id
        self.known: dict[str, str] = {}
        self.since = timezone.now()
        self.group = team_group(self.team.pk)
        loop_note(asyncio.get_running_loop())
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.poll_task = asyncio.create_task(self.poll())

    async def status_send(self, run_id: str, status: str) -> None:
        if self.known.get(run_id) == status:
            return
        self.known[run_id] = status
        await self.send_json({"type": "run.status", "runId": run_id, "status": status})

    async def run_status(self, message: dict[str, Any]) -> None:
        if self.app_id is not None and not await self.run_in_app(message["run_id"]):
            return
        await self.status_send(str(message["run_id"]), message["status"])

    @database_sync_to_async
    def run_in_app(self, run_id: str) -> bool:
        return Run.objects.filter(pk=run_id, team=self.team, app_id=self.app_id).exists()

    @database_sync_to_async
    def changed(self) -> list[tuple[str, str]]:
        # Runs created, started or finished since the last poll (with overlap), plus runs still
        # active: a handful of rows, on indexed columns.
        since = self.since - timedelta(seconds=2)
        self.since = timezone.now()
        qs = Run.objects.filter(team=self.team).filter(
            Q(created_at__gte=since) | Q(started_at__gte=since) | Q(finished_at__gte=since)
            | Q(pk__in=[k for k, v in self.known.items() if v in ACTIVE_STATUSES])
        )
        if self.app_id is not None:
            qs = qs.filter(app_id=self.app_id)
        return [(str(pk), status) for pk, status in qs.values_list("pk", "status")[:200]]

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(STATUS_POLL_SECONDS)
            for run_id, status in await self.changed():
                await self.status_send(run_id, status)

    async def disconnect(self, code: int) -> None:
        if self.poll_task is not None:
            self.poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.poll_task
        if self.slot is not None:
            self.slot.release()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
