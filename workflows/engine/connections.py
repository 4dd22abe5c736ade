"""Outbound connections that are not HTTP: the address policy for database and broker URLs.

``db`` and ``queue`` nodes, queue triggers and the "test connection" action connect to hosts a
team names in a credential URL. They obey the same address policy as ``http``
(``workflows.engine.outbound.AddressPolicy``): the host is resolved here, every answer must be
allowed, and the connection is made to the checked address (pinned), so a DNS answer that changes
between the check and the connect cannot redirect it.

Errors are ``NodeError``s whose messages never contain the URL's password: drivers sometimes
quote the URL or the DSN, so every message is passed through ``scrub``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import requests

from workflows.engine.errors import NodeError
from workflows.engine.outbound import AddressPolicy, AddressRefused


@dataclass(frozen=True)
class ConnectionPolicy:
    """Where ``db``/``queue`` connections may go and how long connecting may take.

    ``allow_networks`` is the same allow-list as the HTTP policy (``WEFT_HTTP_ALLOW_NETWORKS``).
    """

    allow_networks: tuple[str, ...] = ()
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int | None
    username: str
    password: str
    path: str
    query: str


def url_parse(url: str) -> ParsedUrl:
    """Split a connection URL; a malformed one is a permanent ``invalid_url`` (without the URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NodeError("the credential's URL is malformed", code="invalid_url") from None
    return ParsedUrl(
        scheme=parts.scheme.lower(), host=parts.hostname or "", port=port,
        username=unquote(parts.username or ""), password=unquote(parts.password or ""),
        path=parts.path, query=parts.query,
    )


def address_check(host: str, port: int, policy: ConnectionPolicy) -> str:
    """Resolve ``host`` and return the address to connect to (IPv6 without brackets).

    Raises permanent ``address_refused`` when any answer is not allowed, retryable
    ``connection_error`` when the name does not resolve.
    """
    if not host:
        raise NodeError("the credential's URL has no host", code="invalid_url")
    try:
        pinned = AddressPolicy(policy.allow_networks).resolve(host, port)
    except AddressRefused as exc:
        raise NodeError(str(exc), code="address_refused", detail={"host": host}) from None
    except requests.RequestException as exc:
        raise NodeError(str(exc), retryable=True, code="connection_error", detail={"host": host}) from None
    return pinned.strip("[]")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def scrub(message: str, secrets: Iterable[str]) -> str:
    """``message`` with every secret (and any ``user:password@`` of a URL) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return re.sub(r"(?<=://)[^/@\s]*@", "***@", message)
