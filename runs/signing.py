"""Standard Webhooks signatures (https://www.standardwebhooks.com/), both directions.

Outgoing: every callback the platform POSTs (batch completion) carries ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` made with the team's secret
(``Team.webhook_secret``, ``whsec_`` + base64), so a receiver verifies it with any Standard
Webhooks library. The signed bytes are exactly the bytes sent.

Incoming: ``/hooks/{trigger_key}`` verifies a request with the trigger's own secret; a bad
signature, missing headers or a timestamp more than five minutes off are all
``SignatureInvalid`` (answered 401).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.models import Team
from accounts.tokens import webhook_secret_new


class SignatureInvalid(Exception):
    """The request is not signed with the expected secret, or its timestamp is stale."""


def webhook_secret_usable(secret: str) -> bool:
    """A ``whsec_`` secret whose key is standard base64 (what every Standard Webhooks library decodes)."""
    if not secret or not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[len("whsec_"):], validate=True)) >= 16
    except (binascii.Error, ValueError):
        return False


def team_webhook_secret(team: Team) -> str:
    """The team's signing secret. A missing one, or one that is not standard base64 (teams created
    with a URL-safe secret, which receivers' Standard Webhooks libraries would decode to another
    key), is replaced once, before anything was ever signed with it."""
    if not webhook_secret_usable(team.webhook_secret):
        Team.objects.filter(pk=team.pk, webhook_secret=team.webhook_secret or "").update(
            webhook_secret=webhook_secret_new()
        )
        team.refresh_from_db(fields=["webhook_secret"])
    return team.webhook_secret


def signed_request(*, secret: str, payload: Any, msg_id: str | None = None,
                   timestamp: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers of a signed request (``Content-Type`` included)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def signature_verify(*, secret: str, body: bytes, headers: dict[str, str]) -> None:
    """Raise ``SignatureInvalid`` unless ``body`` is signed with ``secret`` within the tolerance."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise SignatureInvalid(str(exc) or "invalid signature") from None
