"""The platform's outbound HTTP policy (``WEFT_HTTP_ALLOW_NETWORKS``, ``WEFT_HTTP_MAX_RESPONSE_BYTES``),
shared by the engine's HTTP nodes and the batch callbacks: one SSRF rule for every request Weft makes."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from workflows.engine.outbound import OutboundPolicy


@lru_cache(maxsize=8)
def _policy(allow: tuple[str, ...], max_bytes: int) -> OutboundPolicy:
    return OutboundPolicy(allow_networks=list(allow), max_response_bytes=max_bytes)


def http_policy() -> OutboundPolicy:
    return _policy(tuple(settings.WEFT_HTTP_ALLOW_NETWORKS), settings.WEFT_HTTP_MAX_RESPONSE_BYTES)
