"""The ``end`` node: ``{"outputs": {name: value}}`` resolved when it runs is its output; the run's
outputs are the union of the outputs of every end node reached (an end on a branch not taken is
skipped and adds nothing). Outputs that do not match the graph's ``outputs`` declarations are
reported in ``RunOutcome.output_problems``, not as a failure; a value that cannot be resolved
fails the end node naming the field."""

from __future__ import annotations

from tests.engine.helpers import Build, Problems, RunFn

INPUTS = {"n": {"type": "integer"}, "user": {"type": "object"}}


def test_outputs_are_resolved_keeping_the_type_of_a_lone_template(run: RunFn, around: Build) -> None:
    end = {"n": "{{ inputs.n }}", "user": "{{ inputs.user }}", "text": "n={{ inputs.n }}", "fixed": [1, True, None],
           "nested": {"id": "{{ inputs.user.id }}", "both": ["{{ inputs.n + 1 }}", "lit"]}}
    ran = run(around(inputs=INPUTS, end=end), {"n": 2, "user": {"id": "u1"}})
    expected = {"n": 2, "user": {"id": "u1"}, "text": "n=2", "fixed": [1, True, None],
                "nested": {"id": "u1", "both": [3, "lit"]}}
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == expected
    record = ran.record("end")
    assert (record.status, record.output, record.inputs) == ("succeeded", expected, {"outputs": expected})
    assert ran.events("end") == [("node_started", "running"), ("node_finished", "succeeded")]
    assert ran.outcome.output_problems == []


def test_an_end_without_config_outputs_nothing(run: RunFn) -> None:
    ran = run({"nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
               "edges": [{"from": "start", "to": "end"}]})
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {} and ran.record("end").output == {}


def test_the_run_outputs_are_the_union_of_the_ends_reached(run: RunFn) -> None:
    graph = {
        "inputs": {"n": {"type": "integer"}},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "check", "type": "condition", "config": {"cases": [{"id": "big", "when": "inputs.n > 10"}]}},
                  {"id": "always", "type": "end", "config": {"outputs": {"seen": "{{ inputs.n }}"}}},
                  {"id": "big_end", "type": "end", "config": {"outputs": {"size": "big"}}},
                  {"id": "small_end", "type": "end", "config": {"outputs": {"size": "small"}}}],
        "edges": [{"from": "start", "to": "check"}, {"from": "start", "to": "always"},
                  {"from": "check", "to": "big_end", "port": "big"},
                  {"from": "check", "to": "small_end", "port": "else"}],
    }
    ran = run(graph, {"n": 50})
    assert ran.outcome.outputs == {"seen": 50, "size": "big"}
    assert ran.record("small_end").status == "skipped" and ran.events("small_end") == []
    ran = run(graph, {"n": 5})
    assert ran.outcome.outputs == {"seen": 5, "size": "small"}
    assert ran.record("big_end").status == "skipped" and ran.record("big_end").output is None


def test_outputs_not_matching_the_declarations_are_reported_not_failed(run: RunFn, around: Build) -> None:
    declared = {"n": {"type": "integer"}, "label": {"type": "string", "required": True}}
    ran = run(around(inputs=INPUTS, outputs=declared, end={"n": "{{ string(inputs.n) }}", "extra": 1}), {"n": 7})
    assert ran.outcome.status == "succeeded"
    assert ran.outcome.outputs == {"n": "7", "extra": 1}
    assert ran.outcome.output_problems == [{"path": "/outputs/label", "message": "'label' is a required property"},
                                           {"path": "/outputs/n", "message": "'7' is not of type 'integer'"}]
    ran = run(around(inputs=INPUTS, outputs=declared, end={"n": "{{ inputs.n }}", "label": "seven"}), {"n": 7})
    assert ran.outcome.output_problems == []


def test_a_value_that_cannot_be_resolved_fails_the_end_naming_the_field(run: RunFn, around: Build) -> None:
    ran = run(around(inputs=INPUTS, end={"ok": 1, "deep": {"id": "{{ inputs.user.id }}"}}), {"user": {}})
    assert ran.outcome.status == "failed"
    assert ran.outcome.error == {"code": "expression_error", "message": "nodes.end.config.outputs.deep.id: no such key 'id'",
                                 "node_id": "end"}
    assert ran.outcome.outputs == {}  # nothing of the failed end reaches the run's outputs
    assert ran.record("end").status == "failed" and ran.record("end").output is None
    assert ran.events("end")[-1] == ("node_finished", "failed")


def test_publish_refuses_bad_outputs_unknown_names_and_an_end_inside_a_loop_body(problems: Problems) -> None:
    graph = {
        "inputs": {"n": {"type": "integer"}},
        "nodes": [{"id": "start", "type": "start"},
                  {"id": "side", "type": "transform", "config": {"mapping": {"v": 1}}},
                  {"id": "lp", "type": "loop", "config": {"items": [1], "body": {
                      "nodes": [{"id": "inner", "type": "end"}]}}},
                  {"id": "end", "type": "end", "config": {"outputs": {"a": "{{ nope }}", "b": "{{ side.v }}"},
                                                         "title": "x"}},
                  {"id": "end2", "type": "end", "config": {"outputs": ["n"]}}],
        "edges": [{"from": "start", "to": "side"}, {"from": "start", "to": "lp"}, {"from": "lp", "to": "end"},
                  {"from": "side", "to": "end2"}],
    }
    assert problems(graph) == [
        ("/nodes/2/config/body/nodes/0/type", "a loop body cannot contain a 'end' node"),
        ("/nodes/4/config/outputs", "['n'] is not of type 'object'"),
        ("/nodes/3/config", "Additional properties are not allowed ('title' was unexpected)"),
        ("/nodes/3/config/outputs/a", "unknown name 'nope'"),
        ("/nodes/3/config/outputs/b", "'side' is not in scope here (only upstream nodes, inputs, params, run)"),
    ]
