"""JSON from outside (API bodies, webhook payloads, callbacks, queue messages, the editor's saves),
parsed within a nesting budget and refused when a string cannot be stored.

Every JSON body the platform accepts passes ``json_input_check`` once, at the edge, so that nothing
downstream meets what no database stores or what the parser cannot hold:
- nesting deeper than ``WEFT_MAX_JSON_DEPTH`` (the standard library's parser recurses, and ~1,000
  levels is a ``RecursionError``; orjson renders at most 255);
- a NUL character (PostgreSQL refuses it in ``text`` and ``jsonb``);
- a lone surrogate such as ``"\\ud800"`` (no UTF-8 encoding exists for it: SQLite, PostgreSQL and
  every response renderer fail on it), in a value or in a key.
Each refusal is ``InvalidInput`` naming the place as a JSON pointer, raised before anything is written.

The URL and the headers are input too: ``UnstorableRequestMiddleware`` answers 400 to a NUL
(``%00``) in the path, the query string or a header value before any view looks a row up by it
(on PostgreSQL ``/hooks/abc%00`` was a 500). Form fields refuse NUL themselves (Django's
``ProhibitNullCharactersValidator``), and no decoded URL or form holds a lone surrogate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rest_framework.parsers import JSONParser

from config.errors import InvalidInput
from workflows.engine.limits import unstorable_errors


def json_value_errors(value: Any, *, max_depth: int | None = None, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """``workflows.engine.limits.unstorable_errors`` with the depth budget ``WEFT_MAX_JSON_DEPTH``
    (or ``max_depth``)."""
    limit = int(settings.WEFT_MAX_JSON_DEPTH) if max_depth is None else max_depth
    return unstorable_errors(value, max_depth=limit, prefix=prefix)


def json_input_check(value: Any, *, prefix: tuple[str, ...] = ()) -> Any:
    """``value`` when it can be stored and processed; ``InvalidInput`` naming every place otherwise."""
    errors = json_value_errors(value, prefix=prefix)
    if errors:
        raise InvalidInput("; ".join(f"{e['path']}: {e['message']}" for e in errors), errors=errors)
    return value


def _too_deep(path: str) -> InvalidInput:
    message = f"nested deeper than {settings.WEFT_MAX_JSON_DEPTH} levels (WEFT_MAX_JSON_DEPTH)"
    return InvalidInput(f"The JSON is {message}.", errors=[{"path": path, "message": message}])


def json_input_loads(text: str | bytes, *, path: str = "/") -> Any:
    """Parse JSON from outside and check it (``json_input_check``). Not JSON, or nested beyond
    what the parser holds: ``InvalidInput`` at ``path``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(path) from None
    except ValueError:  # UnicodeDecodeError included
        raise InvalidInput("The body is not JSON.", errors=[{"path": path, "message": "invalid JSON"}]) from None
    prefix = tuple(path.strip("/").split("/")) if path.strip("/") else ()
    return json_input_check(value, prefix=prefix)


class CheckedJSONParser(JSONParser):
    """DRF's JSON parser (the API's only one) with the checks above: a 400 naming the place
    instead of a 500 (``RecursionError``) or a value the database refuses after a row was written."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            value = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep("/") from None
        return json_input_check(value)


def _request_nul(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character (``path``, ``query`` or the header's name), or None."""
    if "\x00" in request.path:
        return "path"
    if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
        return "query"
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return key[5:].replace("_", "-").title()
    return None


class UnstorableRequestMiddleware:
    """400 (problem+json, naming the place) for a NUL character in the URL or a header."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def refusal(self, request: HttpRequest) -> JsonResponse | None:
        where = _request_nul(request)
        if where is None:
            return None
        message = "contains a NUL character"
        return JsonResponse({"type": "about:blank", "title": "Bad Request", "status": 400, "code": "invalid_input",
                             "detail": f"The request's {where} {message}.",
                             "errors": [{"path": f"/{where}", "message": message}]},
                            status=400, content_type="application/problem+json")

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return self.refusal(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        return self.refusal(request) or await self.get_response(request)
