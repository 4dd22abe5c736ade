"""The ``loop`` node: runs its ``body`` sub-graph once per item of ``items``, with ``item`` and
``index`` (and the loop's own ancestors) in scope; its output is the list of per-item outputs in
item order (``output`` resolved in the body's scope, default: the only sink's output, else
``{sink: output}``). At most ``parallelism`` items run at once. A failed item fails the loop
(``loop_item_failed``; running items end, no more start) or, with ``on_item_error: continue``, is
``{"error": ...}`` in the list. ``items`` that are not a list fail the node, more than
``WEFT_MAX_LOOP_ITEMS`` fail it ``limit_exceeded`` before any item runs. Body node executions are
journaled as ``<loop key>[i].<node>`` (nested: ``outer[1].inner[0].node``), so a resumed run replays
finished items; a run that ends while the loop runs leaves it ``stopped``, not ``running``."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.engine.helpers import EXECUTIONS, Build, FakeHost, Problems, RunFn, compile_test
from workflows.engine.limits import Limits

INPUTS = {"xs": {"type": "array"}, "k": {"type": "integer"}}


def loop(body: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, node_id: str = "lp",
         **config: Any) -> dict[str, Any]:
    body_graph: dict[str, Any] = {"nodes": body}
    if edges is not None:
        body_graph["edges"] = edges
    return {"id": node_id, "type": "loop", "config": {"items": "{{ inputs.xs }}", "body": body_graph, **config}}


def count(node_id: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "count", "config": {"value": value, **extra}}


def test_each_item_runs_the_body_with_item_index_and_the_loops_ancestors_in_scope(run: RunFn, around: Build) -> None:
    prep = {"id": "prep", "type": "transform", "config": {"mapping": {"base": "{{ inputs.k * 100 }}"}}}
    body = [count("x", {"item": "{{ item }}", "index": "{{ index }}", "sum": "{{ prep.base + item + inputs.k }}"})]
    ran = run(around(prep, loop(body), inputs=INPUTS), {"xs": [5, 6], "k": 1})
    assert ran.outcome.status == "succeeded"
    expected = [{"item": 5, "index": 0, "sum": 106}, {"item": 6, "index": 1, "sum": 107}]
    assert ran.outcome.outputs == {"out": expected}
    record = ran.record("lp")
    assert (record.status, record.inputs, record.output) == ("succeeded", {"items": [5, 6]}, expected)
    for i in (0, 1):
        body_record = ran.record(f"lp[{i}].x")
        assert (body_record.loop_key, body_record.iteration_index, body_record.output) == ("lp", i, expected[i])
    # parallelism 1 (the default): one item after the other
    assert ran.events("lp") == [("node_started", "running"), ("iteration_started", "running"),
                                ("iteration_next", None), ("iteration_next", None),
                                ("iteration_completed", "succeeded"), ("node_finished", "succeeded")]
    order = [(str(e.type), e.data["key"]) for e in ran.host.events if e.data.get("key", "").startswith("lp")]
    assert order[2:9] == [("iteration_next", "lp"), ("node_started", "lp[0].x"), ("node_finished", "lp[0].x"),
                          ("iteration_next", "lp"), ("node_started", "lp[1].x"), ("node_finished", "lp[1].x"),
                          ("iteration_completed", "lp")]
    assert [e.data["iteration_index"] for e in ran.host.events if e.type == "iteration_next"] == [0, 1]


def test_the_item_output_is_the_only_sink_every_sink_or_the_output_expression(run: RunFn, around: Build) -> None:
    chained = [count("a", "{{ item }}"), count("b", "{{ a * 10 }}")]
    edges = [{"from": "a", "to": "b"}]
    ran = run(around(loop(chained, edges), inputs=INPUTS), {"xs": [1, 2]})
    assert ran.outcome.outputs == {"out": [10, 20]}  # the only sink, b
    ran = run(around(loop([count("a", "{{ item }}"), count("b", "{{ index }}")]), inputs=INPUTS), {"xs": [1, 2]})
    assert ran.outcome.outputs == {"out": [{"a": 1, "b": 0}, {"a": 2, "b": 1}]}
    ran = run(around(loop(chained, edges, output={"i": "{{ index }}", "v": "{{ a + b }}", "item": "{{ item }}"}),
                     inputs=INPUTS), {"xs": [1, 2]})
    assert ran.outcome.outputs == {"out": [{"i": 0, "v": 11, "item": 1}, {"i": 1, "v": 22, "item": 2}]}


def test_an_empty_list_succeeds_with_an_empty_output_and_runs_no_body(run: RunFn, around: Build) -> None:
    ran = run(around(loop([count("x", 1)]), inputs=INPUTS), {"xs": []})
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": []}
    assert not [k for k in ran.host.records if k.startswith("lp[")]
    assert ran.events("lp") == [("node_started", "running"), ("iteration_started", "running"),
                                ("iteration_completed", "succeeded"), ("node_finished", "succeeded")]


@pytest.mark.parametrize(("items", "message"), [
    ("{{ 'abc' }}", "nodes.lp.config.items: must be a list, got str"),
    ({"a": 1}, "nodes.lp.config.items: must be a list, got dict"),
    ("{{ inputs.nope }}", "nodes.lp.config.items: no such key 'nope'"),
])
def test_items_that_are_not_a_list_fail_the_loop_before_any_item(run: RunFn, around: Build, items: Any,
                                                                 message: str) -> None:
    ran = run(around(loop([count("x", 1)], items=items), inputs=INPUTS), {"xs": [1]})
    assert ran.outcome.status == "failed"
    assert (ran.outcome.error["code"], ran.outcome.error["message"]) == ("expression_error", message)
    assert ran.record("lp").status == "failed" and ran.record("lp").error["message"] == message
    assert not [k for k in ran.host.records if k.startswith("lp[")] and EXECUTIONS == {}


def test_more_items_than_the_budget_fail_limit_exceeded_before_any_item(run: RunFn, around: Build) -> None:
    graph = around(loop([count("x", "{{ item }}")]), inputs=INPUTS)
    ran = run(graph, {"xs": list(range(11))}, limits=Limits(loop_items=10))
    assert ran.outcome.status == "failed"
    assert ran.outcome.error["code"] == "limit_exceeded"
    assert ran.outcome.error["message"] == "nodes.lp.config.items: 11 items; the limit is 10 (WEFT_MAX_LOOP_ITEMS)"
    assert ran.record("lp").error["detail"] == {"items": 11, "limit": 10}
    assert not [k for k in ran.host.records if k.startswith("lp[")] and EXECUTIONS == {}
    ran = run(graph, {"xs": list(range(10))}, limits=Limits(loop_items=10))
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": list(range(10))}


def test_parallel_items_keep_item_order_and_never_exceed_the_parallelism(run: RunFn, around: Build) -> None:
    """Item 0 waits a second, the others not at all: they all finish before it, two slots turning
    over while item 0 holds the third, and the output is still in item order."""
    body = [{"id": "s", "type": "slow", "config": {"seconds": "{{ index == 0 ? 1.0 : 0.0 }}", "value": "{{ item * item }}"}}]
    ran = run(around(loop(body, parallelism=3), inputs=INPUTS), {"xs": [1, 2, 3, 4, 5, 6]})
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": [1, 4, 9, 16, 25, 36]}
    active, most, finished = 0, 0, []
    for event in ran.host.events:
        if event.type == "iteration_next":
            active += 1
            most = max(most, active)
        elif event.type == "node_finished" and event.data["key"].startswith("lp["):
            active -= 1
            finished.append(event.data["iteration_index"])
    assert most == 3 and finished[-1] == 0 and sorted(finished) == [0, 1, 2, 3, 4, 5]
    starts = [e.data["iteration_index"] for e in ran.host.events if e.type == "iteration_next"]
    assert starts == [0, 1, 2, 3, 4, 5]


def test_a_failed_item_with_on_item_error_continue_is_an_error_in_the_list(run: RunFn, around: Build) -> None:
    ran = run(around(loop([count("c", "{{ 10 / item }}")], on_item_error="continue"), inputs=INPUTS),
              {"xs": [1, 0, 2]})
    assert ran.outcome.status == "succeeded"
    first, failed, last = ran.outcome.outputs["out"]
    assert (first, last) == (10, 5)
    assert failed["error"]["node_id"] == "c" and failed["error"]["code"] == "expression_error"
    assert failed["error"]["message"].startswith("nodes.c.config.value:")
    assert ran.record("lp[1].c").status == "failed" and ran.record("lp[2].c").status == "succeeded"


def test_a_failed_item_fails_the_loop_and_no_later_item_starts(run: RunFn, around: Build) -> None:
    ran = run(around(loop([count("c", "{{ 10 / item }}")]), {"id": "after", "type": "count"}, inputs=INPUTS),
              {"xs": [1, 0, 2]})
    assert ran.outcome.status == "failed" and ran.outcome.error["code"] == "loop_item_failed"
    assert ran.outcome.error["node_id"] == "lp"
    assert (ran.outcome.error["detail"]["node_id"], ran.outcome.error["detail"]["index"]) == ("c", 1)
    assert ran.outcome.error["message"] == "loop item 1 failed: " + ran.outcome.error["detail"]["message"]
    assert "lp[2].c" not in ran.host.records and "after" not in ran.host.records
    assert ran.events("lp")[-2:] == [("iteration_completed", "failed"), ("node_finished", "failed")]


def test_a_failed_item_lets_the_running_ones_end_in_parallel(run: RunFn, around: Build) -> None:
    body = [{"id": "s", "type": "slow", "config": {"seconds": "{{ index == 1 ? 0.3 : 0.0 }}",
                                                    "fail": "{{ index == 0 ? 'boom' : '' }}"}}]
    ran = run(around(loop(body, parallelism=2), inputs=INPUTS), {"xs": [0, 1, 2, 3]})
    assert ran.outcome.status == "failed" and ran.outcome.error["detail"]["message"] == "boom"
    assert ran.record("lp[0].s").status == "failed" and ran.record("lp[1].s").status == "succeeded"
    assert not [k for k in ran.host.records if k.startswith(("lp[2]", "lp[3]"))]


def test_an_output_expression_that_fails_fails_the_item(run: RunFn, around: Build) -> None:
    body = [count("x", {"a": "{{ item }}"})]
    ran = run(around(loop(body, output="{{ x.b }}"), inputs=INPUTS), {"xs": [1, 2]})
    assert ran.outcome.status == "failed" and ran.outcome.error["code"] == "loop_item_failed"
    assert ran.outcome.error["detail"] == {"code": "expression_error", "message": "nodes.lp.config.output: no such key 'b'",
                                           "index": 0}
    ran = run(around(loop(body, output="{{ x.b }}", on_item_error="continue"), inputs=INPUTS), {"xs": [1]})
    assert ran.outcome.outputs == {"out": [{"error": {"code": "expression_error",
                                                      "message": "nodes.lp.config.output: no such key 'b'"}}]}


def test_nested_loops_journal_their_keys_and_nest_their_outputs(run: RunFn, around: Build) -> None:
    inner = loop([count("x", "{{ item * 10 }}")], node_id="inner", items="{{ range_of.ys }}")
    outer = loop([{"id": "range_of", "type": "transform", "config": {"mapping": {"ys": "{{ [item, item + 1] }}"}}},
                  inner], [{"from": "range_of", "to": "inner"}], node_id="outer")
    ran = run(around(outer, inputs=INPUTS), {"xs": [1, 5]})
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": [[10, 20], [50, 60]]}
    record = ran.record("outer[1].inner[0].x")
    assert (record.loop_key, record.iteration_index, record.output) == ("outer[1].inner", 0, 50)
    assert (ran.record("outer[1].inner").loop_key, ran.record("outer[1].inner").iteration_index) == ("outer", 1)
    assert sorted(EXECUTIONS) == ["outer[0].inner[0].x", "outer[0].inner[1].x", "outer[1].inner[0].x",
                                  "outer[1].inner[1].x"]


class Remembering(FakeHost):
    """A host that remembers which keys each commit made final (succeeded)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.succeeded_at: dict[str, int] = {}

    def commit(self, records: list[Any], events: list[Any], *, last: bool = False) -> None:
        super().commit(records, events, last=last)
        for record in records:
            if record.status == "succeeded":
                self.succeeded_at[record.key] = self.commits


