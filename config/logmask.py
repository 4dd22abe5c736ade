"""Capability tokens kept out of the logs: every access-log and request-log line masks them.

Some URLs are their own credential: an async step's callback URL carries its receipt token
(``/api/v1/callbacks/{run}/{node}/{token}``), a webhook trigger's its hook key (``/hooks/{key}``),
the mailed links their signed tokens (``/verify/...``, ``/invitations/...``,
``/password/reset/{uid}/{token}/``), a websocket its ticket (``?ticket=``). Whoever reads a log
line holding one can complete a parked run with their own data or start the team's workflow, so
``capability_mask`` replaces those parts with ``***``:
- ``CapabilityMaskFilter`` on the log handlers (``LOGGING``): Django's request log ("Not Found:
  /hooks/..."), the runserver log and anything else that logs a path;
- ``daphne_access_log_mask`` wraps Daphne's access log (``config.asgi`` installs it when Daphne
  serves), whose lines are written to a stream, not through ``logging``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
_PATHS = [
    (re.compile(r"(/api/v1/callbacks/[^/?#\s\"]+/[^/?#\s\"]+/)[^/?#\s\"]+"), r"\1" + MASK),
    (re.compile(r"(/hooks/)[^/?#\s\"]+"), r"\1" + MASK),
    (re.compile(r"(/verify/)(?!resend/)[^/?#\s\"]+"), r"\1" + MASK),
    (re.compile(r"(/invitations/)(?![0-9a-fA-F-]{36}(?:[/?#\s\"]|$))[^/?#\s\"]+"), r"\1" + MASK),  # not API ids
    (re.compile(r"(/password/reset/)(?!sent/)[^/?#\s\"]+/[^/?#\s\"]+"), r"\1" + MASK),
]
_QUERY = re.compile(r"([?&](?:ticket|token|api_key|apikey|access_token|key)=)[^&#\s\"]*", re.IGNORECASE)


def capability_mask(text: str) -> str:
    """``text`` with the capability tokens of Weft's URLs replaced by ``***``."""
    if "/" not in text and "=" not in text:
        return text
    for pattern, replacement in _PATHS:
        text = pattern.sub(replacement, text)
    return _QUERY.sub(r"\1" + MASK, text)


def _masked(value: Any) -> Any:
    return capability_mask(value) if isinstance(value, str) else value


class CapabilityMaskFilter(logging.Filter):
    """Masks capability tokens in a record's message and its arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = capability_mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _masked(v) for k, v in record.args.items()}
        return True


def daphne_access_log_mask() -> None:
    """Wrap Daphne's access log so that the paths it writes are masked (idempotent)."""
    from daphne.access import AccessLogGenerator  # only where Daphne is installed and serving

    if getattr(AccessLogGenerator, "_weft_masked", False):
        return
    original = AccessLogGenerator.__call__

    def masked(self: AccessLogGenerator, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": capability_mask(details["path"])}
        original(self, protocol, action, details)

    AccessLogGenerator.__call__ = masked  # type: ignore[method-assign]
    AccessLogGenerator._weft_masked = True  # type: ignore[attr-defined]
