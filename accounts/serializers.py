"""Serializer building blocks shared by the management APIs (accounts and workflows).

- Strict JSON fields: a string field refuses numbers, a boolean field refuses ``"true"`` and ``1``;
  the API speaks JSON, so a wrong JSON type is bad input (400 naming the field), not something
  to coerce.
- ``input_validate``: run an input serializer and return its validated data, or raise DRF's
  ``ValidationError``, which the problem+json handler flattens into ``errors`` with JSON-pointer
  paths (``/name``, ``/secrets/key``). A body field the serializer does not declare is refused by
  name (``/app: unknown field (did you mean appId?)``), never silently dropped (API.md).
- ``ProblemSerializer`` and ``problem_responses``: the error envelope, for the OpenAPI schema.
- ``ApiTokenAuthenticationScheme``: how the token authentication appears in the schema (either
  header works: ``Authorization: Bearer`` or ``X-API-Key``).
"""

from __future__ import annotations

import difflib
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string; numbers, booleans, objects and lists are refused rather than coerced."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true``/``false``; ``"true"``, ``1`` and friends are refused."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def input_validate(serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False,
                   refuse_unknown: bool = True) -> dict[str, Any]:
    """Validated data of ``serializer_class`` for ``data`` (a non-object body is a 400 at ``/``).
    Unknown top-level fields are a 400 naming each one (``refuse_unknown=False`` for query filters,
    where extra parameters such as cache busters are harmless)."""
    serializer = serializer_class(data=data, partial=partial)
    unknown = unknown_fields(serializer, data) if refuse_unknown else {}
    valid = serializer.is_valid()
    if unknown or not valid:
        errors = dict(serializer.errors) if not valid else {}
        raise serializers.ValidationError({**errors, **unknown})
    return dict(serializer.validated_data)


# Names other APIs use for a declared field (Dify's ``inputs`` is the native ``params``).
SYNONYMS = {"inputs": ("params", "payload"), "response_mode": ("mode",), "workflow_id": ("workflowId",),
            "app_id": ("appId",), "job_id": ("jobId",), "callback_url": ("callbackUrl",)}


def unknown_fields(serializer: serializers.Serializer, data: Any) -> dict[str, list[str]]:
    """``{name: ["unknown field ..."]}`` for each key of ``data`` the serializer does not declare."""
    if not hasattr(data, "keys"):
        return {}
    known = [name for name, field in serializer.fields.items() if not field.read_only]
    out = {}
    for name in list(data):
        if name in known:
            continue
        close = [f for f in SYNONYMS.get(str(name), ()) if f in known] or difflib.get_close_matches(
            str(name), known, n=1, cutoff=0.5)
        out[str(name)] = [f"unknown field (did you mean {close[0]}?)" if close else "unknown field"]
    return out


class ProblemErrorSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="JSON pointer to the offending field, e.g. /nodes/3/config/url")
    message = serializers.CharField()

    class Meta:
        ref_name = "ProblemError"


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every native-API error is answered."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ProblemErrorSerializer(many=True, required=False)

    class Meta:
        ref_name = "Problem"


_PROBLEM_DESCRIPTIONS = {
    400: "Invalid input; `errors` names the fields.",
    401: "Missing or invalid token.",
    403: "The token or role lacks the scope.",
    404: "No such object in your team.",
    409: "Conflict with the current state.",
}


def problem_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error statuses (401 and 403 are always added)."""
    wanted = sorted({401, 403, *statuses})
    return {
        status: OpenApiResponse(ProblemSerializer, description=_PROBLEM_DESCRIPTIONS.get(status, ""))
        for status in wanted
    }


class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Registered on import (the URL configuration imports this module through the API views)."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = ["BearerToken", "ApiKey"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer weft_<prefix>_<secret>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        # Either header is enough (OR), not both together.
        return [{"BearerToken": []}, {"ApiKey": []}]
