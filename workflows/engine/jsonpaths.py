"""JSONPath strings (``$...``, python-jsonpath) with an optional trailing aggregate.

``$.cart.items[*].price.sum()``; aggregates: ``sum avg min max count first last unique`` and
``join(",")``. Without an aggregate a path matching nothing gives None, one value gives that
value, several give a list.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import jsonpath

_AGGREGATE = re.compile(r"\.(sum|avg|min|max|count|first|last|unique)\(\)\s*$|\.join\((.*)\)\s*$")


class JsonPathError(ValueError):
    """A JSONPath that does not compile or an aggregate that cannot apply."""


@lru_cache(maxsize=2048)
def compile_path(text: str) -> tuple[Any, str | None, str | None]:
    """(compiled path, aggregate name or None, join separator or None)."""
    aggregate = separator = None
    match = _AGGREGATE.search(text)
    if match:
        text = text[: match.start()]
        if match.group(1):
            aggregate = match.group(1)
        else:
            aggregate = "join"
            raw = match.group(2).strip()
            try:
                separator = json.loads(raw) if raw.startswith('"') else raw.strip("'") if raw else ","
            except ValueError as exc:
                raise JsonPathError(f"bad join separator {raw}") from exc
            if not isinstance(separator, str):
                raise JsonPathError(f"bad join separator {raw}")
    try:
        path = jsonpath.compile(text)
    except jsonpath.JSONPathError as exc:
        raise JsonPathError(f"invalid JSONPath {text!r}: {exc}") from exc
    return path, aggregate, separator


def _numbers(values: list[Any], name: str) -> list[float]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise JsonPathError(f"{name}() needs numbers, got {value!r}")
    return values


def evaluate_path(text: str, source: Any) -> Any:
    path, aggregate, separator = compile_path(text)
    values = path.findall(source)
    if aggregate is None:
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    if len(values) == 1 and isinstance(values[0], list) and aggregate != "count":
        values = values[0]  # ``$.prices.sum()`` on an array value aggregates its elements
    if aggregate == "count":
        return len(values[0]) if len(values) == 1 and isinstance(values[0], list) else len(values)
    if aggregate == "sum":
        return sum(_numbers(values, "sum"))
    if aggregate == "avg":
        return sum(_numbers(values, "avg")) / len(values) if values else None
    if aggregate in ("min", "max"):
        return (min if aggregate == "min" else max)(values) if values else None
    if aggregate == "first":
        return values[0] if values else None
    if aggregate == "last":
        return values[-1] if values else None
    if aggregate == "unique":
        seen: list[Any] = []
        for value in values:
            if value not in seen:
                seen.append(value)
        return seen
    return separator.join(v if isinstance(v, str) else json.dumps(v) for v in values)
