"""The engine's budgets (``workflows.engine.limits.Limits``) from the ``WEFT_MAX_*`` settings.

The engine never reads Django settings: validation, publish and every run get the limits from
here (``engine_limits()``), so a setting changed in the environment applies to all of them.
"""

from __future__ import annotations

from django.conf import settings

from workflows.engine.limits import Limits


def engine_limits() -> Limits:
    return Limits(
        graph_nodes=settings.WEFT_MAX_GRAPH_NODES,
        graph_nesting=settings.WEFT_MAX_GRAPH_NESTING,
    )
