"""Plain-dict representations of runs for the native API (built directly: this is a hot path)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runs.models import NodeRun, Run


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def elapsed_seconds(run: Run) -> float | None:
    if run.finished_at is None:
        return None
    return round((run.finished_at - (run.started_at or run.created_at)).total_seconds(), 6)


def node_run_dict(row: NodeRun) -> dict[str, Any]:
    return {
        "id": str(row.pk), "key": row.key, "nodeId": row.node_id, "nodeType": row.node_type, "title": row.title,
        "index": row.index, "predecessorNodeId": row.predecessor_node_id or None,
        "iterationId": row.iteration_id or None, "iterationIndex": row.iteration_index, "status": row.status,
        "attempt": row.attempt, "port": row.port or None, "inputs": row.inputs, "outputs": row.outputs,
        "error": row.error, "startedAt": iso(row.started_at), "finishedAt": iso(row.finished_at),
        "elapsedTime": row.elapsed,
    }


def run_dict(run: Run, node_runs: list[NodeRun] | None = None) -> dict[str, Any]:
    data = {
        "id": str(run.pk), "taskId": str(run.task_id), "appId": str(run.app_id), "workflowId": str(run.workflow_id),
        "versionId": str(run.version_id), "status": run.status, "mode": run.mode, "dialect": run.dialect,
        "trigger": run.trigger, "user": run.user, "inputs": run.inputs, "outputs": run.outputs, "error": run.error,
        "totalSteps": run.total_steps, "claimCount": run.claim_count, "businessTime": iso(run.business_time),
        "createdAt": iso(run.created_at), "startedAt": iso(run.started_at), "finishedAt": iso(run.finished_at),
        "deadline": iso(run.deadline), "elapsedTime": elapsed_seconds(run),
        "parentRunId": str(run.parent_run_id) if run.parent_run_id else None,
        "rootRunId": str(run.root_run_id) if run.root_run_id else None, "depth": run.depth,
        "replayOfId": str(run.replay_of_id) if run.replay_of_id else None,
        "draft": run.draft,
    }
    if node_runs is not None:
        data["nodeRuns"] = [node_run_dict(r) for r in node_runs]
    return data
