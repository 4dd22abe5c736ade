"""The ``start`` node: exactly one per graph, no config; its output is the run's validated inputs
(defaults applied), which every later node reads as ``inputs`` or through the start node's id.
Inputs that do not match their declarations are refused before anything runs; the start node's
output is exempt from the stored-output budget (the request-body budget bounds it)."""

from __future__ import annotations

import pytest

from tests.engine.helpers import Build, FakeHost, Problems, RunFn
from workflows.engine.graph import InputInvalid
from workflows.engine.limits import Limits

INPUTS = {"n": {"type": "integer", "default": 3}, "name": {"type": "string", "required": True},
          "tags": {"type": "array"}}


def test_its_output_is_the_validated_inputs_with_defaults_applied(run: RunFn, around: Build) -> None:
    ran = run(around(inputs=INPUTS, end={"s": "{{ start }}", "n": "{{ start.n }}"}), {"name": "ada"})
    assert ran.outcome.status == "succeeded"
    assert ran.record("start").output == {"name": "ada", "n": 3}  # ``tags`` not given, no default: absent
    assert ran.outcome.outputs == {"s": {"name": "ada", "n": 3}, "n": 3}
    record = ran.record("start")
    assert (record.status, record.port, record.inputs, record.receipt_token) == ("succeeded", None, {}, "")
    assert ran.events("start") == [("node_started", "running"), ("node_finished", "succeeded")]
    finished = [e for e in ran.host.events if e.data.get("key") == "start"][-1]
    assert finished.data["outputs"] == {"name": "ada", "n": 3}


def test_the_next_node_reads_the_inputs_as_its_upstream_data(run: RunFn, around: Build) -> None:
    mapping = {"name": "$.name", "count": "$.tags.count()", "twice": "{{ inputs.n * 2 }}"}
    ran = run(around({"id": "t", "type": "transform", "config": {"mapping": mapping}}, inputs=INPUTS),
              {"name": "ada", "n": 4, "tags": ["a", "b"]})
    assert ran.outcome.outputs == {"out": {"name": "ada", "count": 2, "twice": 8}}


def test_inputs_that_do_not_match_their_declarations_are_refused_before_anything_runs(around: Build,
                                                                                     run: RunFn) -> None:
    host = FakeHost()
    with pytest.raises(InputInvalid) as refused:
        run(around(inputs=INPUTS), {"n": "three", "tags": "a"}, host=host)
    assert sorted(e["path"] for e in refused.value.errors) == ["/inputs/n", "/inputs/name", "/inputs/tags"]
    assert "'name' is a required property" in {e["message"] for e in refused.value.errors}
    assert (host.commits, host.records, host.events) == (0, {}, [])


def test_its_output_is_exempt_from_the_stored_output_budget(run: RunFn, around: Build) -> None:
    big = "x" * 5000
    ran = run(around(inputs={"s": {"type": "string"}}, end={"s": "{{ inputs.s }}"}), {"s": big},
              limits=Limits(output_bytes=1024))
    assert ran.record("start").status == "succeeded" and ran.record("start").output == {"s": big}
    # the end node copying the same value is held to the budget
    assert ran.outcome.status == "failed" and ran.outcome.error["code"] == "limit_exceeded"
    assert ran.outcome.error["node_id"] == "end"


def test_publish_refuses_config_a_second_start_and_a_start_inside_a_loop_body(problems: Problems) -> None:
    graph = {"nodes": [{"id": "start", "type": "start", "config": {"greeting": "hi"}},
                       {"id": "again", "type": "start"},
                       {"id": "lp", "type": "loop", "config": {"items": [1], "body": {
                           "nodes": [{"id": "inner", "type": "start"}]}}},
                       {"id": "end", "type": "end"}],
             "edges": [{"from": "start", "to": "lp"}, {"from": "again", "to": "lp"}, {"from": "lp", "to": "end"}]}
    assert problems(graph) == [
        ("/nodes", "a graph needs exactly one start node, found 2"),
        ("/nodes/0/config", "Additional properties are not allowed ('greeting' was unexpected)"),
        ("/nodes/2/config/body/nodes/0/type", "a loop body cannot contain a 'start' node"),
    ]
    del graph["nodes"][1], graph["edges"][1]
    graph["nodes"][0].pop("config")
    graph["nodes"][1]["config"]["body"]["nodes"][0]["type"] = "count"
    assert problems(graph) == []
