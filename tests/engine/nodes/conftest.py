"""Fixtures shared by the node-type tests (one module per type in this package).

- ``run(graph, inputs=None, **run_context)``: compiles ``graph`` with the engine's node types plus the
  test types of ``tests.engine.helpers`` (``count``, ``slow``), runs it on a fresh ``FakeHost`` (or the
  ``host=`` given, e.g. one holding the journal of an interrupted run) and returns a ``helpers.Ran``: the
  ``RunOutcome``, the host, and readers for one node execution's record and events.
- ``around(*nodes, inputs=None, outputs=None, end=None, **graph)``: the graph ``start -> nodes... ->
  end`` around the node(s) under test; the end node's outputs are ``end`` (default
  ``{"out": "{{ <last node> }}"}``, so ``outcome.outputs["out"]`` is the last node's output).
- ``problems(graph, **options)``: what publishing reports, as ``[(JSON pointer, message)]``.

The counters of the test node types are reset before each test.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine import helpers
from tests.engine.helpers import EXECUTIONS, TEST_TYPES, Build, Problems, Ran, RunFn, SlowNode
from workflows.engine.graph import validate_graph


@pytest.fixture(autouse=True)
def _reset_test_types() -> None:
    EXECUTIONS.clear()
    SlowNode.compensations.clear()


@pytest.fixture
def run() -> RunFn:
    def go(graph: dict[str, Any], inputs: dict[str, Any] | None = None, **context: Any) -> Ran:
        outcome, host = helpers.run(graph, inputs, **context)
        return Ran(outcome, host)

    return go


@pytest.fixture
def around() -> Build:
    def build(*nodes: dict[str, Any], inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None,
              end: dict[str, Any] | None = None, **graph: Any) -> dict[str, Any]:
        if end is None:
            end = {"out": "{{ " + nodes[-1]["id"] + " }}"} if nodes else {}
        built = helpers.chain(*nodes, end_config={"outputs": end}, inputs=inputs or {}, **graph)
        if outputs is not None:
            built["outputs"] = outputs
        return built

    return build


@pytest.fixture
def problems() -> Problems:
    def check(graph: dict[str, Any], **options: Any) -> list[tuple[str, str]]:
        return [(e["path"], e["message"]) for e in validate_graph(graph, node_types=TEST_TYPES, **options)]

    return check
