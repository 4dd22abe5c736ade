"""Benchmark-only URLconf: the product's routes plus ``POST /bench/bare``.

The bare endpoint is the floor a run endpoint is compared with: the same token authentication,
scope check and JSON parsing as the run APIs (DRF defaults from the product settings), answering
a canned copy of the real endpoint's response (``$WEFT_DATA_DIR/bare.json``, written by the
benchmark after one real request). Never shipped: only ``bench.settings`` uses this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

_body: list[Any] = []


def canned_body() -> Any:
    if not _body:
        _body.append(json.loads((Path(os.environ["WEFT_DATA_DIR"]) / "bare.json").read_text()))
    return _body[0]


class BareApi(APIView):
    """Token-authenticated, scope-checked, parses the body, returns the same JSON as the run."""

    required_scopes = "run"
    app_tokens = True  # the same app token as the run endpoint

    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            return Response({"detail": "bad body"}, status=400)
        return Response(canned_body())


urlpatterns = [
    path("bench/bare", BareApi.as_view(), name="bench-bare"),
    path("", include("config.urls")),
]
