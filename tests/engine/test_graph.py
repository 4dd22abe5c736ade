"""Graph validation (every problem at its JSON pointer), inputs, schemas, and the no-Django rule."""

from __future__ import annotations

import ast
import pathlib

import pytest

from tests.engine.helpers import compile_test
from workflows.engine.graph import (
    InputInvalid,
    inputs_json_schema,
    validate_graph,
    validate_inputs,
)


def test_a_dozen_mistakes_are_all_reported_at_their_paths() -> None:
    graph = {
        "inputs": {"amount": {"type": "money"}, "order": {"type": "string", "required": True}},
        "params": {"region": "eu"},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "Bad-Id", "type": "transform", "config": {"mapping": {}}},
            {"id": "check", "type": "condition", "config": {"cases": [{"id": "hi", "when": "inputs.amount >"}]}},
            {"id": "call", "type": "http", "config": {"url": "https://x/${nope}", "auth": {"credential": "ghost"}},
             "retry": {"count": -1}, "on_error": "explode"},
            {"id": "t", "type": "transform", "config": {"mapping": {"a": "{{ later.x }}", "b": "{{ item }}",
                                                                      "c": "$[yyyyMMddQ]"}}},
            {"id": "later", "type": "delay", "config": {"mode": "sometimes"}},
            {"id": "orphan", "type": "count"},
            {"id": "check", "type": "transform", "config": {"mapping": {}}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "check"}, {"from": "check", "to": "call", "port": "nope"},
            {"from": "check", "to": "t", "port": "hi"}, {"from": "t", "to": "later"},
            {"from": "later", "to": "end"}, {"from": "call", "to": "end", "port": "error"},
            {"from": "start", "to": "ghost"},
        ],
    }
    errors = validate_graph(graph, credential_names={"real"},
                            node_types=__import__("tests.engine.helpers", fromlist=["TEST_TYPES"]).TEST_TYPES)
    paths = {e["path"] for e in errors}
    expected = {
        "/inputs/amount/type",           # unknown input type
        "/nodes/1/id",                   # invalid id
        "/nodes/2/config/cases/0/when",  # CEL syntax
        "/nodes/3/config/url",           # unknown ${param}
        "/nodes/3/config/auth/credential",
        "/nodes/3/retry/count",
        "/nodes/3/on_error",
        "/nodes/4/config/mapping/a",     # not upstream
        "/nodes/4/config/mapping/b",     # item outside a loop
        "/nodes/4/config/mapping/c",     # bad macro
        "/nodes/5/config/mode",
        "/nodes/6",                      # unreachable
        "/nodes/7/id",                   # duplicate
        "/edges/1/port",                 # no such port
        "/edges/5/port",                 # error port without on_error branch
        "/edges/6/to",                   # no such node
    }
    assert expected <= paths, expected - paths
    by_path = {e["path"]: e["message"] for e in errors}
    assert by_path["/nodes/7/id"] == "duplicate node id 'check'"
    assert by_path["/nodes/3/config/url"] == "unknown parameter ${nope}"
    assert by_path["/nodes/3/config/auth/credential"] == "unknown credential 'ghost'"
    assert by_path["/nodes/6"] == "node 'orphan' is not reachable from start"
    assert "'later' is not in scope" in by_path["/nodes/4/config/mapping/a"]


