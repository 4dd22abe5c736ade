"""The ``condition`` node: ``{"cases": [{"id", "when": CEL}]}``. Cases are evaluated in order; the
first true one is the port taken (its id), none true takes ``else``; the branches not taken are
skipped (recorded, no events). Data flows through: the output is the upstream data unchanged, the
case taken is the record's port and ``process_data``. A ``when`` that fails or is not a boolean
fails the node naming the case; publish refuses reserved, duplicate or malformed case ids, bad CEL,
unknown names and edges on ports the node does not have."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import Build, Problems, RunFn

INPUTS = {"n": {"type": "integer"}, "s": {"type": "string"}, "xs": {"type": "array"}, "flag": {"type": "boolean"},
          "m": {"type": "object"}}
VALUES = {"n": 5, "s": "hello", "xs": [1, 2, 3], "flag": True, "m": {"k": "v"}}


def branching(cases: list[dict[str, Any]], upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    """start [-> up] -> check; one ``count`` node per case id and for ``else``, each feeding its own end."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    edges: list[dict[str, Any]] = []
    previous = "start"
    if upstream is not None:
        nodes.append({"id": "up", "type": "transform", "config": {"mapping": upstream}})
        edges.append({"from": "start", "to": "up"})
        previous = "up"
    nodes.append({"id": "check", "type": "condition", "config": {"cases": cases}})
    edges.append({"from": previous, "to": "check"})
    for port in [*(c["id"] for c in cases), "else"]:
        nodes += [{"id": f"on_{port}", "type": "count", "config": {"value": port}},
                  {"id": f"end_{port}", "type": "end", "config": {"outputs": {"took": f"{{{{ on_{port} }}}}",
                                                                           "data": "{{ check }}"}}}]
        edges += [{"from": "check", "to": f"on_{port}", "port": port}, {"from": f"on_{port}", "to": f"end_{port}"}]
    return {"inputs": INPUTS, "nodes": nodes, "edges": edges}


@pytest.mark.parametrize(("when", "taken"), [
    ("inputs.n == 5", True), ("inputs.n != 5", False), ("inputs.n < 5", False), ("inputs.n <= 5", True),
    ("inputs.n > 4", True), ("inputs.n >= 6", False), ("2 in inputs.xs", True), ("'k' in inputs.m", True),
    ("inputs.flag && inputs.n > 10", False), ("!inputs.flag || inputs.n % 2 == 1", True), ("!inputs.flag", False),
    ("inputs.s.startsWith('he') && inputs.s.endsWith('lo')", True), ("inputs.s.contains('xyz')", False),
    ("inputs.s.matches('^h.*o$')", True), ("size(inputs.xs) == 3", True),
    ("(inputs.n > 1 ? 'a' : 'b') == 'b'", False), ("inputs.m.k == 'v' && has(inputs.m.k)", True),
])
def test_each_operator_routes_to_the_case_port_or_else(run: RunFn, when: str, taken: bool) -> None:
    ran = run(branching([{"id": "yes", "when": when}]), VALUES)
    port, other = ("yes", "else") if taken else ("else", "yes")
    assert ran.outcome.status == "succeeded"
    assert ran.outcome.outputs == {"took": port, "data": VALUES}
    record = ran.record("check")
    assert (record.port, record.process_data, record.output) == (port, {"case": port}, VALUES)
    assert ran.record(f"on_{other}").status == "skipped" and ran.record(f"end_{other}").status == "skipped"
    assert ran.events(f"on_{other}") == []  # a branch not taken is recorded, never announced
    finished = [e for e in ran.host.events if e.data.get("key") == "check"][-1]
    assert (finished.data["port"], finished.data["process_data"]) == (port, {"case": port})


def test_the_first_true_case_wins_and_later_cases_are_not_evaluated(run: RunFn) -> None:
    cases = [{"id": "big", "when": "inputs.n > 10"}, {"id": "positive", "when": "inputs.n > 0"},
             {"id": "broken", "when": "inputs.m.missing > 0"}]
    for n, port in ((50, "big"), (3, "positive")):
        ran = run(branching(cases), {**VALUES, "n": n})
        assert ran.outcome.outputs["took"] == port
        assert ran.keys("skipped") == [k for p in ("big", "positive", "broken", "else") if p != port
                                       for k in (f"on_{p}", f"end_{p}")]
    # only when no earlier case is true is the broken one evaluated, and it fails the node
    ran = run(branching(cases), {**VALUES, "n": 0})
    assert ran.outcome.status == "failed"
    assert ran.outcome.error == {"code": "expression_error", "message": "nodes.check.config.cases[2].when: no such key "
                                 "'missing'", "node_id": "check"}
    assert not [k for k in ran.host.records if k.startswith(("on_", "end_"))]


def test_no_case_true_and_no_cases_at_all_take_else(run: RunFn) -> None:
    ran = run(branching([{"id": "a", "when": "false"}, {"id": "b", "when": "inputs.n < 0"}]), VALUES)
    assert ran.outcome.outputs["took"] == "else" and ran.record("check").port == "else"
    ran = run(branching([]), VALUES)
    assert ran.outcome.outputs["took"] == "else" and ran.record("check").process_data == {"case": "else"}


