"""Websocket routes (Channels), behind an Origin check.

A browser always sends ``Origin``: it must be one of ``ALLOWED_HOSTS`` (or
``CSRF_TRUSTED_ORIGINS``), else the handshake is refused, so that another site cannot open a
socket with the user's session. A client without ``Origin`` (not a browser) is let through but
may only authenticate with a ticket (``runs.consumers.scope_caller`` ignores its session).
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.urls import path

from runs.consumers import RunEventsConsumer, TeamRunsConsumer


class OriginCheck(OriginValidator):
    """Refuse a foreign Origin; record in the scope whether a (valid) Origin was sent."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, [*settings.ALLOWED_HOSTS, *settings.CSRF_TRUSTED_ORIGINS])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = next((v for k, v in scope.get("headers", []) if k == b"origin"), None)
        if origin is None:
            return await self.application({**scope, "weft_origin_ok": False}, receive, send)
        from urllib.parse import urlparse

        try:
            parsed = urlparse(origin.decode("latin1"))
        except UnicodeDecodeError:
            parsed = None
        if parsed is None or not self.validate_origin(parsed):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application({**scope, "weft_origin_ok": True}, receive, send)


websocket_urlpatterns: list = [
    path("ws/runs/", OriginCheck(TeamRunsConsumer.as_asgi())),
    path("ws/runs/<str:run_id>/", OriginCheck(RunEventsConsumer.as_asgi())),
]
