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

from workflows.engine.limits import DEFAULT_LIMITS, Limits
from workflows.engine.macros import format_java
from workflows.engine.regexes import RegexLimit, regex_extract, regex_replace

__all__ = ["CelError", "CompiledExpr", "compile_expr", "evaluate", "parse_template", "render",
           "to_plain", "FUNCTIONS", "SCOPE_MISSING"]


class CelError(ValueError):
    """A CEL expression failed to compile or to evaluate; the message is user-facing."""

    code = "expression_error"


class CelLimit(CelError):
    """An expression (or a regular expression it runs) is past a budget: ``limit_exceeded``."""

    code = "limit_exceeded"


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
    "regex_extract": lambda s, p: regex_extract(s, p, DEFAULT_LIMITS),  # bound per run in ``evaluate``
    "regex_replace": lambda s, p, r: regex_replace(s, p, r, DEFAULT_LIMITS),
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

_RUN_BOUND = frozenset({"now", "regex_extract", "regex_replace"})
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
    comprehensions: int = 0  # deepest nesting of comprehension macros (0: none)
    literal_items: int = 0  # elements of the longest list literal


def _compile_error(source: str, exc: Exception) -> CelError:
    text = str(exc)
    if "Syntax error" in text:
        text = "syntax error" + text.split("Syntax error", 1)[1].split("\n", 1)[0]
    return CelError(f"invalid expression {source!r}: {text}")


_OPEN, _CLOSE = "([{", ")]}"
_OPERATOR_CHARS = frozenset("+-*/%<>=!&|?:")
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})


def _skip_string(source: str, i: int) -> int:
    """Index after the string literal starting at ``i`` (single, double or triple quoted)."""
    quote = source[i]
    if source.startswith(quote * 3, i):
        end = source.find(quote * 3, i + 3)
        return len(source) if end < 0 else end + 3
    i += 1
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or c == "\n":
            return i + 1
        i += 1
    return i


def scan_expression(source: str, limits: Limits) -> tuple[int, int]:
    """The cheap scan every expression passes before it reaches CEL (whose Rust parser and
    interpreter overflow their stack on deep input and crash the process). Raises ``CelLimit``.

    - size: UTF-8 bytes of the source, at most ``limits.expression_bytes``;
    - nesting depth: open brackets plus, inside each bracket, the operators and member/index
      links chained so far (``a.b.c`` is 2, ``1+1+1`` is 2, ``f(g(x))`` is 2; a comma starts a new
      chain): an upper bound of the depth of the syntax tree, at most ``limits.expression_depth``;
    - comprehension depth: macros (``map``, ``filter``, ``all``, ``exists``, ``exists_one``) open
      inside each other, at most ``limits.comprehension_depth`` (each level multiplies the work by
      the size of the list it iterates).

    Returns (comprehension depth, elements of the longest list literal) for the cost check of
    ``evaluate``."""
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > limits.expression_bytes:
        raise CelLimit(f"the expression is {size} bytes; the limit is {limits.expression_bytes} "
                       "(WEFT_MAX_EXPRESSION_BYTES)")
    chains, macros = [0], [False]  # per open bracket: links chained so far, whether a macro call
    elements: list[int] = [0]  # per open bracket: commas so far (list literal elements - 1)
    literal_items = 0
    depth = comprehensions = deepest = deepest_macro = 0
    prev = ""  # the previous token: an identifier/number, ")", an operator, or ""
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
            continue
        if c == '"' or c == "'":
            i, prev = _skip_string(source, i), "lit"
            continue
        if c.isalnum() or c == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            if prev == "." and word in _MACROS:
                prev = "macro"
            elif prev == "." and word[0].isdigit():
                prev = "num"  # the fraction of a number literal
            else:
                prev = "num" if word[0].isdigit() else "id"
            i = j
            continue
        link = False
        if c in _OPEN:
            if c == "[" and prev in ("id", ")", "lit"):
                link = True  # an index: a[0]
            is_macro = c == "(" and prev == "macro"
            if link:
                chains[-1] += 1
                depth += 1
            chains.append(0)
            elements.append(0 if c == "[" and not link else -1)
            macros.append(is_macro)
            comprehensions += is_macro
            deepest_macro = max(deepest_macro, comprehensions)
            depth += 1
            prev = ""
        elif c in _CLOSE:
            if len(chains) > 1:
                depth -= 1 + chains.pop()
                comprehensions -= macros.pop()
                commas = elements.pop()
                if commas >= 0:
                    literal_items = max(literal_items, commas + 1)
            prev = ")"
        elif c == ",":
            depth -= chains[-1]
            chains[-1] = 0
            if elements[-1] >= 0:
                elements[-1] += 1
            prev = ""
        elif c == ".":
            if prev != "num" or not (i + 1 < n and source[i + 1].isdigit()):
                chains[-1] += 1
                depth += 1
            prev = "."
        elif c in _OPERATOR_CHARS:
            if prev != "op":
                chains[-1] += 1
                depth += 1
            prev = "op"
        else:
            prev = ""
        deepest = max(deepest, depth)
        i += 1
    if deepest > limits.expression_depth:
        raise CelLimit(f"the expression nests {deepest} deep; the limit is {limits.expression_depth} "
                       "(WEFT_MAX_EXPRESSION_DEPTH)")
    if deepest_macro > limits.comprehension_depth:
        raise CelLimit(f"the expression nests {deepest_macro} comprehensions (map, filter, all, exists); the "
                       f"limit is {limits.comprehension_depth} (WEFT_MAX_COMPREHENSION_DEPTH)")
    return deepest_macro, literal_items