def test_a_run_resumed_mid_loop_replays_finished_items_and_runs_the_rest(run: RunFn, around: Build) -> None:
    body = [count("x", "{{ item }}"), {"id": "y", "type": "slow", "config": {"value": "{{ x * 2 }}"}}]
    graph = compile_test(around(loop(body, [{"from": "x", "to": "y"}]), inputs=INPUTS))
    reference = run(graph, {"xs": [1, 2, 3]}, host=Remembering())
    assert reference.outcome.outputs == {"out": [2, 4, 6]}
    crash_at = reference.host.succeeded_at["lp[0].y"] + 1  # item 0 is committed, the rest is not
    EXECUTIONS.clear()
    crashed = FakeHost(fail_at=crash_at)
    with pytest.raises(RuntimeError, match="lease lost"):
        run(graph, {"xs": [1, 2, 3]}, host=crashed)
    assert crashed.records["lp[0].y"].status == "succeeded" and crashed.records["lp"].status == "running"
    EXECUTIONS.clear()
    resumed = run(graph, {"xs": [1, 2, 3]}, host=FakeHost(records=crashed.records))
    assert resumed.outcome.status == "succeeded" and resumed.outcome.outputs == {"out": [2, 4, 6]}
    assert "lp[0].x" not in EXECUTIONS and "lp[0].y" not in EXECUTIONS  # replayed from the journal
    assert EXECUTIONS["lp[2].x"] == 1 and EXECUTIONS["lp[2].y"] == 1
    assert resumed.events("lp[0].y") == []  # replayed nodes announce nothing again
    # the loop was running: it starts again, re-resolves its items and re-announces its iterations
    assert [t for t, _ in resumed.events("lp")][:3] == ["node_started", "iteration_started", "iteration_next"]


