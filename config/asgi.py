"""ASGI entry point: HTTP through Django behind the body limit (``config.bodylimit``), websockets
through Channels (``runs.routing``); a websocket on an unknown path is refused at the handshake."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import re_path  # noqa: E402

from config.bodylimit import BodyLimitMiddleware, daphne_guard_if_serving  # noqa: E402

django_asgi_app = get_asgi_application()
daphne_guard_if_serving()

from runs.routing import websocket_urlpatterns  # noqa: E402


class UnknownPathConsumer(WebsocketConsumer):
    """Every other websocket path: refused (a 403 handshake), never a server error."""

    def connect(self) -> None:
        self.close(code=4404)


application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app),
        "websocket": AuthMiddlewareStack(URLRouter([*websocket_urlpatterns,
                                                    re_path(r"", UnknownPathConsumer.as_asgi())])),
    }
)
