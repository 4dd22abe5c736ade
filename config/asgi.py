"""ASGI entry point: HTTP through Django behind the body limit (``config.bodylimit``), on kept
request threads (``config.handlers``), websockets
through Channels (``runs.routing``); a websocket on an unknown path is refused at the handshake.

Loading it brings up this web process's executor pool (``runs.pool``): however the web process
was started (``make run``, ``daphne config.asgi:application`` in production), tenant work runs in
executor processes it supervises, never in the process that serves requests.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver, re_path  # noqa: E402

from config.accepting import accept_one_at_a_time  # noqa: E402
from config.bodylimit import BodyLimitMiddleware, daphne_guard_if_serving, daphne_serving  # noqa: E402
from config.gctune import gc_tune  # noqa: E402
from config.logmask import daphne_access_log_mask  # noqa: E402

django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application

from django.conf import settings  # noqa: E402

from config.handlers import FreshContext, PooledThreadASGIHandler  # noqa: E402

django_asgi_app = PooledThreadASGIHandler(idle_threads=settings.WEFT_HTTP_IDLE_THREADS)
daphne_guard_if_serving()
if daphne_serving():
    daphne_access_log_mask()  # receipt tokens, hook keys and tickets never reach the access log
    accept_one_at_a_time()  # connections spread over the web processes sharing the socket

from runs.pool import pool_start  # noqa: E402
from runs.routing import websocket_urlpatterns  # noqa: E402


class UnknownPathConsumer(WebsocketConsumer):
    """Every other websocket path: refused (a 403 handshake), never a server error."""

    def connect(self) -> None:
        self.close(code=4404)


SETTLE_AFTER_SECONDS = 3.0
pool_start()  # warm executors start while the server binds; the first run waits for one if need be

application = FreshContext(ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app),
        "websocket": AuthMiddlewareStack(URLRouter([*websocket_urlpatterns,
                                                    re_path(r"", UnknownPathConsumer.as_asgi())])),
    }
))


def settle() -> None:
    """Every view imported, then start-up's objects frozen out of the collector's way (config.gctune:
    a full collection had paused a loaded process 0.3-0.4 s)."""
    get_resolver().url_patterns  # noqa: B018 - imports the views, to be frozen with the rest
    gc_tune()


if daphne_serving():
    # A few seconds after the server starts, not before: the process takes connections as soon as
    # it can (runweft's "running" and the spread of connections over its web processes wait for
    # that), and the collection before freezing holds the loop once, for well under a second.
    from twisted.internet import reactor  # noqa: E402 - Daphne installed its reactor already

    reactor.callLater(SETTLE_AFTER_SECONDS, settle)
