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
from jsonpath.filter import RegexLiteral
from jsonpath.function_extensions import ExpressionType, FilterFunction
from jsonpath.token import TOKEN_RE_FLAGS

from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.regexes import RegexError, RegexLimit, check_subject, regex_compile

_AGGREGATE = re.compile(r"\.(sum|avg|min|max|count|first|last|unique)\(\)\s*$|\.join\((.*)\)\s*$")


class JsonPathError(ValueError):
    """A JSONPath that does not compile or an aggregate that cannot apply."""

    code = "expression_error"


class JsonPathLimit(JsonPathError):
    """A regular expression of a filter (or the text it matches) is past its budget."""

    code = "limit_exceeded"


# -- filters' regular expressions on RE2 ---------------------------------------------------------

class _Pattern:
    """A filter's ``=~ /pattern/`` literal: RE2, and the subject's size checked on every match."""

    def __init__(self, compiled: Any, limits: Limits) -> None:
        self.compiled, self.limits = compiled, limits
        self.pattern = compiled.pattern

    def fullmatch(self, text: str) -> Any:
        check_subject(text, self.limits)
        return self.compiled.fullmatch(text)


class _Re2Function(FilterFunction):
    """RFC 9535 ``match()`` (whole string) and ``search()`` on RE2; an invalid pattern matches nothing."""

    arg_types = [ExpressionType.VALUE, ExpressionType.VALUE]
    return_type = ExpressionType.LOGICAL

    def __init__(self, limits: Limits, whole: bool) -> None:
        self.limits, self.whole = limits, whole

    def __call__(self, value: object, pattern: object) -> bool:
        if not isinstance(value, str) or not isinstance(pattern, str):
            return False
        try:
            compiled = regex_compile(pattern, self.limits)
        except RegexLimit:
            raise
        except RegexError:
            return False
        check_subject(value, self.limits)
        return bool(compiled.fullmatch(value) if self.whole else compiled.search(value))


class _Parser(jsonpath.Parser):
    def parse_regex(self, stream: Any) -> Any:
        pattern = stream.current().value
        flags = ""
        if stream.peek().kind == TOKEN_RE_FLAGS:
            stream.next()
            flags = stream.next().value
        try:
            compiled = regex_compile(pattern, self.env.limits, flags)  # type: ignore[attr-defined]
        except RegexError as exc:
            raise jsonpath.JSONPathSyntaxError(str(exc), token=stream.current()) from None
        return RegexLiteral(value=_Pattern(compiled, self.env.limits))  # type: ignore[attr-defined,arg-type]


class _Environment(jsonpath.JSONPathEnvironment):
    parser_class = _Parser

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        super().__init__()

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        self.function_extensions["match"] = _Re2Function(self.limits, whole=True)
        self.function_extensions["search"] = _Re2Function(self.limits, whole=False)


@lru_cache(maxsize=8)
def _environment(limits: Limits) -> _Environment:
    return _Environment(limits)


@lru_cache(maxsize=2048)
def compile_path(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, str | None, str | None]:
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
        path = _environment(limits).compile(text)
    except RegexLimit as exc:
        raise JsonPathLimit(f"JSONPath {text[:80]!r}: {exc}") from None
    except jsonpath.JSONPathError as exc:
        raise JsonPathError(f"invalid JSONPath {text!r}: {exc}") from exc
    return path, aggregate, separator


def find_all(text: str, source: Any, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """Every match of a plain JSONPath (no aggregate). Raises JsonPathError (JsonPathLimit)."""
    try:
        return _environment(limits).compile(text).findall(source)
    except RegexLimit as exc:
        raise JsonPathLimit(f"JSONPath {text[:80]!r}: {exc}") from None
    except jsonpath.JSONPathError as exc:
        raise JsonPathError(f"invalid JSONPath {text!r}: {exc}") from exc


def _numbers(values: list[Any], name: str) -> list[float]:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise JsonPathError(f"{name}() needs numbers, got {value!r}")
    return values


def evaluate_path(text: str, source: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    path, aggregate, separator = compile_path(text, limits)
    try:
        values = path.findall(source)
    except RegexLimit as exc:
        raise JsonPathLimit(f"JSONPath {text[:80]!r}: {exc}") from None
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
