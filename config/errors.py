"""Domain errors raised by services and selectors; the API error handlers turn them into responses.

Each carries an HTTP status, a machine ``code`` and, for bad input, ``errors`` as
``[{"path": "/field", "message": "..."}]`` naming the fields.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "invalid"
    title = "Bad Request"

    def __init__(self, detail: str = "", *, errors: list[dict[str, str]] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.extra = extra


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not Found"


class Forbidden(DomainError):
    status = 403
    code = "permission_denied"
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class AppUnavailable(DomainError):
    """Nothing is published for the app (or it is disabled)."""

    status = 400
    code = "app_unavailable"
    title = "App unavailable"


class BudgetExceeded(DomainError):
    """A budget of WORKFLOW_FORMAT.md "Limits" that a request would cross (``errors`` names where)."""

    status = 400
    code = "limit_exceeded"
    title = "Limit exceeded"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Payload Too Large"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too Many Requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(detail or "Rate limit exceeded.")
        self.retry_after = retry_after


def serializer_errors_flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as a flat list of ``{"path", "message"}`` (JSON pointers)."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else f"/{key}"
            out.extend(serializer_errors_flatten(value, prefix + name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.extend({"path": prefix or "/", "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.extend(serializer_errors_flatten(item, f"{prefix}/{index}"))
    else:
        out.append({"path": prefix or "/", "message": str(detail)})
    return out


def team_owned(team: Any, obj: Any, what: str) -> Any:
    """The tenant guard of every service: ``obj`` (from a team-scoped selector) must belong to
    ``team``; anything else (another team's row, ``None``) is the same ``NotFound`` as a missing
    row, so a service never tells another team's object from one that does not exist."""
    if obj is None or getattr(obj, "team_id", None) != getattr(team, "pk", None):
        raise NotFound(f"{what} not found.")
    return obj
