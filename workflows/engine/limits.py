"""Budgets of WORKFLOW_FORMAT.md "Limits" as the engine sees them.

The engine imports nothing from Django: the host builds one ``Limits`` from its settings
(``config/settings.py``, ``WEFT_MAX_*``) and passes it to ``compile_graph``/``validate_graph`` and
in ``RunContext.limits``. The defaults here are the contract's defaults, used by engine tests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Limits", "DEFAULT_LIMITS", "CpuBudget", "json_size_over", "unstorable_errors"]


@dataclass(frozen=True, slots=True)
class Limits:
    graph_nodes: int = 500  # nodes of a graph, loop bodies included (checked before anything else)
    graph_nesting: int = 8  # containers (loops) inside containers
    expression_bytes: int = 4096  # one {{ }} or bare CEL source, UTF-8
    expression_depth: int = 32  # brackets, member/index chain links and operator chains
    comprehension_depth: int = 2  # macros (map, filter, all, exists, exists_one) inside macros
    comprehension_cost: int = 4_000_000  # items ** (nesting + 1) of the longest list a comprehension may see
    loop_items: int = 10_000
    output_bytes: int = 1_048_576  # one node's stored output (JSON)
    workflow_depth: int = 5  # sub-workflow runs inside sub-workflow runs
    run_cpu_seconds: float = 60.0  # evaluation CPU time (thread time) per run, all nodes together
    regex_pattern_bytes: int = 1024
    regex_subject_bytes: int = 1_048_576


DEFAULT_LIMITS = Limits()


class CpuBudget:
    """Evaluation CPU time of one run (``Limits.run_cpu_seconds``): the scheduler thread's own time
    (inline nodes, resolving configs, records) plus the thread time of every node execution on the
    pool. Checked when a node finishes, so a node that crosses it fails ``limit_exceeded``; one
    evaluation that never returns (native code holding the GIL) is the execution tier's CPU rlimit's
    to stop."""

    def __init__(self, seconds: float) -> None:
        self.limit = seconds
        self.start = time.thread_time()  # on the scheduler thread
        self.pool = 0.0
        self.lock = threading.Lock()

    def timed(self, function: Callable[..., Any], *args: Any) -> Any:
        """Runs ``function`` on a pool thread, adding its thread time to the run's."""
        started = time.thread_time()
        try:
            return function(*args)
        finally:
            spent = time.thread_time() - started
            with self.lock:
                self.pool += spent

    def used(self) -> float:
        """Seconds used so far; call on the scheduler thread."""
        return time.thread_time() - self.start + self.pool

    def exceeded(self) -> bool:
        return self.limit > 0 and self.used() > self.limit

    def message(self) -> str:
        return (f"the run used {self.used():.1f} s of evaluation CPU time; the limit is {self.limit:g} s "
                "(WEFT_MAX_RUN_CPU_SECONDS)")


def json_size_over(value: Any, limit: int) -> int | None:
    """The UTF-8 JSON size of ``value`` when it is larger than ``limit`` bytes, else None. Small
    scalars are answered without serialising anything."""
    if limit <= 0 or value is None or isinstance(value, bool | int | float):
        return None
    if isinstance(value, str) and len(value) * 4 + 2 <= limit:
        return None
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _pointer(path: tuple[str, ...]) -> str:
    """A JSON pointer to ``path``; a NUL or a lone surrogate in a key is written as its ``\\uXXXX``
    escape, so that the pointer itself can be stored and shown."""
    parts = (_UNSTORABLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", p).replace("~", "~0").replace("/", "~1")
             for p in path)
    return "/" + "/".join(parts) if path else "/"


def _string_problem(text: str) -> str | None:
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    return "contains a NUL character" if match.group(0) == "\x00" else "contains a lone surrogate (invalid Unicode)"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def output_scan(value: Any, limit: int) -> tuple[int | None, bool]:
    """One pass over a node's output for both of its checks, serialising it at most once: its UTF-8
    JSON size when larger than ``limit`` bytes (0: not checked), and whether it may hold a NUL or a
    lone surrogate (checked at C speed on the JSON text, where a NUL is written ``\\u0000`` and a
    lone surrogate as itself; True means ``unstorable_errors`` must look: a literal backslash-u0000
    in a string is a false alarm it clears)."""
    if value is None or isinstance(value, bool | int | float):
        return None, False
    if isinstance(value, str):
        return json_size_over(value, limit), _UNSTORABLE.search(value) is not None
    if not isinstance(value, dict | list):
        return json_size_over(value, limit), False
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    size = None
    if limit > 0 and len(text) * 4 > limit:
        encoded = len(text.encode("utf-8", "surrogatepass"))
        size = encoded if encoded > limit else None
    return size, "\\u0000" in text or _LONE_SURROGATE.search(text) is not None


def unstorable_errors(value: Any, *, max_depth: int | None = None, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """What no database stores (or no renderer writes) in a JSON value, as ``[{"path", "message"}]``
    (JSON pointers, at most 20): NUL characters (PostgreSQL refuses them in text and jsonb) and lone
    surrogates (no UTF-8 form) in strings and keys, and nesting past ``max_depth`` when given.

    Every request body passes here, so the walk is lean: only containers go on the stack (with
    their depth), and a path is built only for a container or a problem."""
    errors: list[dict[str, str]] = []
    search = _UNSTORABLE.search

    def string_error(text: str, path: tuple[str, ...], what: str = "") -> None:
        problem = _string_problem(text)
        if problem:
            errors.append({"path": _pointer(path), "message": f"{what}{problem}"})

    if isinstance(value, str):
        string_error(value, prefix)
        return errors
    if not isinstance(value, dict | list):
        return errors
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, prefix, 0)]  # iterative: no recursion to exhaust
    while stack and len(errors) < 20:
        item, path, depth = stack.pop()
        if max_depth is not None and depth >= max_depth:
            errors.append({"path": _pointer(path),
                           "message": f"nested deeper than {max_depth} levels (WEFT_MAX_JSON_DEPTH)"})
            continue
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(key, str) and search(key):
                string_error(key, (*path, key), "key ")
                continue
            if isinstance(child, str):
                if search(child):
                    string_error(child, (*path, str(key)))
            elif isinstance(child, dict | list):
                stack.append((child, (*path, str(key)), depth + 1))
    errors.sort(key=lambda e: e["path"])
    return errors
