"""Request limits: per-token and per-team requests per minute, and the request body size.

- ``TokenRateThrottle`` and ``TeamRateThrottle`` are DRF throttles (``REST_FRAMEWORK
  ["DEFAULT_THROTTLE_CLASSES"]``), so every API view counts; a view opts out with
  ``throttle_classes = []``. Each is a fixed one-minute window counted with atomic cache operations
  (``cache.incr``, and ``cache.add`` for a window's first request: one round trip on Redis when
  ``REDIS_URL`` is set, one statement in the shared cache file otherwise, config.sharedcache), so N+k concurrent requests over a limit of
  N get exactly k refusals. A refusal is DRF's ``Throttled`` (429 with ``Retry-After`` = seconds
  to the next window), rendered by the view's own error handler (problem+json, or Dify's body).
  Limits: ``WEFT_RATE_LIMIT_PER_MINUTE`` (token) and ``WEFT_TEAM_RATE_LIMIT_PER_MINUTE`` (team),
  read per request; 0 turns one off.
- ``BodySizeLimitMiddleware`` answers 413 for a body over ``WEFT_MAX_BODY_BYTES`` before a view
  parses it (problem+json, or Dify's body under ``/v1/``).
- Concurrent blocking and streaming runs per team and per token are limited where runs are
  created (``runs.services.concurrency_check``, ``WEFT_MAX_CONCURRENT_RUNS`` and
  ``WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN``, ``RateLimited`` -> 429), atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiToken
from accounts.permissions import request_membership
from config.bodylimit import body_limit, too_large_body

WINDOW_SECONDS = 60


def window_count(key: str, *, now: float | None = None) -> tuple[int, int]:
    """Count one request against ``key`` in the current minute: ``(count so far, seconds left)``."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    cache_key = f"weft:rate:{key}:{window}"
    for _ in range(3):  # one write once the window exists; its first request adds it (one wins a race)
        try:
            count = cache.incr(cache_key)
            break
        except ValueError:
            cache.add(cache_key, 0, timeout=WINDOW_SECONDS + 5)
    else:
        raise RuntimeError(f"rate window {cache_key} could not be counted")
    left = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    return count, left


class _MinuteThrottle(BaseThrottle):
    """Hooks: ``limit()`` (0: off) and ``ident(request)`` (None: not counted)."""

    scope_name = ""

    def __init__(self) -> None:
        self._wait: int | None = None

    def limit(self) -> int:
        raise NotImplementedError

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = self.limit()
        ident = self.ident(request) if limit else None
        if ident is None:
            return True
        count, left = window_count(f"{self.scope_name}:{ident}")
        if count > limit:
            self._wait = left
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class TokenRateThrottle(_MinuteThrottle):
    scope_name = "token"

    def limit(self) -> int:
        return int(settings.WEFT_RATE_LIMIT_PER_MINUTE)

    def ident(self, request: Request) -> str | None:
        return str(request.auth.pk) if isinstance(request.auth, ApiToken) else None


class TeamRateThrottle(_MinuteThrottle):
    scope_name = "team"

    def limit(self) -> int:
        return int(settings.WEFT_TEAM_RATE_LIMIT_PER_MINUTE)

    def ident(self, request: Request) -> str | None:
        if isinstance(request.auth, ApiToken):
            return str(request.auth.team_id)
        membership = request_membership(request) if getattr(request, "user", None) is not None else None
        return str(membership.team_id) if membership is not None else None


def body_too_large_response(request: HttpRequest, limit: int) -> HttpResponse:
    body, content_type = too_large_body(request.path, limit)
    return HttpResponse(body, status=413, content_type=content_type.decode())


class BodySizeLimitMiddleware:
    """413 for a request body over ``WEFT_MAX_BODY_BYTES`` (by ``Content-Length``, else by reading it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit(request.path)
        if limit and request.method in ("POST", "PUT", "PATCH"):
            length = request.META.get("CONTENT_LENGTH")
            try:
                too_large = int(length) > limit if length else len(request.body) > limit
            except RequestDataTooBig:
                too_large = True
            except ValueError:
                too_large = False
            if too_large:
                return body_too_large_response(request, limit)
        return self.get_response(request)
