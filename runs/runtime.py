"""What the engine's node types get from the platform for one run (``NodeContext.services``).

Credentials of the run's team (decrypted only here, when a node uses them), the outbound HTTP
policy, webhook URLs and callback results for async HTTP steps, and child workflow runs.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.connections import broker_policy, db_policy
from accounts.selectors import credential_secret
from config.errors import BudgetExceeded, DomainError, RateLimited
from runs.callbacks import callback_result
from runs.files import file_content
from runs.http_policy import http_policy
from runs.lifecycle import Origin, run_start
from runs.models import Run
from workflows.engine.nodes.base import LimitExceeded, NodeError
from workflows.selectors import workflow_get


class RunServices:
    """The platform's ``workflows.engine.ports.Services`` for one run (whether the run may park is
    the run context's ``can_park``, not a service)."""

    def __init__(self, *, run: Run, stop: threading.Event) -> None:
        self.run = run
        self.stop = stop
        self.http_policy = http_policy()
        self.db_policy = db_policy()
        self.broker_policy = broker_policy()
        self.team_key = str(run.team_id)
        self._home_thread = threading.get_ident()

    def _release_db(self) -> None:
        """Node code runs on pool threads; a connection opened there is closed after use so that a
        finished run leaves no connection behind (the executor's own thread keeps its connection)."""
        if threading.get_ident() != self._home_thread:
            connection.close()

    def credential(self, name: str) -> dict[str, str]:
        try:
            return credential_secret(team=self.run.team, name=name)
        except DomainError:
            raise KeyError(name) from None
        finally:
            self._release_db()

    def webhook_url(self, *, run_id: str, node_id: str, receipt_token: str) -> str:
        return f"{settings.WEFT_PUBLIC_URL}/api/v1/callbacks/{run_id}/{node_id}/{receipt_token}"

    def callback_result(self, *, run_id: str, node_id: str, receipt_token: str) -> dict[str, Any] | None:
        try:
            return callback_result(run_id=run_id, receipt_token=receipt_token)
        finally:
            self._release_db()

    def run_child_workflow(self, *, workflow_id: str, inputs: dict[str, Any], parent_run_id: str | None = None,
                           node_key: str | None = None) -> Any:
        try:
            workflow = workflow_get(team=self.run.team, id=workflow_id)
            # A child run executes here, in the parent's thread, with the parent's stop event.
            child = run_start(team=self.run.team, workflow=workflow, inputs=inputs, mode=self.run.mode,
                              origin=Origin.following(self.run, "child"), user=self.run.user, parent_run=self.run,
                              stop=self.stop)
        except (BudgetExceeded, RateLimited) as exc:
            # Too deep, or the team's concurrency limit (a child run takes a slot like a blocking one).
            raise LimitExceeded(f"child workflow: {exc.detail}") from None
        except DomainError as exc:
            raise NodeError(f"child workflow: {exc.detail}", code="child_invalid", detail=exc.errors or None) from None
        if not child.is_final:
            raise NodeError("child workflow could not be claimed", retryable=True, code="child_unavailable")
        if child.status != "succeeded":
            raise NodeError(f"child workflow {child.status}", code=f"child_{child.status}",
                            detail={"runId": str(child.pk), "error": child.error})
        return child.outputs

    def file_content(self, file: Any) -> tuple[str, bytes, str]:
        try:
            found = file_content(team_id=self.run.team_id, file=dict(file), policy=self.http_policy)
            return found.name, found.content, found.mime_type
        finally:
            self._release_db()