def test_a_parked_wait_inside_the_body_resumes_the_loop_item_by_item(run: RunFn, around: Build) -> None:
    body = [{"id": "wait", "type": "delay", "config": {"seconds": 60}},
            {"id": "v", "type": "transform", "config": {"mapping": {"v": "{{ item }}"}}}]
    graph = compile_test(around(loop(body, [{"from": "wait", "to": "v"}], output="{{ v.v }}"), inputs=INPUTS))
    ran = run(graph, {"xs": ["a", "b"]}, can_park=True)
    host = ran.host
    for waiting in ("lp[0].wait", "lp[1].wait"):
        assert ran.outcome.status == "waiting", ran.outcome.error
        assert host.status(waiting) == "waiting" and host.status("lp") == "running"
        host.records[waiting].state = {**host.records[waiting].state, "until": time.time() - 1}  # the time has come
        ran = run(graph, {"xs": ["a", "b"]}, host=host, can_park=True)
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": ["a", "b"]}
    assert host.status("lp[0].v") == "succeeded" and host.status("lp[1].v") == "succeeded"


@pytest.mark.parametrize("ending", ["stop", "deadline"])
def test_a_stop_or_the_deadline_while_items_run_leaves_the_loops_stopped_not_running(run: RunFn, around: Build,
                                                                                    ending: str) -> None:
    inner = loop([{"id": "wait", "type": "delay", "config": {"seconds": 30}}], node_id="inner", items=[1, 2])
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    context: dict[str, Any] = {"stop": stop} if ending == "stop" else {"deadline": time.time() + 0.2}
    if ending == "stop":
        timer.start()
    ran = run(around(loop([inner]), inputs=INPUTS), {"xs": [1, 2]}, **context)
    timer.cancel()
    error = ({"code": "stopped", "message": "the run was stopped"} if ending == "stop"
             else {"code": "timeout", "message": "the run passed its deadline"})
    assert ran.outcome.status == ("stopped" if ending == "stop" else "timeout")
    for key in ("lp", "lp[0].inner", "lp[0].inner[0].wait"):
        assert (ran.record(key).status, ran.record(key).error) == ("stopped", error), key
    assert not [k for k in ran.host.records if k.startswith(("lp[1]", "lp[0].inner[1]"))]
    assert ran.events("lp")[-1] == ("node_finished", "stopped")
    assert ran.events("lp[0].inner")[-1] == ("node_finished", "stopped")


