"""Websocket tickets: API clients open ``/ws/runs/...?ticket=<t>`` instead of putting a token in a URL.

``POST /api/v1/ws-tickets`` (scope ``read``) returns a random ticket stored in the Django cache for
``TICKET_SECONDS``; the consumer redeems it once (a second use, or a use after expiry, is refused).
The ticket carries the team it was issued for, so the socket is scoped exactly like the token.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.cache import cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.permissions import request_team
from accounts.serializers import problem_responses

TICKET_SECONDS = 60
_PREFIX = "weft:ws-ticket:"


def ws_ticket_issue(*, team_id: Any, token_id: Any = None, user_id: Any = None) -> str:
    ticket = "wst_" + secrets.token_urlsafe(32)
    cache.set(_PREFIX + ticket, {"team_id": str(team_id), "token_id": str(token_id) if token_id else None,
                                 "user_id": user_id}, TICKET_SECONDS)
    return ticket


def ws_ticket_redeem(ticket: str) -> dict[str, Any] | None:
    """The ticket's grant, once: ``cache.add`` on a "used" marker makes redemption atomic."""
    if not ticket or not ticket.startswith("wst_") or len(ticket) > 100:
        return None
    grant = cache.get(_PREFIX + ticket)
    if grant is None or not cache.add(_PREFIX + "used:" + ticket, 1, TICKET_SECONDS * 2):
        return None
    cache.delete(_PREFIX + ticket)
    return grant


WsTicketOut = inline_serializer("WsTicket", {
    "ticket": serializers.CharField(),
    "expiresIn": serializers.IntegerField(help_text="Seconds the ticket stays valid; it is single use."),
})


class WsTicketApi(APIView):
    required_scopes = "read"
    app_tokens = True  # the sockets narrow an app-bound token's ticket to its app (runs.consumers)

    @extend_schema(
        operation_id="ws_tickets_create", tags=["runs"], request=None,
        responses={201: WsTicketOut, **problem_responses(429)},
        description="A short-lived, single-use ticket for the websockets: open "
                    "`/ws/runs/{run_id}/?after=<seq>&ticket=<ticket>` or `/ws/runs/?ticket=<ticket>`. "
                    "Never put the API token itself in a URL.",
    )
    def post(self, request: Request) -> Response:
        team = request_team(request)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        user_id = None if token else getattr(request.user, "pk", None)
        ticket = ws_ticket_issue(team_id=team.pk, token_id=token.pk if token else None, user_id=user_id)
        return Response({"ticket": ticket, "expiresIn": TICKET_SECONDS}, status=201)
