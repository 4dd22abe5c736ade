"""Websocket consumers: one run's events (replay, then live) and the team's run status changes.

``/ws/runs/{run_id}/?after=<seq>`` joins the run's channel-layer group *first*, then replays the
event log after ``seq``, then forwards live events whose ``seq`` is above the last one sent; a live
event that jumps past ``last + 1`` is preceded by the missing ones read from the log. Because a run
may execute in a worker process that shares no channel layer with this one (the in-memory layer,
no Redis), the consumer also polls the log (``seq > last``, an indexed query) every
``POLL_SECONDS`` while the run is not finished: the log is the record, the layer only makes it
quicker. The socket closes after ``run_finished`` has been sent.

``/ws/runs/`` forwards ``{"type": "run.status", "runId", "status"}`` for the team's runs, from the
team group and from a cheap poll of recently changed runs (same reason).

Who may connect: a browser with the session (its current team; the Origin was checked by
``runs.routing``), or an API client with a ticket from ``POST /api/v1/ws-tickets``. A run of
another team, a malformed id and a missing run are the same refusal (close before accept).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiToken, Membership, Team
from accounts.permissions import SESSION_TEAM_KEY
from config.errors import NotFound
from runs.live import loop_note, run_group, team_group
from runs.models import Run
from runs.selectors import run_events, run_get
from runs.services import event_dict
from runs.ws_tickets import ws_ticket_redeem

POLL_SECONDS = 0.5
STATUS_POLL_SECONDS = 1.0
CLOSE_NOT_FOUND = 4404


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin1"))
    return {k: v[-1] for k, v in raw.items() if v}


@database_sync_to_async
def scope_team(scope: dict[str, Any]) -> tuple[Team | None, Any]:
    """The team the socket acts for and, for app-bound tokens, the only app it may see."""
    ticket = query_params(scope).get("ticket")
    if ticket:
        grant = ws_ticket_redeem(ticket)
        if grant is None:
            return None, None
        app_id = None
        if grant.get("token_id"):
            token = ApiToken.objects.filter(pk=grant["token_id"], team_id=grant["team_id"], revoked_at__isnull=True).first()
            if token is None:
                return None, None
            app_id = token.app_id
        return Team.objects.filter(pk=grant["team_id"]).first(), app_id
    # Session sockets only from a browser whose Origin was checked (routing.OriginCheck).
    user = scope.get("user")
    if not scope.get("weft_origin_ok") or user is None or not user.is_authenticated:
        return None, None
    memberships = Membership.objects.select_related("team").filter(user=user)
    session = scope.get("session")
    team_id = session.get(SESSION_TEAM_KEY) if session is not None else None
    membership = memberships.filter(team_id=team_id).first() if team_id else None
    membership = membership or memberships.order_by("created_at").first()
    return (membership.team if membership else None), None


class RunEventsConsumer(AsyncJsonWebsocketConsumer):
    """Replay a run's log after ``after``, then follow it live; close after ``run_finished``."""

    run: Run
    last_seq: int
    poll_task: asyncio.Task | None = None

    async def connect(self) -> None:
        self.lock = asyncio.Lock()
        self.finished = False
        self.group: str | None = None
        team, app_id = await scope_team(self.scope)
        run = await self.run_lookup(team, app_id, self.scope["url_route"]["kwargs"]["run_id"]) if team else None
        if run is None:
            await self.close(code=CLOSE_NOT_FOUND)  # before accept: the handshake is refused
            return
        self.run = run
        try:
            self.last_seq = max(int(query_params(self.scope).get("after", "0")), 0)
        except ValueError:
            self.last_seq = 0
        # Join first, then replay: an event published between the two is either in the replay
        # or arrives live, and the seq filter drops the duplicate.
        self.group = run_group(run.pk)
        loop_note(asyncio.get_running_loop())
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.catch_up()
        if not self.finished:
            self.poll_task = asyncio.create_task(self.poll())

    @database_sync_to_async
    def run_lookup(self, team: Team, app_id: Any, run_id: str) -> Run | None:
        try:
            return run_get(team=team, id=run_id, app_id=app_id)
        except NotFound:
            return None

    @database_sync_to_async
    def log_after(self, after: int, upto: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        # Status before events: a run seen final here has all its events in the read below.
        final = Run.objects.filter(pk=self.run.pk).values_list("status", flat=True).first()
        events = run_events(run=self.run, after=after)
        if upto is not None:
            events = [e for e in events if e.seq < upto]
        return [event_dict(e) for e in events], final in {"succeeded", "failed", "stopped", "timeout", None}

    async def send_events(self, events: list[dict[str, Any]]) -> None:
        """Send events in seq order, each once; close after ``run_finished``. Call under the lock."""
        for event in sorted(events, key=lambda e: e["seq"]):
            if self.finished or event["seq"] <= self.last_seq:
                continue
            await self.send_json(event)
            self.last_seq = event["seq"]
            if event["type"] == "run_finished":
                self.finished = True
                await self.close()

    async def catch_up(self) -> None:
        events: list[dict[str, Any]] = []
        final = False
        async with self.lock:
            while not self.finished:
                events, final = await self.log_after(self.last_seq)
                await self.send_events(events)
                if len(events) < 1000:
                    break
            if final and not self.finished and not events:
                # A finished run whose log has nothing more (or never got run_finished): done.
                self.finished = True
                await self.close()

    async def poll(self) -> None:
        while not self.finished:
            await asyncio.sleep(POLL_SECONDS)
            await self.catch_up()

    async def run_events(self, message: dict[str, Any]) -> None:
        """Live events from the channel layer; a jump in seq is filled from the log first."""
        events = message.get("events") or []
        if not events:
            return
        async with self.lock:
            first = min(e["seq"] for e in events)
            if first > self.last_seq + 1 and not self.finished:
                missing, _ = await self.log_after(self.last_seq, upto=first)
                await self.send_events(missing)
            await self.send_events(events)

    async def disconnect(self, code: int) -> None:
        self.finished = True
        if self.poll_task is not None:
            self.poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.poll_task
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)


class TeamRunsConsumer(AsyncJsonWebsocketConsumer):
    """The team's run status changes, for live run lists."""

    poll_task: asyncio.Task | None = None

    async def connect(self) -> None:
        self.group: str | None = None
        team, app_id = await scope_team(self.scope)
        if team is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.team = team
        self.app_id = app_id
        self.known: dict[str, str] = {}
        self.since = timezone.now()
        self.group = team_group(team.pk)
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
            | Q(pk__in=[k for k, v in self.known.items() if v in {"pending", "running", "waiting"}])
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
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