def test_a_failure_elsewhere_while_items_run_leaves_the_loop_stopped(run: RunFn) -> None:
    graph = {"inputs": INPUTS, "nodes": [
        {"id": "start", "type": "start"},
        loop([{"id": "s", "type": "slow", "config": {"seconds": 0.5}}]),
        {"id": "bad", "type": "slow", "config": {"fail": "broken"}},
        {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "lp"}, {"from": "start", "to": "bad"}, {"from": "lp", "to": "end"},
                  {"from": "bad", "to": "end"}]}
    ran = run(graph, {"xs": [1, 2, 3]})
    assert ran.outcome.status == "failed" and ran.outcome.error["node_id"] == "bad"
    assert ran.record("lp").status == "stopped"
    assert ran.record("lp").error == {"code": "stopped", "message": "the run failed before this node finished"}
    assert not [k for k in ran.host.records if k.startswith(("lp[1]", "lp[2]"))]  # no item started after it


def test_publish_checks_the_config_and_the_body_as_a_graph_of_its_own(problems: Problems, around: Build) -> None:
    bad = {"id": "lp", "type": "loop", "config": {"parallelism": 65, "on_item_error": "skip", "body": {
        "nodes": [{"id": "a", "type": "count", "config": {"value": "{{ item }}"}},
                  {"id": "b", "type": "count", "config": {"value": "{{ a }}"}},
                  {"id": "c", "type": "end"}],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "a", "to": "zz"}]}}}
    found = problems(around(bad, inputs=INPUTS))
    assert ("/nodes/1/config/items", "'items' is a required property") in found
    assert ("/nodes/1/config/parallelism", "65 is greater than the maximum of 64") in found
    assert ("/nodes/1/config/on_item_error", "'skip' is not one of ['fail', 'continue']") in found
    assert ("/nodes/1/config/body/nodes/2/type", "a loop body cannot contain a 'end' node") in found
    assert ("/nodes/1/config/body/edges/2/to", "no node 'zz' in this loop body") in found
    assert ("/nodes/1/config/body/nodes/0", "node 'a' is part of a cycle") in found
    assert ("/nodes/1/config/body/nodes/1", "node 'b' is part of a cycle") in found
    assert problems(around({"id": "lp", "type": "loop", "config": {"items": [1], "body": {"nodes": []},
                                                                   "parallelism": 0}})) == [
        ("/nodes/1/config/body/nodes", "[] should be non-empty"),
        ("/nodes/1/config/parallelism", "0 is less than the minimum of 1")]


def test_names_in_scope_inside_and_outside_the_body(problems: Problems, around: Build) -> None:
    good = loop([count("a", "{{ item + index + inputs.k }}"), count("b", "{{ a }}")], [{"from": "a", "to": "b"}],
                output="{{ [a, b, item, index] }}")
    assert problems(around(good, inputs=INPUTS, end={"r": "{{ lp }}"})) == []
    bad = loop([count("a", "{{ nope }}")], output="{{ b }}", items="{{ item }}")
    assert problems(around(bad, inputs=INPUTS, end={"r": "{{ a }}"})) == [
        ("/nodes/1/config/items", "'item' is not in scope here (only upstream nodes, inputs, params, run, "
                                  "item, index inside a loop body)"),
        ("/nodes/1/config/body/nodes/0/config/value", "unknown name 'nope'"),
        ("/nodes/1/config/output", "unknown name 'b'"),
        ("/nodes/2/config/outputs/r", "'a' is not in scope here (only upstream nodes, inputs, params, run)"),
    ]
