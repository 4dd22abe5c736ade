"""``pretty_json``: a value as indented JSON (run inputs, outputs and errors are JSON)."""

from __future__ import annotations

import json
from typing import Any

from django import template

from runs.representations import elapsed_seconds

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def run_duration(run: Any) -> str:
    """A finished run's duration (``runs.representations.elapsed_seconds``), e.g. ``1.234 s``."""
    seconds = elapsed_seconds(run)
    return "" if seconds is None else f"{seconds:.3f} s"
