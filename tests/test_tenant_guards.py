"""Tenant guards: every service handed another team's object answers the same ``NotFound`` as a
missing one (the API's 404), and writes nothing. Each service is called directly, as a view that
forgot its team-scoped selector would call it, with team B and an object of team A."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.connections import credential_test
from accounts.invitations import invitation_create, invitation_revoke
from accounts.models import ApiToken, Credential, Invitation, Membership
from accounts.services import (
    credential_create,
    credential_delete,
    credential_update,
    membership_remove,
    membership_update,
    token_create,
    token_revoke,
)
from config.errors import NotFound
from runs.batches import batch_submit
from runs.lifecycle import run_replay, run_stop
from runs.models import BatchJob, Run
from runs.services import run_create
from tests.conftest import app_make, member_make, published_make, workflow_make
from workflows.models import App, Trigger, Workflow, WorkflowVersion
from workflows.services import (
    app_delete,
    app_update,
    draft_snapshot,
    version_activate,
    workflow_create,
    workflow_delete,
    workflow_publish,
    workflow_update,
    workflow_validate,
)
from workflows.triggers import trigger_create, trigger_delete, trigger_update


def snapshot() -> dict[str, Any]:
    """Everything a cross-team call could have written."""
    return {
        "apps": sorted(App.objects.values_list("pk", "name", "enabled", "entry_workflow_id")),
        "workflows": sorted(Workflow.objects.values_list("pk", "name", "active_version_id", "updated_at")),
        "versions": WorkflowVersion.objects.count(),
        "members": sorted(Membership.objects.values_list("pk", "role")),
        "tokens": sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        "credentials": sorted(Credential.objects.values_list("pk", "name", "updated_at")),
        "invitations": sorted(Invitation.objects.values_list("pk", "revoked_at")),
        "triggers": sorted(Trigger.objects.values_list("pk", "name", "enabled")),
        "runs": sorted(Run.objects.values_list("pk", "status", "stop_requested_at")),
        "batches": BatchJob.objects.count(),
    }


@pytest.fixture
def team_a_objects(team_a: Any, owner_a: Any) -> dict[str, Any]:
    workflow = published_make(team_a)
    run = run_create(team=team_a, workflow=workflow, inputs={"name": "x"}, mode="async")
    run.status = "succeeded"
    run.save(update_fields=["status"])
    pending = run_create(team=team_a, workflow=workflow, inputs={"name": "y"}, mode="async")
    token, _ = token_create(team=team_a, name="t", scopes=["run"], created_by=owner_a)
    editor = member_make(team_a, "editor")
    return {
        "app": app_make(team_a), "workflow": workflow, "draft": workflow_make(team_a), "run": run, "pending": pending,
        "token": token, "membership": Membership.objects.get(team=team_a, user=editor),
        "credential": credential_create(team=team_a, name="c", kind="bearer", secrets={"token": "s3cret"}),
        "invitation": invitation_create(team=team_a, email="new@example.com", role="viewer", invited_by=owner_a),
        "trigger": trigger_create(team=team_a, workflow=workflow, kind="schedule", cron="0 * * * *"),
    }


CALLS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "app_update": lambda t, o: app_update(team=t, app=o["app"], name="taken over"),
    "app_delete": lambda t, o: app_delete(team=t, app=o["app"]),
    "workflow_create": lambda t, o: workflow_create(team=t, app=o["app"], name="planted"),
    "workflow_update": lambda t, o: workflow_update(team=t, workflow=o["draft"], name="taken over"),
    "workflow_delete": lambda t, o: workflow_delete(team=t, workflow=o["draft"]),
    "workflow_validate": lambda t, o: workflow_validate(team=t, workflow=o["workflow"]),
    "draft_snapshot": lambda t, o: draft_snapshot(team=t, workflow=o["workflow"]),
    "workflow_publish": lambda t, o: workflow_publish(team=t, workflow=o["workflow"]),
    "version_activate": lambda t, o: version_activate(team=t, workflow=o["workflow"], number=1),
    "membership_update": lambda t, o: membership_update(team=t, membership=o["membership"], role="viewer"),
    "membership_remove": lambda t, o: membership_remove(team=t, membership=o["membership"]),
    "token_revoke": lambda t, o: token_revoke(team=t, token=o["token"]),
    "credential_update": lambda t, o: credential_update(team=t, credential=o["credential"], name="taken over"),
    "credential_delete": lambda t, o: credential_delete(team=t, credential=o["credential"]),
    "credential_test": lambda t, o: credential_test(team=t, credential=o["credential"]),
    "invitation_revoke": lambda t, o: invitation_revoke(team=t, invitation=o["invitation"]),
    "trigger_create": lambda t, o: trigger_create(team=t, workflow=o["workflow"], kind="schedule", cron="0 * * * *"),
    "trigger_update": lambda t, o: trigger_update(team=t, trigger=o["trigger"], enabled=False),
    "trigger_delete": lambda t, o: trigger_delete(team=t, trigger=o["trigger"]),
    "run_create": lambda t, o: run_create(team=t, workflow=o["workflow"], inputs={"name": "x"}, mode="async"),
    "run_replay": lambda t, o: run_replay(team=t, run=o["run"]),
    "run_stop": lambda t, o: run_stop(team=t, run=o["pending"]),
    "batch_submit": lambda t, o: batch_submit(team=t, job_id="job-1", workflow=o["workflow"], items=[{"name": "x"}]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_service_handed_another_teams_object_is_not_found_and_writes_nothing(
        name: str, team_a_objects: dict[str, Any], team_b: Any) -> None:
    before = snapshot()
    with pytest.raises(NotFound):
        CALLS[name](team_b, team_a_objects)
    assert snapshot() == before


@pytest.mark.django_db
def test_the_guard_answers_a_missing_object_like_another_teams(team_a: Any, team_b: Any) -> None:
    with pytest.raises(NotFound) as missing:
        app_update(team=team_b, app=None, name="x")  # type: ignore[arg-type]
    with pytest.raises(NotFound) as foreign:
        app_update(team=team_b, app=app_make(team_a), name="x")
    assert (missing.value.status, str(missing.value)) == (foreign.value.status, str(foreign.value)) == (404, "App not found.")
