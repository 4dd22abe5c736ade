"""Endpoints the demo workflows call, so the demo works out of the box with no outside service.

``POST /demo/risk`` and ``POST /demo/email`` accept any JSON and answer what they "delivered".
They hold nothing and reach nothing; they exist only so the HTTP nodes of the demo have a target.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def _delivered(request: HttpRequest, channel: str) -> JsonResponse:
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        return JsonResponse({"title": "Bad Request", "status": 400, "detail": "body must be JSON"}, status=400,
                            content_type="application/problem+json")
    return JsonResponse({"delivered": True, "channel": channel, "received": payload,
                         "receipt": request.headers.get("Weft-Receipt-Token", "")})


@csrf_exempt
@require_POST
def demo_risk(request: HttpRequest) -> JsonResponse:
    return _delivered(request, "risk")


@csrf_exempt
@require_POST
def demo_email(request: HttpRequest) -> JsonResponse:
    return _delivered(request, "email")
