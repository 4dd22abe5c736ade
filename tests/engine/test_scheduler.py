"""Scheduler behaviour: skip propagation and joins, fan-out, retries, timeouts, error branches, rollback,
stop, deadline, redaction, resume after a crash. What each node type does is tested in
``tests/engine/nodes/`` (one module per type) and the http/db/queue modules here."""

from __future__ import annotations

import threading
import time

import pytest

from tests.engine.helpers import EXECUTIONS, FakeHost, SlowNode, chain, compile_test, run
from workflows.engine.scheduler import receipt_token


@pytest.fixture(autouse=True)
def _reset() -> None:
    EXECUTIONS.clear()
    SlowNode.compensations.clear()


def test_condition_skip_propagates_and_join_waits_for_live_predecessors() -> None:
    graph = {
        "inputs": {"amount": {"type": "number"}},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "config": {"cases": [{"id": "big", "when": "inputs.amount > 10"}]}},
            {"id": "a", "type": "count", "config": {"value": "A"}},
            {"id": "a2", "type": "count", "config": {"value": "A2"}},
            {"id": "b", "type": "count", "config": {"value": "B"}},
            {"id": "join", "type": "transform", "config": {"mapping": {"up": "$"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"up": "{{ join.up }}"}}},
        ],
        "edges": [
            {"from": "start", "to": "check"}, {"from": "check", "to": "a", "port": "big"},
            {"from": "a", "to": "a2"}, {"from": "check", "to": "b", "port": "else"},
            {"from": "a2", "to": "join"}, {"from": "b", "to": "join"}, {"from": "join", "to": "end"},
        ],
    }
    outcome, host = run(graph, {"amount": 5})
    assert outcome.status == "succeeded"
    assert outcome.outputs == {"up": {"b": "B"}}
    assert host.status("a") == "skipped" and host.status("a2") == "skipped"
    assert dict(EXECUTIONS) == {"b": 1}
    assert host.records["join"].predecessor_node_id == "b"
    outcome, _ = run(graph, {"amount": 50})
    assert outcome.outputs == {"up": {"a2": "A2"}}


def test_run_skip_records_skipped_and_successors_run() -> None:
    graph = chain({"id": "a", "type": "count", "run": "skip"}, {"id": "b", "type": "count", "config": {"value": 1}},
                  end_config={"outputs": {"b": "{{ b }}"}})
    outcome, host = run(graph)
    assert outcome.outputs == {"b": 1}
    assert host.status("a") == "skipped" and dict(EXECUTIONS) == {"b": 1}


def test_wide_fan_out_runs_in_parallel() -> None:
    nodes = [{"id": "start", "type": "start"}, {"id": "end", "type": "end", "config": {"outputs": {}}}]
    edges = []
    for i in range(100):
        nodes.append({"id": f"d{i}", "type": "delay", "config": {"seconds": 0.2}})
        edges += [{"from": "start", "to": f"d{i}"}, {"from": f"d{i}", "to": "end"}]
    began = time.monotonic()
    outcome, host = run({"nodes": nodes, "edges": edges}, max_workers=100)
    elapsed = time.monotonic() - began
    assert outcome.status == "succeeded"
    assert elapsed < 1.5, elapsed
    assert host.event_types().count("parallel_branch_started") == 100
    assert host.event_types().count("parallel_branch_finished") == 100
    assert len(host.thread_ids) == 1  # every commit on the calling thread


def test_retry_then_success_with_exponential_backoff_and_same_receipt_token() -> None:
    graph = chain({"id": "s", "type": "slow", "config": {"fail_times": 2},
                   "retry": {"count": 3, "interval": 0.05, "backoff": "exponential"}},
                  end_config={"outputs": {"r": "{{ s }}"}})
    began = time.monotonic()
    outcome, host = run(graph)
    assert outcome.status == "succeeded"
    assert time.monotonic() - began >= 0.15  # 0.05 + 0.1
    assert outcome.outputs["r"] == {"attempt": 3, "token": receipt_token(b"secret", "run-1", "s")}
    assert host.event_types("s").count("node_retry") == 2
    assert host.records["s"].attempt == 3


def test_non_retryable_error_is_not_retried_and_fails_run() -> None:
    graph = chain({"id": "s", "type": "slow", "config": {"fail_times": 5, "retryable": False},
                   "retry": {"count": 3, "interval": 0}})
    outcome, host = run(graph)
    assert outcome.status == "failed"
    assert outcome.error["message"] == "failure 1" and outcome.error["node_id"] == "s"
    assert EXECUTIONS["s"] == 1 and "end" not in host.records


def test_retry_after_is_honoured_when_larger() -> None:
    graph = chain({"id": "s", "type": "slow", "config": {"fail_times": 1, "retry_after": 0.3},
                   "retry": {"count": 1, "interval": 0.01}})
    began = time.monotonic()
    outcome, _ = run(graph)
    assert outcome.status == "succeeded" and time.monotonic() - began >= 0.3


def test_timeout_per_attempt_is_retryable() -> None:
    graph = chain({"id": "s", "type": "slow", "config": {"seconds": 5}, "timeout": 0.2,
                   "retry": {"count": 1, "interval": 0}, "on_error": "continue"},
                  end_config={"outputs": {"r": "{{ s }}"}})
    began = time.monotonic()
    outcome, host = run(graph)
    assert time.monotonic() - began < 1.5
    assert outcome.status == "succeeded"
    assert outcome.outputs["r"]["error"]["code"] == "timeout"
    assert host.records["s"].attempt == 2 and host.status("s") == "failed"


