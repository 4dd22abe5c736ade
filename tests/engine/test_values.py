"""Parameters, time macros, CEL templates and JSONPath aggregates against fixed business times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.engine.jsonpaths import evaluate_path
from workflows.engine.macros import MacroError, expand_macros
from workflows.engine.templates import CelError, render
from workflows.engine.values import RunValues, ValueError_, resolve_value


def at(*args: int) -> datetime:
    return datetime(*args)


@pytest.mark.parametrize(("when", "macro", "expected"), [
    (at(2024, 3, 31, 10, 30), "$[yyyyMMdd]", "20240331"),
    (at(2024, 3, 31, 10, 30), "$[yyyy-MM-dd]", "2024-03-31"),
    (at(2024, 3, 31, 10, 30, 5), "$[HHmmss]", "103005"),
    (at(2024, 3, 1), "$[yyyyMMdd-1]", "20240229"),
    (at(2026, 12, 25), "$[yyyyMMdd+7*2]", "20270108"),
    (at(2024, 3, 1, 0, 30), "$[HHmmss-1/24]", "233000"),
    (at(2024, 3, 31), "$[add_months(yyyyMMdd,-1)]", "20240229"),
    (at(2024, 1, 15), "$[add_months(yyyyMMdd,-1)]", "20231215"),
    (at(2024, 2, 10), "$[this_day(yyyy-MM-dd)]", "2024-02-10"),
    (at(2024, 2, 10), "$[last_day(yyyy-MM-dd)]", "2024-02-29"),
    (at(2023, 2, 10), "$[last_day(yyyy-MM-dd)]", "2023-02-28"),
    (at(2024, 1, 10), "$[month_first_day(yyyy-MM-dd,-1)]", "2023-12-01"),
    (at(2024, 3, 10), "$[month_last_day(yyyy-MM-dd,-1)]", "2024-02-29"),
    (at(2026, 1, 1), "$[week_first_day(yyyy-MM-dd,0)]", "2025-12-29"),
    (at(2026, 1, 1), "$[week_last_day(yyyy-MM-dd,0)]", "2026-01-04"),
    (at(2026, 1, 1), "$[week_first_day(yyyy-MM-dd,-1)]", "2025-12-22"),
    (at(2026, 11, 25), "$[year_week(yyyy-MM-dd)]", "2026-48"),
    (at(2021, 1, 3), "$[year_week(yyyy-MM-dd)]", "2020-53"),
    (at(2024, 12, 30), "$[year_week(yyyyMMdd)]", "202501"),
    (at(2024, 3, 31), "{{{today}}}", "2024-03-31"),
    (at(2024, 3, 1), "{{{yesterday - 6 days}}}", "2024-02-23"),
    (at(2024, 1, 15), "{{{First Day of Last Month}}}", "2023-12-01"),
    (at(2024, 2, 15), "{{{last day of this quarter}}}", "2024-03-31"),
    (at(2024, 11, 15), "{{{last day of next quarter}}}", "2025-03-31"),
    (at(2024, 1, 3), "{{{Monday last week}}}", "2023-12-25"),
    (at(2024, 2, 29), "{{{today + 1 year}}}", "2025-02-28"),
    (at(2024, 2, 29), "{{{first day of this year - 2 weeks}}}", "2023-12-18"),
    (at(2024, 2, 29), "day=$[yyyyMMdd] q=$[0] {{{tomorrow}}}", "day=20240229 q=$[0] 2024-03-01"),
])
def test_macros(when: datetime, macro: str, expected: str) -> None:
    assert expand_macros(macro, when) == expected


@pytest.mark.parametrize("bad", ["{{{the day after payday}}}", "$[yyyyMMddQ]", "{{{today + 2 fortnights}}}"])
def test_unknown_macro_is_a_clear_error(bad: str) -> None:
    with pytest.raises(MacroError, match="unknown"):
        expand_macros(bad, at(2024, 1, 1))


def test_business_time_is_read_in_the_team_time_zone() -> None:
    # 2025-12-31 20:30 UTC is already 2026-01-01 in Shanghai, and still 2025-12-31 in New York
    bt = datetime(2025, 12, 31, 20, 30, tzinfo=UTC)
    shanghai = RunValues({}, bt, "Asia/Shanghai")
    new_york = RunValues({}, bt, "America/New_York")
    assert shanghai.expand("$[yyyy-MM-dd HH:mm]") == "2026-01-01 04:30"
    assert new_york.expand("$[yyyy-MM-dd]") == "2025-12-31"
    assert shanghai.expand("${system.biz.date}/${system.biz.curdate}/${system.datetime}") == \
        "20251231/20260101/20260101043000"


def test_params_resolve_before_macros_and_templates() -> None:
    values = RunValues({"region": "eu", "report_day": "$[yyyyMMdd-1]"}, datetime(2024, 3, 1, tzinfo=UTC), "UTC")
    scope = {"inputs": {"n": 2}, "params": values.cel_params}
    config = {"url": "https://x/${region}/{{ inputs.n * 2 }}", "day": "${report_day}",
              "n": "{{ inputs.n }}", "p": "{{ params.report_day }}", "static": {"k": [1, "a"]}}
    static: set[int] = set()
    from workflows.engine.values import static_container_ids
    static_container_ids(config, static)
    out = resolve_value(config, scope, values, static)
    assert out == {"url": "https://x/eu/4", "day": "20240229", "n": 2, "p": "20240229", "static": {"k": [1, "a"]}}
    assert out["static"] is config["static"]  # static parts are not copied
    with pytest.raises(ValueError_) as err:
        resolve_value({"a": ["${nope}"]}, scope, values)
    assert err.value.path == ["a", 0] and "unknown parameter ${nope}" in err.value.message


SCOPE = {"inputs": {"n": 3, "name": " Ada ", "email": "john@example.com", "tags": ["a", "b"],
                    "when": "2024-02-29T10:00:00Z", "m": {"k": None}}}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ inputs.n }}", 3),
    ("{{ inputs.tags }}", ["a", "b"]),
    ("n={{ inputs.n }} tags={{ inputs.tags }} m={{ inputs.m }}", 'n=3 tags=["a","b"] m={"k":null}'),
    ("{{ mask(inputs.email) }}", "j***n@example.com"),
    ("{{ mask('secret') }}", "s***t"),
    ("{{ upper(trim(inputs.name)) }}/{{ lower('X') }}", "ADA/x"),
    ("{{ regex_extract('order-123-x', r'(\\d+)') }}", "123"),
    ("{{ regex_extract('abc', 'b.') }}", "bc"),
    ("{{ regex_replace('a1b2', r'\\d', '#') }}", "a#b#"),
    ("{{ format_date(inputs.when, 'yyyy/MM/dd HH:mm') }}", "2024/02/29 10:00"),
    ("{{ json(inputs.tags) }}", '["a","b"]'),
    ("{{ default(inputs.missing, 1) }}", 1),
    ("{{ default(inputs.m.k, 'fb') }}", "fb"),
    ("{{ default(inputs.n, 1) }}", 3),
    ("{{ inputs.tags.map(t, upper(t)) }}", ["A", "B"]),
])
def test_templates(template: str, expected: object) -> None:
    assert render(template, SCOPE) == expected


def test_template_errors() -> None:
    with pytest.raises(CelError, match="no such key 'zz'"):
        render("{{ inputs.zz }}", SCOPE)
    with pytest.raises(CelError, match="syntax error"):
        render("{{ inputs. }}", SCOPE)


DATA = {"cart": {"items": [{"price": 2, "sku": "a"}, {"price": 3.5, "sku": "b"}, {"price": 2, "sku": "a"}]}}


@pytest.mark.parametrize(("path", "expected"), [
    ("$.cart.items[*].price.sum()", 7.5),
    ("$.cart.items[*].price.avg()", 2.5),
    ("$.cart.items[*].price.min()", 2),
    ("$.cart.items[*].price.max()", 3.5),
    ("$.cart.items[*].price.count()", 3),
    ("$.cart.items[*].sku.first()", "a"),
    ("$.cart.items[*].sku.last()", "a"),
    ("$.cart.items[*].sku.unique()", ["a", "b"]),
    ('$.cart.items[*].sku.join("|")', "a|b|a"),
    ("$.cart.items[1].sku", "b"),
    ("$.cart.items[*].sku", ["a", "b", "a"]),
    ("$.nothing", None),
])
def test_jsonpath(path: str, expected: object) -> None:
    assert evaluate_path(path, DATA) == expected