def test_start_end_and_cycles() -> None:
    errors = validate_graph({"nodes": [{"id": "a", "type": "transform", "config": {"mapping": {}}},
                                       {"id": "b", "type": "transform", "config": {"mapping": {}}}],
                             "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]})
    messages = {(e["path"], e["message"]) for e in errors}
    assert ("/nodes", "a graph needs exactly one start node, found 0") in messages
    assert ("/nodes", "a graph needs at least one end node") in messages
    assert ("/nodes/0", "node 'a' is part of a cycle") in messages


def test_global_params_and_builtins_are_known_and_loop_scope() -> None:
    graph = {"nodes": [
        {"id": "start", "type": "start"},
        {"id": "lp", "type": "loop", "config": {"items": [1], "body": {"nodes": [
            {"id": "x", "type": "transform", "config": {"mapping": {"i": "{{ item + index }}", "g": "${team_key}",
                                                                    "d": "${system.biz.date}"}}}]},
            "output": "{{ x.i }}"}},
        {"id": "end", "type": "end", "config": {"outputs": {"r": "{{ lp }}", "bad": "{{ x }}"}}}],
        "edges": [{"from": "start", "to": "lp"}, {"from": "lp", "to": "end"}]}
    errors = validate_graph(graph, global_params={"team_key": "k"})
    assert [e["path"] for e in errors] == ["/nodes/2/config/outputs/bad"]


def test_inputs_validation_and_schema() -> None:
    compiled = compile_test({
        "inputs": {"order_id": {"type": "string", "required": True}, "amount": {"type": "number", "default": 0},
                   "level": {"type": "string", "enum": ["lo", "hi"]}},
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}]})
    assert validate_inputs(compiled, {"order_id": "o1"}) == {"order_id": "o1", "amount": 0}
    with pytest.raises(InputInvalid) as err:
        validate_inputs(compiled, {"amount": "x", "level": "mid"})
    assert {e["path"] for e in err.value.errors} == {"/inputs/order_id", "/inputs/amount", "/inputs/level"}
    schema = inputs_json_schema(compiled.source)
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["level"] == {"type": "string", "enum": ["lo", "hi"]}


def test_engine_never_imports_django() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "workflows" / "engine"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "django" or n.startswith("django.")]
    assert offenders == []
    assert len(list(root.rglob("*.py"))) >= 10


def test_a_cycle_an_unknown_type_and_an_unreachable_node_are_all_reported() -> None:
    graph = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "a", "type": "transform", "config": {"mapping": {"x": "{{ b.v }}"}}},
            {"id": "b", "type": "transform", "config": {"mapping": {"v": "{{ nowhere }}"}}},
            {"id": "odd", "type": "teleport"},
            {"id": "lost", "type": "transform", "config": {"mapping": {}}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"},
                  {"from": "start", "to": "odd"}, {"from": "odd", "to": "end"}],
    }
    by_path = {}
    for e in validate_graph(graph):
        by_path.setdefault(e["path"], []).append(e["message"])
    assert "node 'a' is part of a cycle" in by_path["/nodes/1"]
    assert "node 'b' is part of a cycle" in by_path["/nodes/2"]
    assert by_path["/nodes/3/type"] == ["unknown node type 'teleport'"]
    assert by_path["/nodes/4"] == ["node 'lost' is not reachable from start"]
    # nodes caught in the cycle still get their own checks (and no false "not in scope")
    assert by_path["/nodes/2/config/mapping/v"] == ["unknown name 'nowhere'"]
    assert "/nodes/1/config/mapping/x" not in by_path


