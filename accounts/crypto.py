"""Encryption of stored secrets (credentials) with Fernet, keyed by ``WEFT_ENCRYPTION_KEY``.

The key is its own setting (never derived from ``SECRET_KEY``). Keys listed in
``WEFT_ENCRYPTION_KEY_FALLBACKS`` still decrypt, so a key can be rotated: new writes use the
primary key.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in (key, *fallbacks)])


def _current() -> MultiFernet:
    return _fernet(settings.WEFT_ENCRYPTION_KEY, tuple(getattr(settings, "WEFT_ENCRYPTION_KEY_FALLBACKS", ())))


def secret_encrypt(data: dict[str, Any]) -> str:
    return _current().encrypt(json.dumps(data).encode()).decode()


def secret_decrypt(token: str) -> dict[str, Any]:
    return json.loads(_current().decrypt(token.encode()))
