"""One retry policy for everything that tries again: node retries (the engine), workflow-level
retries (``runs.endings``) and batch completion callbacks (``runs.batches``).

``RetryPolicy(count, interval, backoff, max_interval)``; ``delay(n)`` is the wait before retry
number ``n`` (1-based): ``fixed`` waits ``interval``; ``exponential`` waits ``interval * 2^(n-1)``;
``random`` waits a uniform draw in ``[0, interval * 2^(n-1)]`` (full jitter); every delay is
capped by ``max_interval`` when set. ``allows(n)``: retry number ``n`` may happen (``n <= count``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Backoff", "RetryPolicy"]


class Backoff(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    count: int = 0
    interval: float = 0.0
    backoff: Backoff = Backoff.FIXED
    max_interval: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, *,
                    default_backoff: Backoff = Backoff.FIXED) -> RetryPolicy | None:
        """The policy of a ``retry`` object (WORKFLOW_FORMAT.md; already schema-checked), or None
        for no object. Node retries default to ``fixed``, workflow retries to ``exponential``."""
        if not config:
            return None
        cap = config.get("max_interval")
        return cls(count=int(config.get("count", 0) or 0), interval=float(config.get("interval", 0) or 0),
                   backoff=Backoff(config.get("backoff") or default_backoff),
                   max_interval=float(cap) if cap is not None else None)

    def allows(self, retry: int) -> bool:
        return 1 <= retry <= self.count

    def delay(self, retry: int, *, rng: random.Random | None = None) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        interval = self.interval
        if self.backoff is not Backoff.FIXED:
            interval *= 2 ** (max(retry, 1) - 1)
        if self.backoff is Backoff.RANDOM:
            interval = (rng or random).uniform(0, interval)
        if self.max_interval is not None:
            interval = min(interval, self.max_interval)
        return interval
