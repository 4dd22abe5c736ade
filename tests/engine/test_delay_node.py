"""The ``delay`` node's config: refused at publish naming the field when it cannot work (``random``
without ``max``, a negative or non-numeric literal, ``min`` above ``max``), a ``bad_config``
failure naming the field when a template resolves to such a value, and waits of any length
parked no later than the run's deadline (a huge delay used to overflow the wake-up time)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.engine.helpers import chain, run
from workflows.engine.graph import validate_graph


def delay_graph(config: dict[str, Any]) -> dict[str, Any]:
    return chain({"id": "wait", "type": "delay", "config": config},
                 inputs={"v": {"type": "number"}, "s": {"type": "string"}})


@pytest.mark.parametrize(("config", "errors"), [
    ({"mode": "random"}, [("/nodes/1/config/max", "required when mode is 'random'")]),
    ({"mode": "random", "min": 1}, [("/nodes/1/config/max", "required when mode is 'random'")]),
    ({"mode": "random", "min": 5, "max": 1}, [("/nodes/1/config/min", "must not be greater than max")]),
    ({"seconds": -1}, [("/nodes/1/config/seconds", "must be a finite number at least 0, got -1")]),
    ({"seconds": "soon"}, [("/nodes/1/config/seconds", "must be a number of seconds, got 'soon'")]),
    ({"mode": "exponential", "attempt": "x", "max": -2},
     [("/nodes/1/config/attempt", "must be an integer, got 'x'"),
      ("/nodes/1/config/max", "must be a finite number at least 0, got -2")]),
])
def test_a_config_that_cannot_work_is_refused_at_publish_naming_the_field(config: dict[str, Any],
                                                                         errors: list[tuple[str, str]]) -> None:
    assert [(e["path"], e["message"]) for e in validate_graph(delay_graph(config))] == errors


@pytest.mark.parametrize("config", [
    {"seconds": 0}, {"seconds": "0.5"}, {"mode": "random", "max": 0.01}, {"mode": "random", "min": "{{ inputs.v }}", "max": 1},
    {"mode": "exponential", "base": 0.001, "attempt": "{{ inputs.v }}"}, {"seconds": "${wait_seconds}"},
])
def test_numbers_strings_and_templates_are_accepted(config: dict[str, Any]) -> None:
    graph = {**delay_graph(config), "params": {"wait_seconds": "0"}}
    assert validate_graph(graph) == []


@pytest.mark.parametrize(("config", "inputs", "message"), [
    ({"mode": "random", "max": "{{ inputs.v }}"}, {"v": -1}, "nodes.wait.config.max: must be a finite number at least 0, got -1"),
    ({"seconds": "{{ inputs.s }}"}, {"s": "later"}, "nodes.wait.config.seconds: must be a number of seconds, got 'later'"),
    ({"mode": "random", "min": "{{ inputs.v }}", "max": 1}, {"v": 3}, "nodes.wait.config.min: 3 is greater than max (1)"),
    ({"mode": "exponential", "factor": 10, "attempt": "{{ inputs.v }}"}, {"v": 1000},
     "nodes.wait.config.base: base * factor ** attempt is too large; set max"),
])
def test_a_template_resolving_to_an_impossible_value_fails_bad_config_naming_the_field(
        config: dict[str, Any], inputs: dict[str, Any], message: str) -> None:
    outcome, _ = run(delay_graph(config), inputs)
    assert outcome.status == "failed"
    assert (outcome.error["code"], outcome.error["message"]) == ("bad_config", message)


def test_an_overflowing_exponential_is_capped_by_max() -> None:
    outcome, host = run(delay_graph({"mode": "exponential", "factor": 10, "attempt": 1000, "max": 0.01}), {})
    assert outcome.status == "succeeded", outcome.error
    assert host.records["wait"].process_data == {"seconds": 0.01}


def test_a_wait_of_centuries_parks_until_the_run_deadline_at_the_latest() -> None:
    deadline = time.time() + 60
    outcome, _ = run(delay_graph({"seconds": 1e300}), {}, can_park=True, deadline=deadline)
    assert (outcome.status, outcome.wake_at) == ("waiting", deadline)
