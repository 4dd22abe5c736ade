"""The ``workflow`` node: ``{"workflow": id, "inputs": {...}}`` asks the platform
(``Services.run_child_workflow``) to run a published workflow of the same team as a child run, with
the inputs resolved in the node's scope, the parent run's id and the node execution's key (inside a
loop: ``lp[1].call``); the child's outputs are the node's output. A child failure is the
``NodeError`` the service raises, with its code and detail; a budget it crosses (sub-workflow depth,
the team's concurrency) is ``limit_exceeded`` and never retried. A host without a platform refuses
the node (``unsupported``). Publish checks the config and lists the workflow it names (the host
checks it against the team's workflows and their call graph).

The platform side (a real child run, ``WEFT_MAX_WORKFLOW_DEPTH``, the concurrency limit, the
parent chain) is tested with the database in ``tests/runs/test_subworkflow_runs.py`` and
``tests/workflows/test_subworkflow_calls.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import Build, Problems, RunFn
from workflows.engine.errors import LimitExceeded, NodeError
from workflows.engine.graph import graph_references
from workflows.engine.nodes.base import Reference
from workflows.engine.ports import NullServices

INPUTS = {"n": {"type": "integer"}, "xs": {"type": "array"}}


class Children(NullServices):
    """Child workflows answered from ``results`` (a value, or a NodeError to raise), one per call in turn."""

    def __init__(self, *results: Any) -> None:
        super().__init__()
        self.results = list(results)
        self.calls: list[dict[str, Any]] = []

    def run_child_workflow(self, *, workflow_id: str, inputs: dict[str, Any], parent_run_id: str | None = None,
                           node_key: str | None = None) -> Any:
        self.calls.append({"workflow_id": workflow_id, "inputs": inputs, "parent_run_id": parent_run_id,
                           "node_key": node_key})
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, NodeError):
            raise result
        return result


def call(**config: Any) -> dict[str, Any]:
    return {"id": "child", "type": "workflow", "config": {"workflow": "wf_2", **config}}


def test_it_runs_the_child_with_resolved_inputs_and_outputs_its_outputs(run: RunFn, around: Build) -> None:
    services = Children({"ok": True, "total": 3})
    ran = run(around(call(inputs={"n": "{{ inputs.n + 1 }}", "fixed": "x"}),
                     inputs=INPUTS, end={"ok": "{{ child.ok }}", "total": "{{ child.total }}"}),
              {"n": 1}, services=services, run_id="run-7")
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"ok": True, "total": 3}
    assert services.calls == [{"workflow_id": "wf_2", "inputs": {"n": 2, "fixed": "x"}, "parent_run_id": "run-7",
                               "node_key": "child"}]
    record = ran.record("child")
    assert (record.status, record.output) == ("succeeded", {"ok": True, "total": 3})
    assert record.inputs == {"workflow": "wf_2", "inputs": {"n": 2, "fixed": "x"}} and record.receipt_token != ""
    assert ran.events("child") == [("node_started", "running"), ("node_finished", "succeeded")]


def test_without_inputs_the_child_gets_an_empty_object_and_an_integer_id_passes_as_is(run: RunFn,
                                                                                      around: Build) -> None:
    services = Children({})
    ran = run(around({"id": "child", "type": "workflow", "config": {"workflow": 42}}), services=services)
    assert ran.outcome.status == "succeeded" and ran.record("child").output == {}
    assert services.calls[0]["workflow_id"] == 42 and services.calls[0]["inputs"] == {}


def test_inside_a_loop_each_item_calls_the_child_under_its_own_key(run: RunFn, around: Build) -> None:
    services = Children({"v": "a"}, {"v": "b"})
    lp = {"id": "lp", "type": "loop", "config": {"items": "{{ inputs.xs }}", "output": "{{ call.v }}", "body": {
        "nodes": [{"id": "call", "type": "workflow", "config": {"workflow": "wf_2", "inputs": {"x": "{{ item }}"}}}]}}}
    ran = run(around(lp, inputs=INPUTS), {"xs": [10, 20]}, services=services)
    assert ran.outcome.outputs == {"out": ["a", "b"]}
    assert [(c["node_key"], c["inputs"]) for c in services.calls] == [("lp[0].call", {"x": 10}), ("lp[1].call", {"x": 20})]


def test_a_child_failure_fails_the_node_with_the_child_error(run: RunFn, around: Build) -> None:
    failure = NodeError("child workflow failed", code="child_failed", detail={"runId": "r-2", "error": {"code": "x"}})
    ran = run(around(call(), {"id": "after", "type": "count"}), services=Children(failure))
    assert ran.outcome.status == "failed"
    assert ran.outcome.error == {"code": "child_failed", "message": "child workflow failed",
                                 "detail": {"runId": "r-2", "error": {"code": "x"}}, "node_id": "child"}
    assert ran.record("child").status == "failed" and "after" not in ran.host.records
    # with on_error continue the run goes on with the error as the node's output
    node = {**call(), "on_error": "continue"}
    ran = run(around(node, {"id": "after", "type": "count", "config": {"value": "{{ child.error.code }}"}}),
              services=Children(failure))
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": "child_failed"}


def test_a_budget_the_child_crosses_is_limit_exceeded_and_never_retried(run: RunFn, around: Build) -> None:
    services = Children(LimitExceeded("child workflow: The sub-workflow would run 6 levels deep; the limit is 5 "
                                      "(WEFT_MAX_WORKFLOW_DEPTH)."))
    ran = run(around({**call(), "retry": {"count": 3, "interval": 0}}), services=services)
    assert ran.outcome.status == "failed" and ran.outcome.error["code"] == "limit_exceeded"
    assert "WEFT_MAX_WORKFLOW_DEPTH" in ran.outcome.error["message"]
    assert len(services.calls) == 1 and ran.record("child").attempt == 1
    assert "node_retry" not in [t for t, _ in ran.events("child")]


def test_a_child_that_could_not_start_is_retried_by_the_node_policy(run: RunFn, around: Build) -> None:
    busy = NodeError("child workflow could not be claimed", retryable=True, code="child_unavailable")
    services = Children(busy, {"ok": 1})
    ran = run(around({**call(), "retry": {"count": 2, "interval": 0}}), services=services)
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": {"ok": 1}}
    assert len(services.calls) == 2 and ran.record("child").attempt == 2
    assert [t for t, _ in ran.events("child")] == ["node_started", "node_retry", "node_finished"]


def test_a_host_without_a_platform_refuses_the_node(run: RunFn, around: Build) -> None:
    ran = run(around(call()))  # NullServices
    assert ran.outcome.status == "failed"
    assert (ran.outcome.error["code"], ran.outcome.error["message"]) == ("unsupported",
                                                                         "sub-workflows are not available here")


def test_an_input_that_cannot_be_resolved_fails_before_the_child_is_called(run: RunFn, around: Build) -> None:
    services = Children({})
    ran = run(around(call(inputs={"a": {"b": "{{ inputs.nope }}"}})), services=services)
    assert ran.outcome.status == "failed"
    assert ran.outcome.error["message"] == "nodes.child.config.inputs.a.b: no such key 'nope'"
    assert services.calls == []


def test_publish_checks_the_config_and_lists_the_workflow_it_names(problems: Problems, around: Build) -> None:
    graph = around(call(inputs={"a": "{{ nope }}"}, retries=2), inputs=INPUTS)
    assert problems(graph) == [("/nodes/1/config", "Additional properties are not allowed ('retries' was unexpected)"),
                               ("/nodes/1/config/inputs/a", "unknown name 'nope'")]
    assert problems(around({"id": "child", "type": "workflow", "config": {"inputs": []}})) == [
        ("/nodes/1/config/workflow", "'workflow' is a required property"),
        ("/nodes/1/config/inputs", "[] is not of type 'object'")]
    assert problems(around({"id": "child", "type": "workflow", "config": {"workflow": 1.5}})) == [
        ("/nodes/1/config/workflow", "1.5 is not of type 'string', 'integer'")]
    lp = {"id": "lp", "type": "loop", "config": {"items": [1], "body": {
        "nodes": [{"id": "inner", "type": "workflow", "config": {"workflow": 7}}]}}}
    assert graph_references(around(call(), lp)) == [
        ("/nodes/1", "child", Reference("/workflow", "workflow", "wf_2")),
        ("/nodes/2/config/body/nodes/0", "inner", Reference("/workflow", "workflow", 7))]


@pytest.mark.parametrize("workflow", ["wf_2", 3])
def test_a_valid_config_has_no_problems(problems: Problems, around: Build, workflow: Any) -> None:
    assert problems(around({"id": "c", "type": "workflow", "config": {"workflow": workflow,
                                                                      "inputs": {"n": "{{ inputs.n }}"}}},
                           inputs=INPUTS)) == []
