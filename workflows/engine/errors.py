"""The exceptions a node raises (and the engine understands), shared by node types and host.

``NodeError`` is one failed attempt; ``retryable`` decides whether the node's ``retry`` policy may
try again (transport errors, timeouts, HTTP 5xx and 429 are retryable; 4xx and bad config are not).
``LimitExceeded`` is a ``NodeError`` with code ``limit_exceeded`` (a budget of WORKFLOW_FORMAT.md
"Limits" was crossed while running); never retryable.
"""

from __future__ import annotations

from typing import Any


class NodeError(Exception):
    """A node attempt failed. ``retryable`` decides whether the retry policy applies."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        code: str = "node_error",
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.detail = detail
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            data["detail"] = self.detail
        return data


class NodeTimeout(NodeError):
    """One attempt ran past the node's ``timeout``; retryable."""

    def __init__(self, message: str = "node attempt timed out") -> None:
        super().__init__(message, retryable=True, code="timeout")


class LimitExceeded(NodeError):
    """A budget was crossed at run time: code ``limit_exceeded``, never retried."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message, retryable=False, code="limit_exceeded", detail=detail)


class RunStopped(Exception):
    """Raised inside a node when a stop was requested; the node ends as ``stopped``."""


class RunDeadlineExceeded(Exception):
    """Raised inside a node when the run passed its deadline; the run ends as ``timeout``."""


class Park(Exception):
    """The node must wait longer than a worker should be held: park the run until ``wake_at``.

    ``state`` is whatever the node needs to continue (a task id, the poll count, ...); it is
    stored with the node run and handed back as ``NodeContext.state`` when the run resumes.
    ``wake_at`` is a Unix timestamp, or None to wait for an external wake-up (a webhook callback).
    """

    def __init__(self, *, wake_at: float | None, state: dict[str, Any]) -> None:
        super().__init__("park")
        self.wake_at = wake_at
        self.state = state
