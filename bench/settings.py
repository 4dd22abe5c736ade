"""Benchmark-only settings: the product's settings with a URLconf that adds the bare endpoint.

Used only by the Daphne process ``bench.server`` starts (``DJANGO_SETTINGS_MODULE=bench.settings``);
the product's ``config.urls`` knows nothing about it.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
