"""The ``delay`` node: ``{"mode": "fixed"|"random"|"exponential", ...}`` waits through ``ctx.wait``.

Data flows through (the output is the upstream data, the planned seconds are ``process_data``).
A config that cannot work is refused at publish naming the field (``random`` without ``max``, a
negative or non-numeric literal, ``min`` above ``max``, a mode that is no mode); a template resolving
to such a value fails ``bad_config`` naming the field. In a run that may park (async runs) a long wait
parks the run with the target time as state, so a resumed run waits only what is left, and never
past the run's deadline; a stop during the wait ends the delay ``stopped``."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.engine.helpers import EXECUTIONS, Build, Problems, RunFn, compile_test

INPUTS = {"v": {"type": "number"}, "s": {"type": "string"}, "user": {"type": "object"}}


def delay(config: dict[str, Any]) -> dict[str, Any]:
    return {"id": "wait", "type": "delay", "config": config}


@pytest.mark.parametrize(("config", "seconds"), [
    ({"seconds": 0.05}, 0.05), ({"mode": "fixed", "seconds": "0.02"}, 0.02), ({}, 0.0),
    ({"mode": "random", "min": 0.03, "max": 0.03}, 0.03),
    ({"mode": "exponential", "base": 0.01, "factor": 2, "attempt": 2}, 0.04),
    ({"mode": "exponential", "base": 0.01, "factor": 3, "attempt": "{{ inputs.v }}", "max": 0.05}, 0.05),
    ({"mode": "exponential", "base": 0.01, "attempt": 1}, 0.02),  # factor defaults to 2
])
def test_each_mode_plans_its_seconds_and_passes_the_upstream_data_through(run: RunFn, around: Build,
                                                                          config: dict[str, Any],
                                                                          seconds: float) -> None:
    pick = {"id": "pick", "type": "transform", "config": {"mapping": {"userId": "$.user.id"}}}
    ran = run(around(delay(config), pick, inputs=INPUTS), {"user": {"id": "u-1"}, "v": 9})
    assert ran.outcome.status == "succeeded", ran.outcome.error
    assert ran.outcome.outputs == {"out": {"userId": "u-1"}}
    record = ran.record("wait")
    assert record.output == ran.record("start").output  # the upstream data, unchanged
    assert record.process_data == {"seconds": pytest.approx(seconds)}
    assert record.receipt_token != "" and record.state is None  # not an inline node; it never parked
    assert ran.events("wait") == [("node_started", "running"), ("node_finished", "succeeded")]


def test_random_mode_picks_within_min_and_max(run: RunFn, around: Build) -> None:
    planned = {run(around(delay({"mode": "random", "min": 0.001, "max": 0.02}))).record("wait").process_data["seconds"]
               for _ in range(5)}
    assert all(0.001 <= s <= 0.02 for s in planned) and len(planned) > 1


@pytest.mark.parametrize(("config", "errors"), [
    ({"mode": "random"}, [("/nodes/1/config/max", "required when mode is 'random'")]),
    ({"mode": "random", "min": 1}, [("/nodes/1/config/max", "required when mode is 'random'")]),
    ({"mode": "random", "min": 5, "max": 1}, [("/nodes/1/config/min", "must not be greater than max")]),
    ({"seconds": -1}, [("/nodes/1/config/seconds", "must be a finite number at least 0, got -1")]),
    ({"seconds": "soon"}, [("/nodes/1/config/seconds", "must be a number of seconds, got 'soon'")]),
    ({"mode": "exponential", "attempt": "x", "max": -2},
     [("/nodes/1/config/attempt", "must be an integer, got 'x'"),
      ("/nodes/1/config/max", "must be a finite number at least 0, got -2")]),
    ({"mode": "until", "at": 3}, [("/nodes/1/config", "Additional properties are not allowed ('at' was unexpected)"),
                                  ("/nodes/1/config/mode", "'until' is not one of ['fixed', 'random', 'exponential']")]),
    # a mode that is a list or an object is reported by the schema (it used to crash the check)
    ({"mode": ["fixed"]}, [("/nodes/1/config/mode", "['fixed'] is not one of ['fixed', 'random', 'exponential']")]),
    ({"mode": {"m": 1}}, [("/nodes/1/config/mode", "{'m': 1} is not one of ['fixed', 'random', 'exponential']")]),
])
def test_a_config_that_cannot_work_is_refused_at_publish_naming_the_field(problems: Problems, around: Build,
                                                                         config: dict[str, Any],
                                                                         errors: list[tuple[str, str]]) -> None:
    assert problems(around(delay(config), inputs=INPUTS)) == errors


@pytest.mark.parametrize("config", [
    {"seconds": 0}, {"seconds": "0.5"}, {"mode": "random", "max": 0.01}, {"mode": "random", "min": "{{ inputs.v }}", "max": 1},
    {"mode": "exponential", "base": 0.001, "attempt": "{{ inputs.v }}"}, {"seconds": "${wait_seconds}"},
])
def test_numbers_strings_and_templates_are_accepted(problems: Problems, around: Build, config: dict[str, Any]) -> None:
    assert problems(around(delay(config), inputs=INPUTS, params={"wait_seconds": "0"})) == []


@pytest.mark.parametrize(("config", "inputs", "message"), [
    ({"mode": "random", "max": "{{ inputs.v }}"}, {"v": -1}, "nodes.wait.config.max: must be a finite number at least 0, got -1"),
    ({"seconds": "{{ inputs.s }}"}, {"s": "later"}, "nodes.wait.config.seconds: must be a number of seconds, got 'later'"),
    ({"mode": "random", "min": "{{ inputs.v }}", "max": 1}, {"v": 3}, "nodes.wait.config.min: 3 is greater than max (1)"),
    ({"mode": "exponential", "factor": 10, "attempt": "{{ inputs.v }}"}, {"v": 1000},
     "nodes.wait.config.base: base * factor ** attempt is too large; set max"),
])
def test_a_template_resolving_to_an_impossible_value_fails_bad_config_naming_the_field(
        run: RunFn, around: Build, config: dict[str, Any], inputs: dict[str, Any], message: str) -> None:
    ran = run(around(delay(config), {"id": "after", "type": "count"}, inputs=INPUTS), inputs)
    assert ran.outcome.status == "failed"
    assert (ran.outcome.error["code"], ran.outcome.error["message"]) == ("bad_config", message)
    assert ran.record("wait").status == "failed" and "after" not in ran.host.records


def test_an_overflowing_exponential_is_capped_by_max(run: RunFn, around: Build) -> None:
    ran = run(around(delay({"mode": "exponential", "factor": 10, "attempt": 1000, "max": 0.01})))
    assert ran.outcome.status == "succeeded", ran.outcome.error
    assert ran.record("wait").process_data == {"seconds": 0.01}


def test_a_long_wait_parks_and_the_resumed_run_waits_only_what_is_left(run: RunFn, around: Build) -> None:
    graph = compile_test(around(delay({"seconds": 6}), {"id": "after", "type": "count", "config": {"value": 7}}))
    before = time.time()
    ran = run(graph, can_park=True)
    assert ran.outcome.status == "waiting"
    assert before + 6 <= ran.outcome.wake_at <= time.time() + 6
    record = ran.record("wait")
    assert (record.status, record.state["seconds"]) == ("waiting", 6)
    assert record.state["until"] == pytest.approx(ran.outcome.wake_at, abs=0.01)
    assert ran.events("wait") == [("node_started", "running")] and "after" not in ran.host.records
    # resumed at once: it parks again until the same target, not 6 s from now
    until = record.state["until"]
    ran = run(graph, host=ran.host, can_park=True)
    assert (ran.outcome.status, ran.record("wait").state["until"]) == ("waiting", until)
    assert ran.outcome.wake_at == pytest.approx(until, abs=0.01)
    # resumed "later": 0.05 s are left, waited in place; the plan recorded is still 6 s
    ran.record("wait").state = {**ran.record("wait").state, "until": time.time() + 0.05}
    ran = run(graph, host=ran.host, can_park=True)
    assert ran.outcome.status == "succeeded" and ran.outcome.outputs == {"out": 7}
    assert (ran.record("wait").status, ran.record("wait").process_data) == ("succeeded", {"seconds": 6})
    assert EXECUTIONS["start"] == 0 and EXECUTIONS["after"] == 1
    assert [t for t, _ in ran.events("wait")].count("node_started") == 1  # a resumed node is not started again


def test_a_wait_below_the_park_threshold_does_not_park(run: RunFn, around: Build) -> None:
    ran = run(around(delay({"seconds": 0.05})), can_park=True, park_threshold=5.0)
    assert ran.outcome.status == "succeeded" and ran.record("wait").state is None


def test_a_wait_of_centuries_parks_until_the_run_deadline_at_the_latest(run: RunFn, around: Build) -> None:
    deadline = time.time() + 60
    ran = run(around(delay({"seconds": 1e300})), can_park=True, deadline=deadline)
    assert (ran.outcome.status, ran.outcome.wake_at) == ("waiting", deadline)


def test_a_stop_during_the_wait_ends_the_delay_stopped(run: RunFn, around: Build) -> None:
    """In a run that may park, a wait under the park threshold is held in place, and a stop ends it."""
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    began = time.monotonic()
    ran = run(around(delay({"seconds": 4}), {"id": "after", "type": "count"}), stop=stop, can_park=True)
    timer.cancel()
    assert time.monotonic() - began < 3.5  # well before the 4 s were up
    assert ran.outcome.status == "stopped"
    record = ran.record("wait")
    assert (record.status, record.error) == ("stopped", {"code": "stopped", "message": "the run was stopped"})
    assert ran.events("wait") == [("node_started", "running"), ("node_finished", "stopped")]
    assert "after" not in ran.host.records
