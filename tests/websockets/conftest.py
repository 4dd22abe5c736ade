"""Websocket test fixtures: the live Daphne server and the two-team data set."""

from tests.web.conftest import client_for, fast_password_hashing, teams  # noqa: F401
from tests.websockets.live_server import daphne_server  # noqa: F401
