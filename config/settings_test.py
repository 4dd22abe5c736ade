"""Settings for the test suite: the production settings with test keys supplied.

The keys go into the environment before the settings are read, so that every server and worker a
test starts (they inherit the environment) uses the same ones. Mail goes to Django's local-memory
outbox (``django.core.mail.outbox``); a test that needs a real server's mail sets
``EMAIL_BACKEND``/``EMAIL_FILE_PATH`` for that server.
"""

import os

os.environ.setdefault("SECRET_KEY", "weft-test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("WEFT_ENCRYPTION_KEY", "kKW6nKnmtJ0YDR3pDPTEpBzO6yj0iyXvvjuGMuqhWZs=")
# Sign-in failures counted by one test session (and its servers) never lock out another's.
os.environ.setdefault("WEFT_THROTTLE_PREFIX", f"test{os.getpid()}")

from config.settings import *  # noqa: E402,F403

# Runs started inside the test process execute in it: its test transaction is invisible to other
# processes. Servers and workers the tests start (on config.settings) keep the executor pool.
WEFT_EXECUTORS = 0
