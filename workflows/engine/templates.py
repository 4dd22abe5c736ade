"""CEL expressions and ``{{ expr }}`` templates.

Programs are compiled once per source text (a process-wide LRU cache, pre-warmed when a graph is
compiled) and executed with only the names the expression references, looked up in the scope.

``default(path, fallback)``: CEL fails on a missing map key before a function sees it, so a
first argument that is a plain member path (``inputs.a.b``) is rewritten at compile time to
``default((inputs != null && has(inputs.a) && inputs.a != null && has(inputs.a.b)) ? inputs.a.b : null, fallback)``.
Other first arguments (index expressions, calls) are evaluated normally.
"""

from __future__ import annotations

import base64
import json as jsonlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import cel

from workflows.engine.macros import format_java

__all__ = ["CelError", "CompiledExpr", "compile_expr", "evaluate", "parse_template", "render",
           "to_plain", "FUNCTIONS", "SCOPE_MISSING"]


class CelError(ValueError):
    """A CEL expression failed to compile or to evaluate; the message is user-facing."""


SCOPE_MISSING = object()


# -- extra functions -----------------------------------------------------------------------------

def _mask(value: Any) -> str:
    text = "" if value is None else str(value)
    local, at, domain = text.partition("@")
    if at:
        return (_mask(local) if len(local) > 1 else "*") + "@" + domain
    if len(text) <= 2:
        return "*" * len(text)
    return text[0] + "***" + text[-1]


def _regex_extract(text: str, pattern: str) -> str | None:
    match = re.search(pattern, text)
    if match is None:
        return None
    return match.group(1) if match.groups() else match.group(0)


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise ValueError(f"format_date: cannot read a date from {value!r}")


def _format_date(value: Any, fmt: str) -> str:
    return format_java(_to_datetime(value), fmt)


def _json(value: Any) -> str:
    return jsonlib.dumps(to_plain(value), ensure_ascii=False, separators=(",", ":"))


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


FUNCTIONS: dict[str, Any] = {
    "mask": _mask,
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "trim": lambda s: str(s).strip(),
    "regex_extract": _regex_extract,
    "regex_replace": lambda s, p, r: re.sub(p, r, s),
    "format_date": _format_date,
    "now": lambda: datetime.now(UTC),
    "json": _json,
    "default": _default,
}


# -- values --------------------------------------------------------------------------------------

def to_plain(value: Any) -> Any:
    """CEL result -> plain JSON-able Python (timestamps as ISO strings, durations as seconds)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    return str(value)


# -- compile -------------------------------------------------------------------------------------

_DEFAULT_PATH = re.compile(r"\bdefault\(\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)+)\s*,")
_COMPREHENSION_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def _rewrite_default(match: re.Match[str]) -> str:
    root, rest = match.group(1), match.group(2).split(".")[1:]
    checks = [f"{root} != null"]
    prefix = root
    for i, part in enumerate(rest):
        checks.append(f"has({prefix}.{part})")
        prefix = f"{prefix}.{part}"
        if i < len(rest) - 1:
            checks.append(f"{prefix} != null")
    return f"default(({' && '.join(checks)}) ? {prefix} : null,"


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    source: str
    program: Any
    names: tuple[str, ...]  # free variables (comprehension variables excluded)
    functions: tuple[tuple[str, Any], ...]  # our extra functions the expression calls


def _compile_error(source: str, exc: Exception) -> CelError:
    text = str(exc)
    if "Syntax error" in text:
        text = "syntax error" + text.split("Syntax error", 1)[1].split("\n", 1)[0]
    return CelError(f"invalid expression {source!r}: {text}")


@lru_cache(maxsize=8192)
def compile_expr(source: str) -> CompiledExpr:
    """Compiles one CEL expression (cached per source text)."""
    rewritten = _DEFAULT_PATH.sub(_rewrite_default, source) if "default(" in source else source
    try:
        program = cel.compile(rewritten)
        refs = program.references()
    except Exception as exc:  # the binding raises ValueError, sometimes others
        raise _compile_error(source, exc) from None
    bound = set(_COMPREHENSION_VAR.findall(rewritten))
    names = tuple(n for n in refs["variables"] if n not in bound)
    functions = tuple((f, FUNCTIONS[f]) for f in refs["functions"] if f in FUNCTIONS)
    return CompiledExpr(source, program, names, functions)


def _runtime_message(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    text = str(exc)
    if text.startswith("Undefined variable or function"):
        return text.split(". Check", 1)[0].replace("Undefined variable or function", "undeclared reference")
    if "No such overload" in text or "Unsupported operation" in text:
        return text.split(" CEL does not coerce", 1)[0].split(". CEL does not", 1)[0]
    if "Python function call failed:" in text:
        return text.split("Python function call failed:", 1)[1].split(". Check function", 1)[0].strip()
    return text.split("\n", 1)[0]


def evaluate(expr: CompiledExpr, scope: Mapping[str, Any], clock: Any = None) -> Any:
    """Runs a compiled expression; the scope supplies the names it uses. Raises CelError.
    ``clock`` (a ``ports.Clock``): what ``now()`` reads (default: the real time)."""
    context: dict[str, Any] = {}
    for name in expr.names:
        value = scope.get(name, SCOPE_MISSING)
        if value is not SCOPE_MISSING:
            context[name] = value
    for name, function in expr.functions:
        context[name] = function
    if clock is not None and "now" in context:
        context["now"] = lambda: datetime.fromtimestamp(clock.now(), UTC)
    try:
        return to_plain(expr.program.execute(context))
    except Exception as exc:
        raise CelError(_runtime_message(exc)) from None


# -- templates -----------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{(?!\{)(.*?)\}\}", re.S)


@dataclass(frozen=True, slots=True)
class Template:
    single: CompiledExpr | None  # the whole string is one ``{{ }}``: keep the value's type
    parts: tuple[str | CompiledExpr, ...]


@lru_cache(maxsize=8192)
def parse_template(text: str) -> Template:
    """Splits ``text`` into literal parts and compiled expressions (cached). Raises CelError."""
    parts: list[str | CompiledExpr] = []
    pos = 0
    for match in _TEMPLATE.finditer(text):
        if match.start() > pos:
            parts.append(text[pos:match.start()])
        source = match.group(1).strip()
        if not source:
            raise CelError("empty {{ }} template")
        parts.append(compile_expr(source))
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    exprs = [p for p in parts if isinstance(p, CompiledExpr)]
    whole = len(exprs) == 1 and all(isinstance(p, CompiledExpr) or not p.strip() for p in parts)
    single = exprs[0] if whole else None
    return Template(single, tuple(parts))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def render(text: str, scope: Mapping[str, Any], clock: Any = None) -> Any:
    """Evaluates the ``{{ }}`` templates of ``text``. Raises CelError."""
    template = parse_template(text)
    if template.single is not None:
        return evaluate(template.single, scope, clock)
    return "".join(p if isinstance(p, str) else _text(evaluate(p, scope, clock)) for p in template.parts)


def template_exprs(text: str) -> list[CompiledExpr]:
    return [p for p in parse_template(text).parts if isinstance(p, CompiledExpr)]
