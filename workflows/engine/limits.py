"""Budgets of WORKFLOW_FORMAT.md "Limits" as the engine sees them.

The engine imports nothing from Django: the host builds one ``Limits`` from its settings
(``config/settings.py``, ``WEFT_MAX_*``) and passes it to ``compile_graph``/``validate_graph`` and
in ``RunContext.limits``. The defaults here are the contract's defaults, used by engine tests.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "DEFAULT_LIMITS"]


@dataclass(frozen=True, slots=True)
class Limits:
    graph_nodes: int = 500  # nodes of a graph, loop bodies included (checked before anything else)
    graph_nesting: int = 8  # containers (loops) inside containers
    expression_bytes: int = 4096  # one {{ }} or bare CEL source, UTF-8
    expression_depth: int = 32  # brackets, member/index chain links and operator chains
    comprehension_depth: int = 2  # macros (map, filter, all, exists, exists_one) inside macros
    loop_items: int = 10_000
    output_bytes: int = 1_048_576  # one node's stored output (JSON)
    workflow_depth: int = 5  # sub-workflow runs inside sub-workflow runs
    run_cpu_seconds: float = 60.0  # evaluation CPU time (thread time) per run, all nodes together
    regex_pattern_bytes: int = 1024
    regex_subject_bytes: int = 1_048_576


DEFAULT_LIMITS = Limits()