def _prev_char(source: str, i: int) -> str:
    i -= 1
    while i >= 0 and source[i].isspace():
        i -= 1
    return source[i] if i >= 0 else ""


def _is_panic(exc: BaseException) -> bool:
    """A Rust panic in the CEL extension (``pyo3_runtime.PanicException``, a ``BaseException``)."""
    return type(exc).__name__ == "PanicException"


@lru_cache(maxsize=8192)
def compile_expr(source: str, limits: Limits = DEFAULT_LIMITS) -> CompiledExpr:
    """Compiles one CEL expression (cached per source text and limits), after ``scan_expression``."""
    comprehensions, literal_items = scan_expression(source, limits)
    rewritten = _DEFAULT_PATH.sub(_rewrite_default, source) if "default(" in source else source
    try:
        program = cel.compile(rewritten)
        refs = program.references()
    except Exception as exc:  # the binding raises ValueError, sometimes others
        raise _compile_error(source, exc) from None
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise CelError(f"invalid expression {source[:80]!r}: the CEL compiler failed on it") from None
    bound = set(_COMPREHENSION_VAR.findall(rewritten))
    names = tuple(n for n in refs["variables"] if n not in bound)
    functions = tuple((f, FUNCTIONS[f]) for f in refs["functions"] if f in FUNCTIONS)
    return CompiledExpr(source, program, names, functions, comprehensions, literal_items)


def _longest_list(value: Any, stop: int) -> int:
    """Elements of the longest list inside ``value`` (stops looking once one is longer than ``stop``)."""
    longest, todo = 0, [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list | tuple):
            longest = max(longest, len(item))
            if longest > stop:
                return longest
            todo.extend(v for v in item if isinstance(v, dict | list | tuple))
        elif isinstance(item, dict):
            todo.extend(v for v in item.values() if isinstance(v, dict | list | tuple))
    return longest


