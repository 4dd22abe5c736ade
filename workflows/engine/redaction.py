"""Redaction of secrets from what the engine records (outputs, errors, events, process data).

A secret can come back in another spelling than the one sent: a server echoing the query string
answers it URL-encoded (``a%2Fb%3D`` for ``a/b=``, or ``a+b`` for ``a b``), a body may carry it
base64-encoded, a JSON text holds it escaped. ``secret_forms`` is every such spelling, and
``redact`` replaces each (longest first, so a form containing another goes whole) with ``***``
in strings, dict keys and lists, however deep.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def secret_forms(secret: str) -> set[str]:
    """``secret`` and its URL-encoded (upper and lower case hex, ``+`` for spaces), base64
    (standard and URL-safe, padded and not) and JSON-escaped spellings."""
    if not secret:
        return set()
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in list(forms)}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if form}


@lru_cache(maxsize=256)
def _forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    forms: set[str] = set()
    for secret in secrets:
        forms |= secret_forms(secret)
    return tuple(sorted(forms, key=len, reverse=True))


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every form of every secret replaced by ``***``."""
    forms = _forms(tuple(sorted({s for s in secrets if s})))
    return _redact(value, forms) if forms else value


def _redact(value: Any, forms: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redact(k, forms): _redact(v, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, forms) for v in value]
    return value
