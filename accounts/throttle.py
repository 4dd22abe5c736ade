"""Sign-in throttling per account and per client address, for every password sign-in (the web
login and, when enabled, the admin's): an authentication backend, so nothing can sign in around it.

Failed attempts are counted in the ``throttle`` cache (Redis with ``REDIS_URL``, else a file cache
in the data directory that every process of the embedded default shares) in a window of
``WEFT_LOGIN_WINDOW_SECONDS``. Past ``WEFT_LOGIN_FAILURES_PER_ACCOUNT`` failures for one account,
or ``WEFT_LOGIN_FAILURES_PER_ADDRESS`` from one address, every attempt in that window is refused,
the right password included; the web login answers 429 with ``Retry-After``. Successful
sign-ins reset the account's count. Decision and trade-offs: docs/accounts.md.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def _cache() -> Any:
    return caches["throttle"]


def _keys(request: HttpRequest | None, username: str | None) -> list[tuple[str, int]]:
    keys = []
    if username:
        keys.append((f"login:account:{username.strip().lower()[:254]}", settings.WEFT_LOGIN_FAILURES_PER_ACCOUNT))
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if address:
        keys.append((f"login:address:{address}", settings.WEFT_LOGIN_FAILURES_PER_ADDRESS))
    return [(k, limit) for k, limit in keys if limit > 0]


def _window() -> tuple[int, int]:
    size = max(1, settings.WEFT_LOGIN_WINDOW_SECONDS)
    now = time.time()
    window = int(now // size)
    return window, max(1, int((window + 1) * size - now + 0.999))


def login_locked(request: HttpRequest | None, username: str | None) -> int:
    """Seconds until sign-in may be tried again for this account or address (0: not locked)."""
    window, left = _window()
    cache = _cache()
    for key, limit in _keys(request, username):
        if (cache.get(f"{key}:{window}") or 0) >= limit:
            return left
    return 0


def login_failed(request: HttpRequest | None, username: str | None) -> None:
    window, _ = _window()
    cache = _cache()
    for key, _limit in _keys(request, username):
        full = f"{key}:{window}"
        cache.add(full, 0, timeout=settings.WEFT_LOGIN_WINDOW_SECONDS + 5)
        try:
            cache.incr(full)
        except ValueError:
            cache.set(full, 1, timeout=settings.WEFT_LOGIN_WINDOW_SECONDS + 5)


def login_succeeded(request: HttpRequest | None, username: str | None) -> None:
    window, _ = _window()
    if username:
        _cache().delete(f"login:account:{username.strip().lower()[:254]}:{window}")


class ThrottledModelBackend(ModelBackend):
    """Django's model backend behind the sign-in throttle."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if login_locked(request, username):
            raise PermissionDenied("Too many failed sign-ins.")  # authenticate() stops at this backend
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failed(request, username)
        else:
            login_succeeded(request, username)
        return user
