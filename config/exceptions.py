"""The native API's error handler: every error is ``application/problem+json`` (RFC 9457).

``{"type", "title", "status", "detail", "code", "errors": [{"path", "message"}]}``. Dify-style
views use their own handler (``runs.dialects.dify``) through ``get_exception_handler``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from config.errors import DomainError, RateLimited, serializer_errors_flatten

PROBLEM_CONTENT_TYPE = "application/problem+json"

_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_input",
}

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests",
           500: "Internal Server Error"}


def error_normalize(exc: Exception) -> tuple[int, str, str, list[dict[str, str]], dict[str, str]] | None:
    """``(status, code, detail, errors, headers)`` for a known error, or None (let it be a 500)."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        return 404, "not_found", "Not found.", [], headers
    if isinstance(exc, DjangoPermissionDenied):
        return 403, "permission_denied", "Permission denied.", [], headers
    if isinstance(exc, DomainError):
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return exc.status, exc.code, exc.detail, exc.errors, headers
    if isinstance(exc, exceptions.APIException):
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), "error")
        errors: list[dict[str, str]] = []
        if isinstance(exc, exceptions.ValidationError):
            errors = serializer_errors_flatten(exc.detail)
            detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors) or "Invalid input."
        elif isinstance(exc, exceptions.ParseError):
            # A body that is not JSON: the whole document is at fault.
            detail = str(exc.detail)
            errors = [{"path": "/", "message": detail}]
        else:
            detail = str(exc.detail)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait)))
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return exc.status_code, code, detail, errors, headers
    return None


def problem_response(status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    normalized = error_normalize(exc)
    if normalized is None:
        return None
    status, code, detail, errors, headers = normalized
    return problem_response(status, code, detail, errors, headers)