def test_on_error_branch_puts_error_in_scope() -> None:
    graph = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "s", "type": "slow", "config": {"fail": "boom"}, "on_error": "branch"},
            {"id": "ok", "type": "count"},
            {"id": "handler", "type": "transform", "config": {"mapping": {"msg": "{{ error.message }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"h": "{{ default(handler.msg, 'none') }}"}}},
        ],
        "edges": [{"from": "start", "to": "s"}, {"from": "s", "to": "ok"},
                  {"from": "s", "to": "handler", "port": "error"}, {"from": "ok", "to": "end"},
                  {"from": "handler", "to": "end"}],
    }
    outcome, host = run(graph)
    assert outcome.status == "succeeded" and outcome.outputs == {"h": "boom"}
    assert host.status("ok") == "skipped" and host.records["s"].port == "error"


def test_rollback_compensates_in_reverse_completion_order() -> None:
    comp = {"undo": True}
    graph = chain({"id": "a", "type": "slow", "compensate": comp}, {"id": "b", "type": "slow"},
                  {"id": "c", "type": "slow", "compensate": comp},
                  {"id": "d", "type": "slow", "config": {"fail": "nope"}, "on_error": "rollback"})
    outcome, host = run(graph)
    assert outcome.status == "failed"
    assert SlowNode.compensations == ["c", "a"]
    assert outcome.error["compensated"] == ["c", "a"]
    assert host.status("c#compensate") == "succeeded"


def test_stop_mid_run_ends_within_a_second() -> None:
    stop = threading.Event()
    graph = chain({"id": "wait", "type": "delay", "config": {"seconds": 30}}, {"id": "after", "type": "count"})
    threading.Timer(0.2, stop.set).start()
    began = time.monotonic()
    outcome, host = run(graph, stop=stop)
    assert time.monotonic() - began < 1.2
    assert outcome.status == "stopped"
    assert host.status("wait") == "stopped" and "after" not in host.records


def test_deadline_ends_run_as_timeout() -> None:
    graph = chain({"id": "wait", "type": "delay", "config": {"seconds": 30}})
    began = time.monotonic()
    outcome, host = run(graph, deadline=time.time() + 0.3)
    assert time.monotonic() - began < 1.3
    assert outcome.status == "timeout" and host.status("wait") == "stopped"


def test_secrets_are_redacted_from_records_events_and_outputs() -> None:
    graph = chain({"id": "s", "type": "slow", "config": {"secret": "tok-123", "value": "Bearer tok-123"}},
                  end_config={"outputs": {"v": "{{ s }}"}})
    outcome, host = run(graph)
    assert outcome.outputs == {"v": "Bearer ***"}
    assert host.records["s"].output == "Bearer ***"
    assert "tok-123" not in repr(host.events) and "tok-123" not in repr(list(host.records.values()))


SAMPLE = {
    "inputs": {"n": {"type": "integer", "default": 3}},
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "a", "type": "count", "config": {"value": "{{ inputs.n }}"}},
        {"id": "check", "type": "condition", "config": {"cases": [{"id": "odd", "when": "a % 2 == 1"}]}},
        {"id": "b", "type": "count", "config": {"value": "B"}},
        {"id": "c", "type": "count", "config": {"value": "C"}},
        {"id": "d", "type": "count", "config": {"value": "D"}},
        {"id": "lp", "type": "loop", "config": {"items": [1, 2, 3], "body": {
            "nodes": [{"id": "x", "type": "count", "config": {"value": "{{ item }}"}},
                      {"id": "y", "type": "count", "config": {"value": "{{ x * 10 }}"}}],
            "edges": [{"from": "x", "to": "y"}]}}},
        {"id": "join", "type": "count", "config": {"value": "J"}},
        {"id": "end", "type": "end", "config": {"outputs": {"lp": "{{ lp }}", "j": "{{ join }}"}}},
    ],
    "edges": [
        {"from": "start", "to": "a"}, {"from": "a", "to": "check"},
        {"from": "check", "to": "b", "port": "odd"}, {"from": "check", "to": "c", "port": "else"},
        {"from": "b", "to": "d"}, {"from": "b", "to": "lp"}, {"from": "c", "to": "join"},
        {"from": "d", "to": "join"}, {"from": "lp", "to": "join"}, {"from": "join", "to": "end"},
    ],
}


@pytest.mark.parametrize("persist_before_fail", [True, False])
def test_resume_after_crash_at_every_step(persist_before_fail: bool) -> None:
    graph = compile_test(SAMPLE)
    reference, ref_host = run(graph)
    assert reference.outputs == {"lp": [10, 20, 30], "j": "J"}
    executed = sum(1 for r in ref_host.records.values() if r.status == "succeeded" and r.node_type == "count")
    assert executed == len(EXECUTIONS) and set(EXECUTIONS.values()) == {1}
    for k in range(1, reference.total_steps + 1):
        EXECUTIONS.clear()
        crashed = FakeHost(fail_at=k, persist_before_fail=persist_before_fail)
        with pytest.raises(RuntimeError, match="lease lost"):
            run(graph, host=crashed)
        lost = {key for key, n in EXECUTIONS.items()}
        committed = {r.key for r in crashed.records.values() if r.status == "succeeded"}
        resumed = FakeHost(records=crashed.records)
        outcome, _ = run(graph, host=resumed)
        assert outcome.status == "succeeded" and outcome.outputs == reference.outputs
        for key, count in EXECUTIONS.items():
            if persist_before_fail or key in committed or key not in lost:
                assert count == 1, (k, key, count)
            else:
                assert count == 2, (k, key, count)  # ran in the step whose commit was lost
        assert set(EXECUTIONS) == {key for key, r in ref_host.records.items()
                                   if r.node_type == "count" and r.status == "succeeded"}
