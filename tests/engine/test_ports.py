"""The engine <-> host contract: one RetryPolicy, one Clock, the null Services, typed events."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from tests.engine.helpers import chain, run
from workflows.engine.events import EventType, NodeFinished, NodeStarted
from workflows.engine.ports import Clock, NodeStatus, NullServices, OutcomeStatus, Services
from workflows.engine.retry import Backoff, RetryPolicy


def test_retry_policy_delays() -> None:
    fixed = RetryPolicy(count=2, interval=3)
    assert [fixed.delay(n) for n in (1, 2, 3)] == [3, 3, 3]
    assert fixed.allows(1) and fixed.allows(2) and not fixed.allows(3) and not fixed.allows(0)
    exp = RetryPolicy(count=5, interval=2, backoff=Backoff.EXPONENTIAL, max_interval=10)
    assert [exp.delay(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]
    rnd = RetryPolicy(count=5, interval=2, backoff=Backoff.RANDOM)
    rng = random.Random(7)
    draws = [rnd.delay(3, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in draws) and max(draws) > 4


def test_retry_policy_from_config_defaults_per_caller() -> None:
    assert RetryPolicy.from_config(None) is None
    assert RetryPolicy.from_config({"count": 1, "interval": 5}).backoff is Backoff.FIXED
    workflow = RetryPolicy.from_config({"count": 1, "interval": 5}, default_backoff=Backoff.EXPONENTIAL)
    assert workflow == RetryPolicy(count=1, interval=5.0, backoff=Backoff.EXPONENTIAL)
    with pytest.raises(ValueError):
        RetryPolicy.from_config({"count": 1, "backoff": "sometimes"})


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at


def test_cel_now_reads_the_run_clock() -> None:
    at = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp()
    graph = chain(end_config={"outputs": {"t": "{{ now() }}"}})
    outcome, host = run(graph, clock=FixedClock(at))
    assert outcome.status == OutcomeStatus.SUCCEEDED
    assert outcome.outputs == {"t": "2030-05-06T07:08:09+00:00"}
    assert host.records["end"].finished_at == datetime.fromtimestamp(at, UTC)


def test_null_services_satisfy_the_protocol_and_refuse_features() -> None:
    services: Services = NullServices()
    with pytest.raises(KeyError):
        services.credential("api")
    graph = chain({"id": "child", "type": "workflow", "config": {"workflow": "wf_2"}})
    outcome, _ = run(graph)
    assert outcome.status == "failed" and outcome.error["code"] == "unsupported"


def test_events_are_typed_per_event_type() -> None:
    outcome, host = run(chain({"id": "t", "type": "transform", "config": {"mapping": {"v": "{{ 1 + 1 }}"}}}))
    assert outcome.status == "succeeded"
    started = [e for e in host.events if isinstance(e, NodeStarted)]
    finished = [e for e in host.events if isinstance(e, NodeFinished)]
    assert [e.node.node_id for e in started] == ["start", "t", "end"]
    assert [e.type for e in host.events[:2]] == [EventType.NODE_STARTED, EventType.NODE_FINISHED]
    t_done = next(e for e in finished if e.node.node_id == "t")
    assert t_done.status == NodeStatus.SUCCEEDED and t_done.data["outputs"] == t_done.outputs
    assert host.records["t"].status == "succeeded"
