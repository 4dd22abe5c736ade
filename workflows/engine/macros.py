"""Time macros: ``$[...]`` (DolphinScheduler style) and ``{{{...}}}`` (natural phrases).

Both are relative to the run's business time, converted to the team's time zone before any
arithmetic, so a run fired at 23:30 UTC for a team in Asia/Shanghai sees the Shanghai date.

``$[fmt±days]``: ``fmt`` is a Java-style date pattern (``yyyy MM dd HH mm ss`` and separators);
the optional offset is an arithmetic expression in days (``-1``, ``+7*2``, ``-1/24``).
Functions: ``add_months(fmt,n)``, ``this_day(fmt)``, ``last_day(fmt)`` (last day of the month),
``month_first_day(fmt,n)``, ``month_last_day(fmt,n)``, ``week_first_day(fmt,n)`` (Monday),
``week_last_day(fmt,n)`` (Sunday), ``year_week(fmt)``: the ISO 8601 year and week of the business
day, ``YYYY-WW`` when ``fmt`` contains ``-``, else ``YYYYWW`` (e.g. 2026-W53 -> ``2026-53``).

``{{{phrase}}}``: ``today|yesterday|tomorrow``, ``first|last day of this|last|next
week|month|quarter|year``, ``<weekday> this|last|next week``, each optionally followed by offsets
``± N day(s)|week(s)|month(s)|year(s)``; the result is an ISO date ``YYYY-MM-DD``.
"""

from __future__ import annotations

import ast
import calendar
import operator
import re
from datetime import date, datetime, timedelta
from functools import lru_cache

__all__ = ["MacroError", "expand_macros", "has_macros", "macro_errors", "format_java"]


class MacroError(ValueError):
    """A time macro that cannot be parsed or evaluated."""


_DOLLAR = re.compile(r"\$\[([^\[\]]*)\]")
_NATURAL = re.compile(r"\{\{\{(.*?)\}\}\}")
_FUNCS = ("add_months", "this_day", "last_day", "month_first_day", "month_last_day",
          "week_first_day", "week_last_day", "year_week")
# Only ``$[...]`` starting like a date pattern or a macro function is a macro: ``$[0]`` or
# ``$['key']`` stay JSONPath.
_MACRO_START = re.compile(r"\s*(?:[yMdHms]|(?:" + "|".join(_FUNCS) + r")\s*\()")
_PLAIN = re.compile(r"^\s*([yMdHms][yMdHms\-/:_. T]*?)\s*([+-]\s*[\d(][\d.*/+\-() ]*)?\s*$")
_FUNC = re.compile(r"^\s*(" + "|".join(_FUNCS) + r")\s*\(\s*([^,()]+?)\s*(?:,\s*([^,()]+?)\s*)?\)\s*$")
_TOKENS = re.compile(r"yyyy|yy|MM|dd|HH|mm|ss")
_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def has_macros(text: str) -> bool:
    return "$[" in text or "{{{" in text


@lru_cache(maxsize=1024)
def _strftime_pattern(fmt: str) -> str:
    out, pos = [], 0
    for match in _TOKENS.finditer(fmt):
        out.append(fmt[pos:match.start()].replace("%", "%%"))
        out.append(_STRFTIME[match.group(0)])
        pos = match.end()
    out.append(fmt[pos:].replace("%", "%%"))
    return "".join(out)


def format_java(value: datetime | date, fmt: str) -> str:
    """Formats with a Java-style pattern (``yyyy-MM-dd HH:mm:ss``); ``%`` patterns pass to strftime."""
    return value.strftime(fmt if "%" in fmt else _strftime_pattern(fmt))


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: str) -> float:
    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        raise MacroError(f"bad day arithmetic {expr!r}")

    try:
        return walk(ast.parse(expr.replace(" ", ""), mode="eval"))
    except (SyntaxError, ZeroDivisionError) as exc:
        raise MacroError(f"bad day arithmetic {expr!r}") from exc


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _int_arg(arg: str | None, name: str) -> int:
    if arg is None:
        raise MacroError(f"{name} needs a second argument")
    try:
        return int(arg)
    except ValueError as exc:
        raise MacroError(f"{name}: {arg!r} is not an integer") from exc


