"""Websocket routes (Channels), behind an Origin check.

A browser always sends ``Origin``: it must be the site's own origin, or one of
``CSRF_TRUSTED_ORIGINS``, compared like Django's CSRF check does for forms (scheme, host and
port: ``http://127.0.0.1:8001`` is another site than ``http://127.0.0.1:8000``), and the host must
be in ``ALLOWED_HOSTS``. Else the handshake is refused, so that another site (another port of the
same host included) cannot open a socket with the user's session. A client without ``Origin``
(not a browser) is let through but may only authenticate with a ticket
(``runs.consumers.scope_caller`` ignores its session).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import path

from runs.consumers import RunEventsConsumer, TeamRunsConsumer

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` with the default port filled in; None when malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    value = next((v for k, v in scope.get("headers", []) if k == name), None)
    return value.decode("latin1") if value is not None else None


def _socket_scheme(scope: dict[str, Any]) -> str:
    """``https`` for a socket over TLS (``wss``, or the proxy header of ``SECURE_PROXY_SSL_HEADER``)."""
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header = proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")
        if _header(scope, header) == proxy[1]:
            return "https"
    return "http"


def origin_allowed(scope: dict[str, Any], origin: str) -> bool:
    """Whether a browser at ``origin`` may open this socket (see the module docstring)."""
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    key = _origin_key(parsed.scheme, parsed.netloc) if parsed.scheme in _DEFAULT_PORTS else None
    if key is None:
        return False
    trusted = {_origin_key(t.scheme, t.netloc) for t in map(urlsplit, settings.CSRF_TRUSTED_ORIGINS) if t.scheme}
    if key in trusted:
        return True
    host = _header(scope, b"host") or ""
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    return key == _origin_key(_socket_scheme(scope), host)


class OriginCheck:
    """Refuse a foreign Origin; record in the scope whether a (valid) Origin was sent."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if origin is None:
            return await self.application({**scope, "weft_origin_ok": False}, receive, send)
        if not origin_allowed(scope, origin):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application({**scope, "weft_origin_ok": True}, receive, send)


websocket_urlpatterns: list = [
    path("ws/runs/", OriginCheck(TeamRunsConsumer.as_asgi())),
    path("ws/runs/<str:run_id>/", OriginCheck(RunEventsConsumer.as_asgi())),
]
