"""Regular expressions of tenant workflows on RE2 (``google-re2``): linear time in the subject,
no catastrophic backtracking, bounded memory; plus size caps on the pattern and the subject.

Used by the template functions ``regex_extract``/``regex_replace`` and by JSONPath filters
(``=~``, ``match()``, ``search()``). RE2 has no look-around and no back-references: such a
pattern is an ``invalid regular expression`` error. ``RegexLimit`` (pattern or subject past its
cap) becomes a node failure with code ``limit_exceeded``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from workflows.engine.limits import Limits

__all__ = ["RegexError", "RegexLimit", "regex_compile", "regex_extract", "regex_replace", "check_subject"]

MAX_PROGRAM_MEMORY = 8 << 20  # bytes RE2 may use for one compiled pattern


class RegexError(ValueError):
    """The pattern is not a valid (RE2) regular expression."""


class RegexLimit(RegexError):
    """A pattern or subject is larger than its budget."""


def _options(flags: str = "") -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_MEMORY
    if "i" in flags:
        options.case_sensitive = False
    if "s" in flags:
        options.dot_nl = True
    return options


@lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: str) -> Any:
    try:
        return re2.compile(("(?m)" if "m" in flags else "") + pattern, _options(flags))
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(f"invalid regular expression {pattern[:80]!r}: {message}") from None


def regex_compile(pattern: str, limits: Limits, flags: str = "") -> Any:
    size = len(pattern.encode("utf-8", "surrogatepass"))
    if size > limits.regex_pattern_bytes:
        raise RegexLimit(f"the regular expression is {size} bytes; the limit is {limits.regex_pattern_bytes} "
                         "(WEFT_MAX_REGEX_PATTERN_BYTES)")
    return _compiled(pattern, flags)


def check_subject(text: str, limits: Limits) -> None:
    if len(text) > limits.regex_subject_bytes:
        raise RegexLimit(f"the text matched is {len(text)} characters; the limit is {limits.regex_subject_bytes} "
                         "(WEFT_MAX_REGEX_SUBJECT_BYTES)")


def regex_extract(text: Any, pattern: Any, limits: Limits) -> str | None:
    """The first match's group 1 (or the whole match when the pattern has no group), or None."""
    text, pattern = str(text), str(pattern)
    compiled = regex_compile(pattern, limits)
    check_subject(text, limits)
    match = compiled.search(text)
    if match is None:
        return None
    return match.group(1) if compiled.groups else match.group(0)


def regex_replace(text: Any, pattern: Any, replacement: Any, limits: Limits) -> str:
    """Every match replaced (``\\1`` refers to a group)."""
    text, pattern = str(text), str(pattern)
    compiled = regex_compile(pattern, limits)
    check_subject(text, limits)
    return compiled.sub(str(replacement), text)