def _dollar(body: str, local: datetime) -> str:
    match = _FUNC.match(body)
    if match:
        name, fmt, arg = match.groups()
        day = local
        if name == "add_months":
            return format_java(_add_months(local, _int_arg(arg, name)), fmt)
        if name == "this_day":
            return format_java(day, fmt)
        if name == "last_day":
            return format_java(_month_end(local.date()), fmt)
        if name == "month_first_day":
            return format_java(_add_months(local.date().replace(day=1), _int_arg(arg, name)), fmt)
        if name == "month_last_day":
            return format_java(_month_end(_add_months(local.date().replace(day=1), _int_arg(arg, name))), fmt)
        if name in ("week_first_day", "week_last_day"):
            monday = local.date() - timedelta(days=local.weekday()) + timedelta(weeks=_int_arg(arg, name))
            return format_java(monday if name == "week_first_day" else monday + timedelta(days=6), fmt)
        year, week, _ = local.isocalendar()
        return f"{year}-{week:02d}" if "-" in fmt else f"{year}{week:02d}"
    match = _PLAIN.match(body)
    if not match:
        raise MacroError(f"unknown time macro $[{body}]")
    fmt, offset = match.groups()
    when = local + timedelta(days=_arith(offset)) if offset else local
    return format_java(when, fmt)


_UNITS = {"day": "days", "week": "weeks", "month": "months", "year": "years"}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_REL = {"this": 0, "last": -1, "next": 1}
_OFFSET = re.compile(r"([+-])\s*(\d+)\s*(day|week|month|year)s?\s*")
_EDGE = re.compile(r"^(first|last) day of (this|last|next) (week|month|quarter|year)$")
_WEEKDAY = re.compile(r"^(" + "|".join(_WEEKDAYS) + r") (this|last|next) week$")


def _shift(day: date, sign: str, amount: int, unit: str) -> date:
    amount = amount if sign == "+" else -amount
    if unit == "day":
        return day + timedelta(days=amount)
    if unit == "week":
        return day + timedelta(weeks=amount)
    return _add_months(day, amount * (12 if unit == "year" else 1))


def _natural(phrase: str, today: date) -> str:
    text = " ".join(phrase.lower().split())
    cut = re.search(r"\s*[+-]\s*\d", text)
    base, rest = (text[:cut.start()], text[cut.start():]) if cut else (text, "")
    if base in ("today", "now"):
        day = today
    elif base == "yesterday":
        day = today - timedelta(days=1)
    elif base == "tomorrow":
        day = today + timedelta(days=1)
    elif m := _EDGE.match(base):
        which, rel, unit = m.groups()
        shift = _REL[rel]
        if unit == "week":
            first = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
            day = first if which == "first" else first + timedelta(days=6)
        elif unit == "month":
            first = _add_months(today.replace(day=1), shift)
            day = first if which == "first" else _month_end(first)
        elif unit == "quarter":
            first = _add_months(today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1), 3 * shift)
            day = first if which == "first" else _month_end(_add_months(first, 2))
        else:
            first = date(today.year + shift, 1, 1)
            day = first if which == "first" else date(first.year, 12, 31)
    elif m := _WEEKDAY.match(base):
        weekday, rel = m.groups()
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=_REL[rel])
        day = monday + timedelta(days=_WEEKDAYS.index(weekday))
    else:
        raise MacroError(f"unknown date phrase {{{{{{{phrase}}}}}}}")
    pos = 0
    while pos < len(rest):
        m = _OFFSET.match(rest, pos) if rest[pos] in "+-" else None
        if m is None:
            if rest[pos].isspace():
                pos += 1
                continue
            raise MacroError(f"unknown date phrase {{{{{{{phrase}}}}}}}: bad offset {rest[pos:].strip()!r}")
        day = _shift(day, m.group(1), int(m.group(2)), m.group(3))
        pos = m.end()
    return day.isoformat()


def expand_macros(text: str, local: datetime) -> str:
    """Expands every time macro in ``text``; ``local`` is the business time in the team's zone.
    A date outside years 1-9999 (``$[yyyyMMdd+99999999]``) is a ``MacroError``, like any bad macro."""
    try:
        return _expand(text, local)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, MacroError):
            raise
        raise MacroError(f"time macro out of range in {text[:200]!r}: the date would fall outside years 1-9999"
                         ) from None


def _expand(text: str, local: datetime) -> str:
    if "$[" in text:
        text = _DOLLAR.sub(lambda m: _dollar(m.group(1), local) if _MACRO_START.match(m.group(1))
                           else m.group(0), text)
    if "{{{" in text:
        text = _NATURAL.sub(lambda m: _natural(m.group(1), local.date()), text)
    return text


def is_macro_at_start(text: str) -> bool:
    """True when ``text`` starts with a ``$[...]`` time macro (not a JSONPath like ``$[0]``)."""
    m = _DOLLAR.match(text)
    return bool(m and _MACRO_START.match(m.group(1)))


def macro_errors(text: str) -> list[str]:
    """Problems with the macros in ``text`` (evaluated against a fixed date)."""
    try:
        expand_macros(text, datetime(2024, 2, 29, 12, 0, 0))
    except MacroError as exc:
        return [str(exc)]
    return []
