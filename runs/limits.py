"""Request limits: per-token and per-team requests per minute, and the request body size.

- ``RequestRateThrottle`` is a DRF throttle (``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``), so
  every API view counts; a view opts out with ``throttle_classes = []``. It counts two fixed
  one-minute windows, the token's and the team's, with atomic cache operations (on Redis when
  ``REDIS_URL`` is set, ``cache.incr``, and ``cache.add`` for a window's first request; in the
  shared cache file otherwise, both windows in one statement, config.sharedcache), so N+k
  concurrent requests over a limit of N get exactly k refusals. A refusal is DRF's ``Throttled`` (429 with ``Retry-After`` = seconds
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


def window_counts(keys: list[str], *, now: float | None = None) -> list[tuple[int, int]]:
    """Count one request against each of ``keys`` in the current minute: ``(count so far, seconds
    left)`` for each. On the shared cache file all keys are counted in one write
    (``SharedFileCache.count_windows``); elsewhere (Redis) each is an ``incr`` (its window's first
    request also ``add``s it)."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    left = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    cache_keys = [f"weft:rate:{key}:{window}" for key in keys]
    count_windows = getattr(cache, "count_windows", None)
    if count_windows is not None:
        counts = count_windows(cache_keys, WINDOW_SECONDS + 5)
    else:
        counts = [_incr(key) for key in cache_keys]
    return [(count, left) for count in counts]


def _incr(cache_key: str) -> int:
    for _ in range(3):  # one write once the window exists; its first request adds it (one wins a race)
        try:
            return cache.incr(cache_key)
        except ValueError:
            cache.add(cache_key, 0, timeout=WINDOW_SECONDS + 5)
    raise RuntimeError(f"rate window {cache_key} could not be counted")


class RequestRateThrottle(BaseThrottle):
    """The request's token (``WEFT_RATE_LIMIT_PER_MINUTE``) and its team
    (``WEFT_TEAM_RATE_LIMIT_PER_MINUTE``, API tokens and signed-in members alike), each a one-minute
    window, counted together; 0 turns one off. Both are counted even when one refuses (as two DRF
    throttles would be), and the wait is the longer one."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        counted: list[tuple[str, int]] = []
        token_limit = int(settings.WEFT_RATE_LIMIT_PER_MINUTE)
        if token_limit and isinstance(request.auth, ApiToken):
            counted.append((f"token:{request.auth.pk}", token_limit))
        team_limit = int(settings.WEFT_TEAM_RATE_LIMIT_PER_MINUTE)
        if team_limit and (team := _team_ident(request)) is not None:
            counted.append((f"team:{team}", team_limit))
        if not counted:
            return True
        counts = window_counts([key for key, _ in counted])
        waits = [left for (count, left), (_, limit) in zip(counts, counted, strict=True) if count > limit]
        if waits:
            self._wait = max(waits)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _team_ident(request: Request) -> str | None:
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
