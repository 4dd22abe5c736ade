"""The ``transform`` node: ``{"source": value, "mapping": {key: value}}``. A mapping value is a
literal, a ``{{ }}`` template (a lone one keeps its type), a JSONPath starting with ``$`` evaluated
on ``source`` (default: the upstream output; aggregates allowed), or a nested object/array of these;
``${param}`` and ``$[...]`` time macros are not JSONPath. A value that cannot be evaluated fails the
node naming the field (``nodes.<id>.config.mapping.<path>``); publish refuses a JSONPath that does
not parse at its JSON pointer, unknown names and a config without a ``mapping`` object."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import Build, Problems, RunFn

ORDER = {"id": "o-1", "user": {"id": "u1", "email": "ada@example.com"},
         "items": [{"sku": "a", "price": 3}, {"sku": "b", "price": 1.5}, {"sku": "a", "price": 2}]}
INPUTS = {"order": {"type": "object"}, "n": {"type": "integer"}}


def transform(mapping: Any, **config: Any) -> dict[str, Any]:
    return {"id": "t", "type": "transform", "config": {"mapping": mapping, **config}}


def test_literals_templates_jsonpaths_and_nested_values(run: RunFn, around: Build) -> None:
    mapping = {
        "n": 7, "yes": True, "nothing": None, "list": [1, "two"],
        "count": "{{ inputs.n }}", "text": "order {{ inputs.order.id }} x{{ inputs.n }}",
        "user_id": "$.order.user.id", "skus": "$.order.items[*].sku", "missing": "$.order.nope", "whole": "$.n",
        "nested": {"email": "{{ mask(inputs.order.user.email) }}", "pair": ["$.order.id", "{{ inputs.n + 1 }}"]},
        "region": "${region}", "day": "$[yyyyMMdd-1]",
    }
    # graph params reach the run merged by the host (``RunContext.params``)
    ran = run(around(transform(mapping), inputs=INPUTS, params={"region": "eu"}), {"order": ORDER, "n": 2},
              params={"region": "eu"})
    assert ran.outcome.status == "succeeded", ran.outcome.error
    expected = {
        "n": 7, "yes": True, "nothing": None, "list": [1, "two"],
        "count": 2, "text": "order o-1 x2",
        "user_id": "u1", "skus": ["a", "b", "a"], "missing": None, "whole": 2,
        "nested": {"email": ran.outcome.outputs["out"]["nested"]["email"], "pair": ["o-1", 3]},
        "region": "eu", "day": "20260314",  # business time 2026-03-15
    }
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": expected}
    assert expected["nested"]["email"] != "ada@example.com" and expected["nested"]["email"].endswith("example.com")
    record = ran.record("t")
    assert (record.status, record.output, record.receipt_token) == ("succeeded", expected, "")
    assert ran.events("t") == [("node_started", "running"), ("node_finished", "succeeded")]


@pytest.mark.parametrize(("path", "expected"), [
    ("$.items[*].price.sum()", 6.5), ("$.items[*].price.avg()", 6.5 / 3), ("$.items[*].price.min()", 1.5),
    ("$.items[*].price.max()", 3), ("$.items[*].count()", 3), ("$.items[*].sku.first()", "a"),
    ("$.items[*].sku.last()", "a"), ("$.items[*].sku.unique()", ["a", "b"]), ('$.items[*].sku.join(",")', "a,b,a"),
    ("$.items[?@.price > 1.8].sku", ["a", "a"]), ("$.items[1]", {"sku": "b", "price": 1.5}), ("$", ORDER),
    ("$.nothing[*].price.sum()", 0),
])
def test_jsonpath_aggregates_and_filters_on_the_source(run: RunFn, around: Build, path: str, expected: Any) -> None:
    ran = run(around(transform({"v": path}, source="{{ inputs.order }}"), inputs=INPUTS), {"order": ORDER})
    assert ran.outcome.outputs == {"out": {"v": expected}}, ran.outcome.error


def test_the_source_defaults_to_the_upstream_output_and_may_name_any_ancestor(run: RunFn, around: Build) -> None:
    first = {"id": "first", "type": "transform", "config": {"mapping": {"who": "$.order.user.id"}}}
    second = {"id": "second", "type": "transform", "config": {"mapping": {"k": "second"}}}
    upstream = transform({"up": "$", "who": "$.who"})
    named = transform({"up": "$", "who": "$.who"}, source="{{ first }}")
    literal = transform({"total": "$.xs.sum()"}, source={"xs": [1, 2, "{{ inputs.n }}"]})
    assert run(around(first, upstream, inputs=INPUTS), {"order": ORDER}).outcome.outputs == {
        "out": {"up": {"who": "u1"}, "who": "u1"}}
    assert run(around(first, second, named, inputs=INPUTS), {"order": ORDER}).outcome.outputs == {
        "out": {"up": {"who": "u1"}, "who": "u1"}}
    assert run(around(literal, inputs=INPUTS), {"n": 4}).outcome.outputs == {"out": {"total": 7}}


@pytest.mark.parametrize(("node", "message"), [
    (transform({"a": {"b": "{{ inputs.order.nope }}"}}), "nodes.t.config.mapping.a.b: no such key 'nope'"),
    (transform({"list": ["ok", "{{ 1 / 0 }}"]}), "nodes.t.config.mapping.list[1]: "),
    (transform({"s": "$.items[*].sku.sum()"}, source="{{ inputs.order }}"),
     "nodes.t.config.mapping.s: sum() needs numbers, got 'a'"),
    (transform({"v": "$.x"}, source="{{ inputs.order.nope }}"), "nodes.t.config.source: no such key 'nope'"),
])
def test_a_value_that_cannot_be_evaluated_fails_naming_the_field(run: RunFn, around: Build, node: dict[str, Any],
                                                                 message: str) -> None:
    ran = run(around(node, {"id": "after", "type": "count"}, inputs=INPUTS), {"order": ORDER})
    assert ran.outcome.status == "failed"
    assert ran.outcome.error["message"].startswith(message), ran.outcome.error
    assert ran.outcome.error["code"] == "expression_error" and ran.outcome.error["node_id"] == "t"
    assert ran.record("t").status == "failed" and ran.record("t").output is None
    assert "after" not in ran.host.records


def test_publish_refuses_bad_jsonpaths_at_their_pointer_and_unknown_names(problems: Problems, around: Build) -> None:
    mapping = {"ok": "$.a.b", "bad": "$.x[", "deep": {"list": ["$.fine", {"sum": "$.q.sum("}]},
               "a/b~c": "$..", "later": "{{ after }}", "p": "${nope}", "item": "{{ item }}"}
    graph = around(transform(mapping, extra=1), {"id": "after", "type": "count"})
    found = problems(graph)
    assert [path for path, _ in found] == [
        "/nodes/1/config", "/nodes/1/config/mapping/bad", "/nodes/1/config/mapping/deep/list/1/sum",
        "/nodes/1/config/mapping/a~1b~0c", "/nodes/1/config/mapping/later", "/nodes/1/config/mapping/p",
        "/nodes/1/config/mapping/item"]
    messages = dict(found)
    assert messages["/nodes/1/config"] == "Additional properties are not allowed ('extra' was unexpected)"
    assert messages["/nodes/1/config/mapping/bad"].startswith("invalid JSONPath '$.x[': unexpected end of query")
    assert messages["/nodes/1/config/mapping/a~1b~0c"].startswith("invalid JSONPath '$..'")
    assert messages["/nodes/1/config/mapping/later"].startswith("'after' is not in scope here")
    assert messages["/nodes/1/config/mapping/p"] == "unknown parameter ${nope}"
    assert messages["/nodes/1/config/mapping/item"].startswith("'item' is not in scope here")
    assert problems(around({"id": "t", "type": "transform", "config": {"source": 1}})) == [
        ("/nodes/1/config/mapping", "'mapping' is a required property")]
    assert problems(around(transform(["$.a"]))) == [("/nodes/1/config/mapping", "['$.a'] is not of type 'object'")]