def check_comprehension_cost(expr: CompiledExpr, context: Mapping[str, Any], limits: Limits) -> None:
    """The CEL binding's comprehensions cost about n^2 for n items (each step copies the list built
    so far), times n again for each level of nesting: an expression with comprehensions is refused
    when ``items ** (depth + 1)`` exceeds ``limits.comprehension_cost``, ``items`` being the longest
    list it could iterate (in its source or in the values it reads)."""
    if not expr.comprehensions:
        return
    power = expr.comprehensions + 1
    allowed = int(limits.comprehension_cost ** (1 / power) + 1e-9)
    items = max(expr.literal_items, max((_longest_list(v, allowed) for v in context.values()), default=0))
    if items > allowed:
        raise CelLimit(f"a comprehension over {items} items nested {expr.comprehensions} deep would cost "
                       f"{items}^{power}; the limit is {limits.comprehension_cost} (WEFT_MAX_COMPREHENSION_COST)")


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


def _bind(name: str, context: dict[str, Any], clock: Any, limits: Limits, failures: list[CelLimit]) -> None:
    """Functions that depend on the run: ``now()`` reads its clock, the regex functions its limits
    (a regex budget crossed inside CEL is remembered, so it surfaces as ``limit_exceeded``)."""
    if name == "now" and clock is not None:
        context["now"] = lambda: datetime.fromtimestamp(clock.now(), UTC)
    elif name in ("regex_extract", "regex_replace"):
        plain = regex_extract if name == "regex_extract" else regex_replace

        def call(*args: Any) -> Any:
            try:
                return plain(*args, limits)
            except RegexLimit as exc:
                failures.append(CelLimit(f"{name}: {exc}"))
                raise

        context[name] = call


def evaluate(expr: CompiledExpr, scope: Mapping[str, Any], clock: Any = None,
             limits: Limits = DEFAULT_LIMITS) -> Any:
    """Runs a compiled expression; the scope supplies the names it uses. Raises CelError
    (``CelLimit`` past a budget). ``clock`` (a ``ports.Clock``): what ``now()`` reads (default: the
    real time); ``limits``: the regex budgets."""
    context: dict[str, Any] = {}
    for name in expr.names:
        value = scope.get(name, SCOPE_MISSING)
        if value is not SCOPE_MISSING:
            context[name] = value
    failures: list[CelLimit] = []
    for name, function in expr.functions:
        context[name] = function
        if name in _RUN_BOUND:
            _bind(name, context, clock, limits, failures)
    check_comprehension_cost(expr, context, limits)
    try:
        return to_plain(expr.program.execute(context))
    except Exception as exc:
        if failures:
            raise failures[0] from None
        raise CelError(_runtime_message(exc)) from None
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise CelError("the expression could not be evaluated (the CEL interpreter failed on it)") from None


# -- templates -----------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{(?!\{)(.*?)\}\}", re.S)


@dataclass(frozen=True, slots=True)
class Template:
    single: CompiledExpr | None  # the whole string is one ``{{ }}``: keep the value's type
    parts: tuple[str | CompiledExpr, ...]


@lru_cache(maxsize=8192)
def parse_template(text: str, limits: Limits = DEFAULT_LIMITS) -> Template:
    """Splits ``text`` into literal parts and compiled expressions (cached). Raises CelError."""
    parts: list[str | CompiledExpr] = []
    pos = 0
    for match in _TEMPLATE.finditer(text):
        if match.start() > pos:
            parts.append(text[pos:match.start()])
        source = match.group(1).strip()
        if not source:
            raise CelError("empty {{ }} template")
        parts.append(compile_expr(source, limits))
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


def render(text: str, scope: Mapping[str, Any], clock: Any = None, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Evaluates the ``{{ }}`` templates of ``text``. Raises CelError."""
    template = parse_template(text, limits)
    if template.single is not None:
        return evaluate(template.single, scope, clock, limits)
    return "".join(p if isinstance(p, str) else _text(evaluate(p, scope, clock, limits)) for p in template.parts)


def template_exprs(text: str, limits: Limits = DEFAULT_LIMITS) -> list[CompiledExpr]:
    return [p for p in parse_template(text, limits).parts if isinstance(p, CompiledExpr)]
