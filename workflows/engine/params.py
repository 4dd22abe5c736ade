"""``${name}`` parameters: workflow params over the team's global params, plus built-ins.

Built-ins (computed from the business time in the team's zone): ``system.biz.date`` (the day
before, yyyyMMdd), ``system.biz.curdate`` (yyyyMMdd), ``system.datetime`` (yyyyMMddHHmmss).
A parameter's value is substituted as text; macros inside it are expanded by the next stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

BUILTIN_PARAMS = frozenset({"system.biz.date", "system.biz.curdate", "system.datetime"})
PARAM_RE = re.compile(r"\$\{\s*([A-Za-z_][\w.\-]*)\s*\}")


class ParamError(ValueError):
    """An unknown ``${name}``."""


def builtin_params(local: datetime) -> dict[str, str]:
    return {
        "system.biz.date": (local - timedelta(days=1)).strftime("%Y%m%d"),
        "system.biz.curdate": local.strftime("%Y%m%d"),
        "system.datetime": local.strftime("%Y%m%d%H%M%S"),
    }


def param_names(text: str) -> list[str]:
    return PARAM_RE.findall(text) if "${" in text else []


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def substitute_params(text: str, params: Mapping[str, Any]) -> str:
    """Replaces every ``${name}``; raises ParamError on an unknown name."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        try:
            return _as_text(params[name])
        except KeyError:
            raise ParamError(f"unknown parameter ${{{name}}}") from None

    return PARAM_RE.sub(repl, text)
