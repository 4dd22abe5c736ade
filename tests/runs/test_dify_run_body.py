"""The Dify run body's fast check (``dify_run_body``) gives exactly what ``DifyRunIn`` gives: the
same validated data for every body it accepts, the serializer's own error for every other."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.exceptions import ValidationError

from runs.dialects.dify import DifyRunIn, dify_run_body

BODIES: list[Any] = [
    {"inputs": {"a": 1}, "user": "u"},
    {"inputs": {"a": {"b": [1, None]}}, "user": "  padded  ", "response_mode": "streaming"},
    {"inputs": {}, "user": "u", "response_mode": "blocking", "files": []},
    {"inputs": {}, "user": "u", "files": [{"type": "image", "transfer_method": "remote_url", "url": "http://x"}]},
    {"inputs": {}, "user": "u", "extra": "ignored"},
    {"inputs": {}, "user": "x" * 255},
    {"inputs": {}, "user": "x" * 256},
    {"inputs": {}, "user": "   "},
    {"inputs": {}, "user": ""},
    {"inputs": {}, "user": 7},
    {"inputs": {}, "user": True},
    {"inputs": {}, "user": None},
    {"inputs": {}},
    {"user": "u"},
    {"inputs": [], "user": "u"},
    {"inputs": None, "user": "u"},
    {"inputs": {}, "user": "u", "response_mode": "nope"},
    {"inputs": {}, "user": "u", "response_mode": None},
    {"inputs": {}, "user": "u", "files": {}},
    {"inputs": {}, "user": "u", "files": None},
    [],
    "text",
]


def serializer(body: Any) -> tuple[str, Any]:
    s = DifyRunIn(data=body)
    return ("ok", dict(s.validated_data)) if s.is_valid() else ("error", s.errors)


def fast(body: Any) -> tuple[str, Any]:
    try:
        return "ok", dict(dify_run_body(body))
    except ValidationError as exc:
        return "error", exc.detail


@pytest.mark.parametrize("body", BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_the_fast_check_agrees_with_the_serializer(body: Any) -> None:
    assert fast(body) == serializer(body)
