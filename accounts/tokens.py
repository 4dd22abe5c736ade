"""API token secrets: generation and hashing. The secret is shown once and never stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PREFIX = "weft"


def token_generate() -> tuple[str, str, str]:
    """Return ``(full_token, prefix, secret_hash)``. ``full_token`` is ``weft_<prefix>_<secret>``."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{prefix}_{secret}", prefix, token_hash(secret)


def token_hash(secret: str) -> str:
    # Secrets are 256-bit random values, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def token_split(raw: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a presented token, or None when it is not of our form."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def token_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(secret), stored_hash)


def webhook_secret_new() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + standard base64 of 24 random bytes (the
    encoding every Standard Webhooks library decodes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
