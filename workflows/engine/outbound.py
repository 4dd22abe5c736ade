"""SSRF-safe outbound HTTP for node types: address policy, pinned connections, manual redirects, size cap.

Every request a workflow sends goes through ``outbound_request``. It

- accepts only ``http`` and ``https`` URLs;
- resolves the host itself and refuses loopback, private, link-local (169.254.0.0/16, cloud
  metadata), CGNAT (100.64.0.0/10), multicast, unspecified and reserved addresses (IPv4-mapped IPv6
  addresses are judged as the IPv4 address they carry) unless the address is inside one of the
  policy's ``allow_networks``. Because the check runs on the *resolved* address, numeric host forms
  (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``) are judged like
  ``127.0.0.1``;
- connects to the address it checked (the connection pool is keyed by the pinned IP, the ``Host``
  header and TLS SNI/hostname verification keep the original name), so a DNS answer that changes
  between check and connect cannot redirect the connection;
- follows redirects itself, at most ``max_redirects`` hops, checking every hop the same way; on a
  cross-origin hop it drops ``Authorization`` and the other credential headers and query parameters
  the caller marked as sensitive; 303 (and 301/302 for non-GET, as browsers do) become GET;
- streams the body and stops reading past ``max_response_bytes`` (permanent ``response_too_large``);
- refuses CR/LF/NUL in header names and values (permanent ``invalid_header``, naming the header).

Why our own adapter instead of ``requests_hardened.HTTPSession``: its filter only knows "allow
loopback or not", checks only the first DNS answer, and lets ``requests`` follow redirects. We keep
its technique (pin the resolved IP in ``build_connection_pool_key_attributes``, keep the hostname for
``Host``/SNI) and its extra blocked ranges, and add an allow-list of CIDRs and per-hop checks.

Sessions are pooled, one per policy (a hot path); cookies are never stored, since one session
serves many runs and teams, and the environment's proxy settings are ignored (a proxy would bypass
the address check).
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

from workflows.engine.errors import NodeError, NodeTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials: never forwarded to another origin on a redirect.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Weft's capability headers: the receipt token completes the node's callback and keys its
# idempotency (also sent as Idempotency-Key), the webhook URL contains it. Meant for the service
# the node calls, so dropped like credentials when a redirect leads to another origin.
CAPABILITY_HEADERS = frozenset({"weft-receipt-token", "idempotency-key", "weft-webhook-url"})
_CHUNK = 64 * 1024


@dataclass
class OutboundPolicy:
    """Where workflows may send requests, and how much they may read back.

    ``allow_networks``: CIDRs (``"10.0.0.0/8"``, ``"127.0.0.1/32"``) allowed although they are not
    public. The Django side builds it from ``WEFT_HTTP_ALLOW_NETWORKS`` and
    ``WEFT_HTTP_MAX_RESPONSE_BYTES`` and hands it to the engine as ``services.http_policy``.
    """

    allow_networks: list[str] = field(default_factory=list)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_redirects: int = 5

    def key(self) -> tuple[tuple[str, ...], int, int]:
        return (tuple(self.allow_networks), self.max_response_bytes, self.max_redirects)


@dataclass
class OutboundResponse:
    """A fully read response (the body already capped)."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    encoding: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", self.headers.get("content-type", ""))

    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")


class AddressRefused(requests.RequestException):
    """The destination resolved to an address the policy does not allow."""


