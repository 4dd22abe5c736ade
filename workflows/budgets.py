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
        expression_bytes=settings.WEFT_MAX_EXPRESSION_BYTES,
        expression_depth=settings.WEFT_MAX_EXPRESSION_DEPTH,
        comprehension_depth=settings.WEFT_MAX_COMPREHENSION_DEPTH,
        comprehension_cost=settings.WEFT_MAX_COMPREHENSION_COST,
        loop_items=settings.WEFT_MAX_LOOP_ITEMS,
        output_bytes=settings.WEFT_NODE_MAX_OUTPUT_BYTES,
        workflow_depth=settings.WEFT_MAX_WORKFLOW_DEPTH,
        run_cpu_seconds=settings.WEFT_MAX_RUN_CPU_SECONDS,
        regex_pattern_bytes=settings.WEFT_MAX_REGEX_PATTERN_BYTES,
        regex_subject_bytes=settings.WEFT_MAX_REGEX_SUBJECT_BYTES,
    )
