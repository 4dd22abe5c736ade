"""One fast JSON encoder for responses and events (orjson), with the standard library as the fallback.

``dumps`` gives compact UTF-8 JSON bytes. orjson encodes dicts, lists, str, int, float, bool,
None, UUIDs and datetimes itself (UTC as ``Z``, as DRF does); what it does not know goes through
``_default`` (Decimal -> float as DRF's encoder, lazy strings, sets, tuples' kin, dates); what
it refuses (integers past 64 bits, keys that are not strings) is encoded by the standard library
with the same defaults. ``FastJSONRenderer`` is DRF's JSON renderer on it (an ``indent`` asked
for in the Accept header still goes through DRF's own path).
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import JSONRenderer

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    if isinstance(obj, Promise):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__iter__"):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _Fallback(json.JSONEncoder):
    def default(self, obj: Any) -> Any:
        if isinstance(obj, datetime.datetime):
            text = obj.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return _default(obj)


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        if "not JSON serializable" in str(exc):
            raise
        return json.dumps(obj, cls=_Fallback, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


class FastJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return dumps(data)
