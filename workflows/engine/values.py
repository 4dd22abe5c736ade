"""Resolving values inside a node's config: ``${param}`` -> time macros -> ``{{ CEL }}``.

``RunValues`` holds what is fixed for a run (parameters, business time in the team's zone);
``resolve_value`` walks a config value and returns a resolved copy of the parts that change.
Containers found static when the graph was compiled are returned as they are (no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.macros import MacroError, expand_macros
from workflows.engine.params import ParamError, builtin_params, substitute_params
from workflows.engine.templates import CelError, render

__all__ = ["RunValues", "ValueError_", "resolve_value", "is_dynamic", "static_container_ids",
           "format_path"]


class ValueError_(Exception):  # noqa: N801 - distinct from the builtin on purpose
    """Resolution of one field failed; ``path`` is the list of keys/indexes inside the value."""

    def __init__(self, path: list[Any], message: str, code: str = "expression_error") -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.code = code  # expression_error, or limit_exceeded past a budget


def format_path(parts: list[Any] | tuple[Any, ...]) -> str:
    """``["cases", 0, "when"]`` -> ``cases[0].when``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def is_dynamic(text: str) -> bool:
    return "${" in text or "$[" in text or "{{" in text


class RunValues:
    """Per-run parameters and business time. ``params`` for CEL have macros already expanded."""

    def __init__(self, params: Mapping[str, Any], business_time: datetime, tz: str, clock: Any = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.clock = clock  # what CEL's now() reads (a ports.Clock; None: the real time)
        self.limits = limits  # expression and regex budgets
        self.local = business_time.astimezone(ZoneInfo(tz)) if tz else business_time
        self.params: dict[str, Any] = {**builtin_params(self.local), **params}
        self.cel_params: dict[str, Any] = {
            k: self.expand(v) if isinstance(v, str) else v for k, v in params.items()
        }

    def expand(self, text: str) -> str:
        """Parameters then time macros (no CEL)."""
        if "${" in text:
            text = substitute_params(text, self.params)
        if "$[" in text or "{{{" in text:
            text = expand_macros(text, self.local)
        return text

    def resolve_string(self, text: str, scope: Mapping[str, Any]) -> Any:
        if "${" in text or "$[" in text or "{{{" in text:
            text = self.expand(text)
        if "{{" in text:
            return render(text, scope, self.clock, self.limits)
        return text


def static_container_ids(value: Any, into: set[int]) -> bool:
    """Records the ids of containers holding no dynamic string; returns whether ``value`` is static."""
    if isinstance(value, str):
        return not is_dynamic(value)
    if isinstance(value, dict):
        static = True
        for item in value.values():
            static = static_container_ids(item, into) and static
    elif isinstance(value, list):
        static = True
        for item in value:
            static = static_container_ids(item, into) and static
    else:
        return True
    if static:
        into.add(id(value))
    return static


def resolve_value(value: Any, scope: Mapping[str, Any], run_values: RunValues,
                  static_ids: set[int] | frozenset[int] = frozenset(), path: list[Any] | None = None) -> Any:
    """Resolved copy of ``value``. Raises ValueError_ naming the failing field."""
    try:
        return _resolve(value, scope, run_values, static_ids)
    except _Failed as failed:
        raise ValueError_([*(path or []), *reversed(failed.parts)], failed.message, failed.code) from None


class _Failed(Exception):
    """A failure deep in a value; the path is collected on the way out (no path lists on success)."""

    def __init__(self, message: str, code: str = "expression_error") -> None:
        self.message = message
        self.code = code
        self.parts: list[Any] = []


def _resolve(value: Any, scope: Mapping[str, Any], run_values: RunValues, static_ids: set[int] | frozenset[int]) -> Any:
    if isinstance(value, str):
        if not is_dynamic(value):
            return value
        try:
            return run_values.resolve_string(value, scope)
        except CelError as exc:
            raise _Failed(str(exc), exc.code) from None
        except (MacroError, ParamError) as exc:
            raise _Failed(str(exc)) from None
    if isinstance(value, dict):
        if id(value) in static_ids:
            return value
        out = {}
        for k, v in value.items():
            try:
                out[k] = _resolve(v, scope, run_values, static_ids)
            except _Failed as failed:
                failed.parts.append(k)
                raise
        return out
    if isinstance(value, list):
        if id(value) in static_ids:
            return value
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_resolve(v, scope, run_values, static_ids))
            except _Failed as failed:
                failed.parts.append(i)
                raise
        return items
    return value
