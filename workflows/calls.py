"""The sub-workflow call graph (``workflow`` nodes), checked when a graph is validated, published,
test-run or a version is activated (WORKFLOW_FORMAT.md "Limits").

A ``workflow`` node starts another workflow of the same team as a child run, executing that
workflow's active version. A workflow that calls itself, directly or through others, would start
child runs without end (one blocking request once made 2,200 runs): refused here, at the node
that starts the loop. So is a call chain deeper than ``WEFT_MAX_WORKFLOW_DEPTH`` sub-workflow
levels, and a node naming no workflow of the team. The run-time depth check
(``runs.services.run_create``) stays: publishing a workflow further down may deepen a chain
later, and that is only seen when a run gets there.

The walk reads the active versions level by level (one query per level, at most the depth limit
plus one levels): any cycle makes a chain infinitely deep, so looking that far is enough to
refuse every graph that could start runs without end.
"""

from __future__ import annotations

import uuid
from typing import Any

from accounts.models import Team
from workflows.engine.graph import graph_references
from workflows.models import Workflow


def _workflow_id(value: Any) -> str | None:
    """The canonical form of a ``workflow`` node's id (a UUID), or None when it cannot be one."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


def graph_calls(graph: Any) -> list[tuple[str, str, Any]]:
    """The ``workflow`` references of ``graph`` as ``(JSON pointer of the field, node id, value)``."""
    return [(f"{pointer}/config{ref.field}", node_id, ref.value)
            for pointer, node_id, ref in graph_references(graph) if ref.kind == "workflow"]


class _CallGraph:
    """The team's workflows as the walk needs them: name and the callees of the active version."""

    def __init__(self, team: Team, root: Workflow, graph: Any) -> None:
        self.team = team
        self.root = str(root.pk)
        self.names: dict[str, str] = {self.root: root.name}
        self.callees: dict[str, list[str]] = {self.root: self._callees(graph)}

    @staticmethod
    def _callees(graph: Any) -> list[str]:
        ids = (_workflow_id(value) for _, _, value in graph_calls(graph))
        return list(dict.fromkeys(i for i in ids if i is not None))

    def load(self, ids: set[str]) -> None:
        """Read the workflows of ``ids`` not read yet (one query); ids of no workflow of the team
        are left out of ``names``."""
        missing = ids - self.callees.keys()
        if not missing:
            return
        rows = Workflow.objects.filter(team=self.team, pk__in=missing).select_related("active_version")
        for row in rows:
            key = str(row.pk)
            self.names[key] = row.name
            self.callees[key] = self._callees(row.active_version.graph if row.active_version else None)
        for key in missing - self.names.keys():
            self.callees[key] = []

    def name(self, key: str) -> str:
        return repr(self.names.get(key, key))


def call_errors(*, team: Team, workflow: Workflow, graph: Any, max_depth: int) -> list[dict[str, str]]:
    """Every problem of the ``workflow`` nodes of ``graph`` (the new graph of ``workflow``) as
    ``[{"path", "message"}]``: a workflow that is not the team's, a call back to ``workflow``
    (directly or through others), a cycle among the workflows it calls, a chain of sub-workflows
    deeper than ``max_depth`` (0: no limit)."""
    calls = graph_calls(graph)
    if not calls:
        return []
    known = _CallGraph(team, workflow, graph)
    targets = {key for key in (_workflow_id(value) for _, _, value in calls) if key is not None}
    known.load(targets - {known.root})
    errors: list[dict[str, str]] = []
    problems: dict[str, str | None] = {}  # per called workflow: many nodes may call the same one
    for path, node_id, value in calls:
        key = _workflow_id(value)
        if key is None or key not in known.names:
            errors.append({"path": path, "message": f"node {node_id!r}: no workflow {value!r} in this team"})
            continue
        if key not in problems:
            problems[key] = _chain_problem(known, key, max_depth)
        problem = problems[key]
        if problem:
            errors.append({"path": path, "message": f"node {node_id!r}: {problem}"})
    return errors


def _chain_problem(known: _CallGraph, first: str, max_depth: int) -> str | None:
    """Walk the calls from ``first`` (a child of the root: depth 1) level by level; a call back to
    the root, a cycle further down or a level past ``max_depth`` is the problem, named with the
    chain that shows it. Every chain kept is free of repeats, so the walk ends without a limit too."""
    if first == known.root:
        return "the workflow calls itself; a workflow may not call its own workflow"
    # Each level maps the workflows at that depth to one chain that reaches them.
    level: dict[str, list[str]] = {first: [first]}
    depth = 1
    while level:
        if 0 < max_depth < depth:
            chain = next(iter(level.values()))
            return (f"sub-workflows nest {depth} deep here ({_names(known, chain)}); "
                    f"the limit is {max_depth} (WEFT_MAX_WORKFLOW_DEPTH)")
        known.load({callee for key in level for callee in known.callees[key]})
        following: dict[str, list[str]] = {}
        for key, chain in level.items():
            for callee in known.callees[key]:
                if callee == known.root:
                    return (f"the workflow calls itself through {_names(known, chain)}; "
                            "a workflow may not call its own workflow")
                if callee in chain:
                    cycle = [*chain[chain.index(callee):], callee]
                    return f"sub-workflows call each other in a cycle ({_names(known, cycle)}), without end"
                following.setdefault(callee, [*chain, callee])
        level, depth = following, depth + 1
    return None


def _names(known: _CallGraph, chain: list[str]) -> str:
    return " → ".join(known.name(key) for key in chain)
