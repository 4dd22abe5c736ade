"""The Redis channel layer on a busy machine: an idle socket's receive outlives the server's
blocking pop.

channels-redis waits for a message with ``BZPOPMIN`` and a 5 s server-side timeout, then asks
again. redis-py 8 gives every connection a 5 s socket timeout by default: on a loaded event loop
the server's empty answer is read after the client's deadline, the read raises ``TimeoutError``
and the consumer dies (the socket closed with 1011, its events never sent). The layer's
connections wait longer than the pop (``WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.conf import settings

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer runs with REDIS_URL")


def test_a_receive_survives_a_busy_loop_past_the_blocking_pop() -> None:
    async def scenario() -> dict:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        try:
            channel = await layer.new_channel()
            receiving = asyncio.create_task(layer.receive(channel))
            await asyncio.sleep(0.5)  # the blocking pop is on the wire
            time.sleep(layer.brpop_timeout + 0.5)  # the loop is busy while the server answers "nothing yet"
            await asyncio.sleep(0.5)
            assert not receiving.done(), receiving.exception()
            await layer.send(channel, {"type": "run.events", "events": [{"seq": 1}]})
            return await asyncio.wait_for(receiving, 10)
        finally:
            await layer.close_pools()

    assert asyncio.run(scenario()) == {"type": "run.events", "events": [{"seq": 1}]}