def test_data_flows_through_unchanged(run: RunFn) -> None:
    upstream = {"order": "{{ inputs.s }}", "items": "$.xs"}
    ran = run(branching([{"id": "many", "when": "size(up.items) > 2"}], upstream), VALUES)
    assert ran.outcome.outputs == {"took": "many", "data": {"order": "hello", "items": [1, 2, 3]}}
    assert ran.record("check").output == ran.record("up").output


@pytest.mark.parametrize(("when", "message"), [
    ("inputs.n", "nodes.check.config.cases[0].when: must be a boolean, got 5"),
    ("inputs.s", "nodes.check.config.cases[0].when: must be a boolean, got 'hello'"),
    ("inputs.n > 'x'", "nodes.check.config.cases[0].when: "),  # CEL's own message follows
])
def test_a_when_that_is_not_a_boolean_fails_naming_the_case(run: RunFn, when: str, message: str) -> None:
    ran = run(branching([{"id": "bad", "when": when}]), VALUES)
    assert ran.outcome.status == "failed" and ran.outcome.error["code"] == "expression_error"
    assert ran.outcome.error["message"].startswith(message), ran.outcome.error
    assert ran.record("check").status == "failed" and ran.record("check").port is None
    assert ran.events("check") == [("node_started", "running"), ("node_finished", "failed")]


def test_publish_refuses_bad_cases_naming_each_field(problems: Problems, around: Build) -> None:
    cases = [{"id": "else", "when": "true"}, {"id": "error", "when": "true"}, {"id": "a", "when": "true"},
             {"id": "a", "when": "false"}, {"id": "9x", "when": "true"}, {"id": "b", "when": ""},
             {"id": "c", "when": "inputs.n >"}, {"id": "d", "when": "later > 1"}, {"when": "true"},
             {"id": "e", "when": "true", "then": "x"}]
    graph = around({"id": "check", "type": "condition", "config": {"cases": cases}}, inputs={"n": {"type": "integer"}})
    found = problems(graph)
    assert ("/nodes/1/config/cases/0/id", "case id 'else' is reserved") in found
    assert ("/nodes/1/config/cases/1/id", "case id 'error' is reserved") in found
    assert ("/nodes/1/config/cases/3/id", "duplicate case id 'a'") in found
    assert ("/nodes/1/config/cases/5/when", "'' should be non-empty") in found
    assert ("/nodes/1/config/cases/7/when", "unknown name 'later'") in found
    assert ("/nodes/1/config/cases/8/id", "'id' is a required property") in found
    assert ("/nodes/1/config/cases/9", "Additional properties are not allowed ('then' was unexpected)") in found
    by_path = dict(found)
    assert "does not match" in by_path["/nodes/1/config/cases/4/id"]
    assert by_path["/nodes/1/config/cases/6/when"].startswith("invalid expression 'inputs.n >': syntax error")
    assert len(found) == 10, found  # those, plus the empty ``when`` not compiling either
    assert problems(around({"id": "check", "type": "condition", "config": {}})) == [
        ("/nodes/1/config/cases", "'cases' is a required property")]


@pytest.mark.parametrize(("cases", "found"), [
    ("big", [("/nodes/1/config/cases", "'big' is not of type 'array'")]),
    ([1, 2], [("/nodes/1/config/cases/0", "1 is not of type 'object'"),
              ("/nodes/1/config/cases/1", "2 is not of type 'object'")]),
    ([{"id": ["a"], "when": "true"}, {"id": {"x": 1}, "when": "true"}],
     [("/nodes/1/config/cases/0/id", "['a'] is not of type 'string'"),
      ("/nodes/1/config/cases/1/id", "{'x': 1} is not of type 'string'")]),
])
def test_malformed_cases_are_reported_once_by_the_schema(problems: Problems, around: Build, cases: Any,
                                                          found: list[tuple[str, str]]) -> None:
    """No made-up ``duplicate case id None`` for cases without a string id, and an id that is a list
    or an object is reported (it used to crash the check: ``unhashable type``)."""
    assert problems(around({"id": "check", "type": "condition", "config": {"cases": cases}})) == found


def test_edges_may_name_only_the_case_ports_else_and_an_error_branch(problems: Problems) -> None:
    graph = {"nodes": [{"id": "start", "type": "start"},
                       {"id": "check", "type": "condition", "config": {"cases": [{"id": "hi", "when": "true"}]}},
                       {"id": "end", "type": "end"}],
             "edges": [{"from": "start", "to": "check"}, {"from": "check", "to": "end", "port": "hi"},
                       {"from": "check", "to": "end", "port": "else"}, {"from": "check", "to": "end", "port": "lo"},
                       {"from": "check", "to": "end", "port": "error"}]}
    assert problems(graph) == [("/edges/3/port", "node 'check' has no port 'lo' (ports: hi, else)"),
                               ("/edges/4/port", "port 'error' needs on_error 'branch' on node 'check'")]
    graph["nodes"][1]["on_error"] = "branch"
    del graph["edges"][3]
    assert problems(graph) == []