def _blocked(ip: IPAddress) -> bool:
    """Whether ``ip`` is anything but a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)  # fec0::/10, deprecated site-local
        or any(ip in net for net in EXTRA_BLOCKED_NET_RANGES if net.version == ip.version)
    )


class AddressPolicy:
    """The address half of an ``OutboundPolicy``: parsed allow-list and the allow/refuse decision."""

    def __init__(self, allow_networks: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = [ipaddress.ip_network(n, strict=False) for n in allow_networks]

    def allowed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        for candidate in candidates:
            if any(candidate.version == net.version and candidate in net for net in self.networks):
                return True
        return not _blocked(ip)

    def resolve(self, hostname: str, port: int) -> str:
        """Resolve ``hostname`` and return the address to connect to; refuse if any answer is blocked."""
        if not hostname:
            raise requests.exceptions.InvalidURL("URL has no host")
        try:
            answers = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise requests.ConnectionError(f"cannot resolve host {hostname!r}") from exc
        addresses: list[IPAddress] = []
        for family, _type, _proto, _canon, sockaddr in answers:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        if not addresses:
            raise requests.ConnectionError(f"cannot resolve host {hostname!r}")
        # Every answer must pass: a name that resolves to a public and a private address is refused.
        for ip in addresses:
            if not self.allowed(ip):
                raise AddressRefused(f"destination address {ip} of host {hostname!r} is not allowed")
        first = addresses[0]
        return f"[{first}]" if first.version == 6 else str(first)


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to the checked address of the URL's host (same technique as requests-hardened)."""

    def __init__(self, policy: AddressPolicy, *, is_https: bool) -> None:
        super().__init__()
        self._policy = policy
        self._is_https = is_https

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        request.headers = CaseInsensitiveDict(request.headers or {})
        hostname = host_params["host"]
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        port = host_params["port"]
        if port is not None:
            host_header += f":{port}"
        request.headers["Host"] = host_header
        if self._is_https:
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        default_port = 443 if self._is_https else 80
        host_params["host"] = self._policy.resolve(hostname, port or default_port)
        return host_params, pool_kwargs


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _build_session(policy: OutboundPolicy) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(_NoCookies())
    address_policy = AddressPolicy(policy.allow_networks)
    session.mount("http://", PinnedAddressAdapter(address_policy, is_https=False))
    session.mount("https://", PinnedAddressAdapter(address_policy, is_https=True))
    return session


_sessions: dict[tuple[tuple[str, ...], int, int], requests.Session] = {}
_sessions_lock = threading.Lock()


def outbound_session(policy: OutboundPolicy) -> requests.Session:
    """The pooled session for ``policy`` (created once per distinct policy)."""
    key = policy.key()
    session = _sessions.get(key)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = _build_session(policy)
    return session


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse CR, LF or NUL in a header name or value (header injection)."""
    for name, value in headers.items():
        if any(ch in str(name) for ch in "\r\n\0") or any(ch in str(value) for ch in "\r\n\0"):
            raise NodeError(
                f"header {str(name)!r} contains a CR, LF or NUL character",
                code="invalid_header",
                detail={"header": str(name)},
            )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise NodeError(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}", code="invalid_url")
    if not parts.hostname:
        raise NodeError("the URL has no host", code="invalid_url")


def destination_refusal(url: str, policy: OutboundPolicy) -> str | None:
    """Why the policy would refuse to connect to ``url`` (its host resolved now), or None. For URLs
    stored to be called later (batch callbacks): refused when given, not at the first attempt. A
    host that does not resolve now is not refused (it may later; the delivery retries)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        AddressPolicy(policy.allow_networks).resolve(parts.hostname, port)
    except AddressRefused as exc:
        return f"refused by the outbound address policy: {exc}"
    except ValueError:
        return "the URL's port is not a number from 0 to 65535"
    except requests.RequestException:
        return None
    return None


