"""Static files for the embedded default: Daphne serves no static files and there is no
WhiteNoise, so the UI's own CSS/JS (and the API docs' vendored assets) are served from the
staticfiles finders here, with a cache header. A deployment behind a web server may serve
``collectstatic``'s output instead; this view then simply is not reached."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe


@require_safe
def static_file(request: HttpRequest, path: str) -> FileResponse:
    try:
        found = finders.find(path)
    except SuspiciousFileOperation:
        found = None
    if not found or not Path(found).is_file():
        raise Http404("No such static file.")
    content_type, encoding = mimetypes.guess_type(found)
    response = FileResponse(open(found, "rb"), content_type=content_type or "application/octet-stream")  # noqa: SIM115
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
