"""Response headers Django 5.2 does not set itself: the Content-Security-Policy (``WEFT_CSP``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    """Add ``Content-Security-Policy: <WEFT_CSP>`` unless the view set one (empty: none)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.policy = settings.WEFT_CSP
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self._apply(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._apply(await self.get_response(request))

    def _apply(self, response: HttpResponse) -> HttpResponse:
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
