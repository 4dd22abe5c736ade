"""Encryption of stored secrets (credentials) with Fernet, keyed by ``WEFT_ENCRYPTION_KEY``."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def secret_encrypt(data: dict[str, Any]) -> str:
    return _fernet(settings.WEFT_ENCRYPTION_KEY).encrypt(json.dumps(data).encode()).decode()


def secret_decrypt(token: str) -> dict[str, Any]:
    return json.loads(_fernet(settings.WEFT_ENCRYPTION_KEY).decrypt(token.encode()))
