"""Garbage collection of long-lived server processes: start-up's objects frozen, young ones
collected less often.

A web or executor process holds about 150 MB of objects from start-up (Django, DRF, the node
registry, CEL, the URLconf) that live as long as the process. Python's cyclic collector walks every
one of them at each full collection: measured under load (c=10, ``gc.callbacks``), a full
collection paused a web process for 0.3-0.4 s, a few times a minute, and the young collections (one
per 700 net allocations of container objects) took about 5% of its time. Such a pause is the p99 of
every request and stream in flight.

``gc_tune`` is called once a process has started (web processes: ``config.asgi``, three seconds after
Daphne starts serving; executors: ``runs.executor_process``, after their warm-up): one full collection, then ``gc.freeze()`` moves everything alive into a
permanent generation the collector no longer walks (reference counting still frees those objects;
only a cycle among them would stay), and the first generation's threshold becomes
``WEFT_GC_THRESHOLD`` allocations (default 10,000; Python's is 700). A request's garbage is freed by
reference counting as before; the collector still runs, on what was allocated since start-up.
``WEFT_GC_THRESHOLD=0`` leaves Python's collector as it is.
"""

from __future__ import annotations

import gc

from django.conf import settings


def gc_tune() -> bool:
    """Freeze what is alive now and raise the young threshold; False when disabled by the setting."""
    threshold = int(getattr(settings, "WEFT_GC_THRESHOLD", 10_000))
    if threshold <= 0:
        return False
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    return True