def _chain(n: int) -> dict:
    nodes: list[dict] = [{"id": "start", "type": "start"}]
    prev = "inputs"
    for i in range(n):
        nodes.append({"id": f"n{i}", "type": "transform", "config": {"mapping": {"v": f"{{{{ {prev} }}}}"}}})
        prev = f"n{i}"
    nodes.append({"id": "end", "type": "end"})
    return {"nodes": nodes, "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]}


def test_graph_size_budget_is_checked_first_and_counts_loop_bodies() -> None:
    import time

    from workflows.engine.limits import Limits

    big = _chain(20_000)
    big["nodes"][1]["type"] = "teleport"  # not reported: the size check comes first and stops
    started = time.process_time()
    errors = validate_graph(big)
    assert time.process_time() - started < 0.5
    assert errors == [{"path": "/nodes", "message": "the graph has 20002 nodes (loop bodies included); "
                                                    "the limit is 500 (WEFT_MAX_GRAPH_NODES)"}]
    body = [{"id": f"b{i}", "type": "transform", "config": {"mapping": {}}} for i in range(8)]
    looped = {"nodes": [{"id": "start", "type": "start"},
                        {"id": "loop", "type": "loop", "config": {"items": [], "body": {"nodes": body}}},
                        {"id": "end", "type": "end"}],
              "edges": [{"from": "start", "to": "loop"}, {"from": "loop", "to": "end"}]}
    assert validate_graph(looped, limits=Limits(graph_nodes=11)) == []
    assert validate_graph(looped, limits=Limits(graph_nodes=10))[0]["message"].startswith("the graph has 11 nodes")


def test_validation_time_grows_about_linearly() -> None:
    import time

    from workflows.engine.limits import Limits

    limits = Limits(graph_nodes=10**6)
    timings = {}
    for n in (1_000, 8_000):
        graph = _chain(n)
        started = time.process_time()
        assert validate_graph(graph, limits=limits) == []
        timings[n] = time.process_time() - started
    # 8x the nodes: quadratic would be ~64x; allow generous noise for a loaded machine
    assert timings[8_000] < 20 * timings[1_000] + 0.2, timings


def test_input_declarations_carry_form_hints_and_bounds() -> None:
    graph = {
        "inputs": {"t": {"type": "string", "title": "T", "format": "paragraph", "minLength": 1, "maxLength": 5},
                   "n": {"type": "number", "minimum": 0, "maximum": 1},
                   "f": {"type": "file", "accept": ["image/*", ".pdf"], "multiple": True}},
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}]}
    assert validate_graph(graph) == []
    compiled = compile_test(graph)
    with pytest.raises(InputInvalid) as err:
        validate_inputs(compiled, {"t": "toolong", "n": 2, "f": "https://x.example/a.png"})
    assert {e["path"] for e in err.value.errors} == {"/inputs/t", "/inputs/n", "/inputs/f"}
    assert validate_inputs(compiled, {"t": "ok", "n": 0.5, "f": ["https://x.example/a.png"]})["t"] == "ok"
    schema = inputs_json_schema(graph)["properties"]
    assert schema["t"] == {"type": "string", "title": "T", "minLength": 1, "maxLength": 5}
    assert schema["f"]["type"] == "array" and schema["f"]["x-weft-accept"] == ["image/*", ".pdf"]
    wrong = {**graph, "inputs": {"t": {"type": "string", "multiple": True, "minimum": 1},
                                 "n": {"type": "integer", "minimum": 3, "maximum": 1},
                                 "s": {"type": "string", "format": "colour"}}}
    assert {e["path"] for e in validate_graph(wrong)} == {"/inputs/t/multiple", "/inputs/t/minimum",
                                                         "/inputs/n/minimum", "/inputs/s/format"}


@pytest.mark.parametrize("fmt,good,bad", [
    ("email", "ann@x.example", "ann-at-x"), ("uri", "https://x.example/a", "not a uri"),
    ("date", "2026-02-28", "2026-02-30"), ("date-time", "2026-02-28T10:00:00Z", "yesterday"),
])
def test_declared_string_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    compiled = compile_test({"inputs": {"v": {"type": "string", "format": fmt}},
                             "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
                             "edges": [{"from": "start", "to": "end"}]})
    assert validate_inputs(compiled, {"v": good}) == {"v": good}
    with pytest.raises(InputInvalid) as err:
        validate_inputs(compiled, {"v": bad})
    assert [e["path"] for e in err.value.errors] == ["/inputs/v"]
    paragraph = compile_test({"inputs": {"v": {"type": "string", "format": "paragraph"}},
                              "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
                              "edges": [{"from": "start", "to": "end"}]})
    assert validate_inputs(paragraph, {"v": bad}) == {"v": bad}  # a form hint, not a constraint