def _strip_query(url: str, names: Iterable[str]) -> str:
    drop = {n.lower() for n in names}
    if not drop:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in drop]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _read_capped(response: requests.Response, limit: int, deadline: float | None) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise NodeError(
            f"response body is larger than the {limit}-byte limit", code="response_too_large"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.raw.stream(_CHUNK, decode_content=True):
        size += len(chunk)
        if size > limit:
            raise NodeError(f"response body is larger than the {limit}-byte limit", code="response_too_large")
        chunks.append(chunk)
        if deadline is not None and time.monotonic() > deadline:
            raise NodeTimeout("the response took longer than the node timeout")
    return b"".join(chunks)


def outbound_request(
    method: str,
    url: str,
    *,
    policy: OutboundPolicy | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    json_body: Any = None,
    has_body: bool = False,
    multipart: tuple[list[tuple[str, tuple[str, bytes, str]]], dict[str, str]] | None = None,
    timeout: float | None = 30,
    sensitive_headers: Iterable[str] = (),
    sensitive_params: Iterable[str] = (),
) -> OutboundResponse:
    """Send one request under ``policy`` and return the final (non-redirect) response, fully read.

    Raises ``NodeError``: permanent for refused URLs/addresses, bad headers, too many redirects and
    oversized bodies; retryable (``NodeTimeout`` or ``transport_error``) for timeouts and
    connection failures. ``timeout`` bounds each socket operation and the whole attempt.
    ``multipart``: ``([(field, (filename, bytes, mime type))], form fields)`` sends the body as
    ``multipart/form-data`` instead of JSON.
    """
    policy = policy or OutboundPolicy()
    session = outbound_session(policy)
    current_headers: dict[str, str] = {str(k): str(v) for k, v in (headers or {}).items()}
    check_headers(current_headers)
    drop_headers = CREDENTIAL_HEADERS | CAPABILITY_HEADERS | {h.lower() for h in sensitive_headers}
    drop_params = list(sensitive_params)
    deadline = time.monotonic() + timeout if timeout else None
    method = method.upper()
    send_body = has_body
    current_url = url
    current_params: Any = params
    for hop in range(policy.max_redirects + 1):
        _check_url(current_url)
        kwargs: dict[str, Any] = {}
        if send_body and multipart is not None:
            kwargs["files"], kwargs["data"] = multipart
        elif send_body:
            kwargs["json"] = json_body
        remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
        try:
            response = session.request(
                method,
                current_url,
                headers=current_headers,
                params=current_params,
                allow_redirects=False,
                stream=True,
                timeout=remaining,
                **kwargs,
            )
        except AddressRefused as exc:
            raise NodeError(str(exc), code="address_refused", detail={"url": _strip_query(current_url, drop_params)}) from None
        except requests.Timeout:
            raise NodeTimeout("the request timed out") from None
        except requests.exceptions.InvalidURL as exc:
            raise NodeError(f"invalid URL: {exc}", code="invalid_url") from None
        except requests.RequestException as exc:
            raise NodeError(f"transport error: {type(exc).__name__}", retryable=True, code="transport_error") from None
        try:
            location = response.headers.get("Location")
            if response.status_code in REDIRECT_STATUSES and location:
                if hop == policy.max_redirects:
                    raise NodeError(
                        f"more than {policy.max_redirects} redirects", code="too_many_redirects"
                    )
                next_url = urljoin(response.url, location)
                if _origin(next_url) != _origin(response.url):
                    current_headers = {k: v for k, v in current_headers.items() if k.lower() not in drop_headers}
                    next_url = _strip_query(next_url, drop_params)
                status = response.status_code
                if (status == 303 and method != "HEAD") or (status in (301, 302) and method not in ("GET", "HEAD")):
                    method = "GET"
                    send_body = False
                    current_headers = {
                        k: v for k, v in current_headers.items() if k.lower() not in ("content-type", "content-length")
                    }
                current_url = next_url
                current_params = None
                continue
            try:
                content = _read_capped(response, policy.max_response_bytes, deadline)
            except requests.RequestException as exc:
                if isinstance(exc, requests.Timeout | requests.exceptions.ConnectionError) and "timed out" in str(exc):
                    raise NodeTimeout("the response took longer than the node timeout") from None
                raise NodeError(f"transport error: {type(exc).__name__}", retryable=True, code="transport_error") from None
            except Exception as exc:  # urllib3 read errors (ReadTimeoutError, ProtocolError)
                if isinstance(exc, NodeError):
                    raise
                if "timed out" in str(exc).lower():
                    raise NodeTimeout("the response took longer than the node timeout") from None
                raise NodeError(f"transport error: {type(exc).__name__}", retryable=True, code="transport_error") from None
            return OutboundResponse(
                status=response.status_code,
                headers=dict(response.headers),
                content=content,
                url=response.url,
                encoding=response.encoding,
            )
        finally:
            response.close()
    raise NodeError(f"more than {policy.max_redirects} redirects", code="too_many_redirects")
