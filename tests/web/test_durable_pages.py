"""Triggers, dead letters and batch pages: next fire times, webhook URL and secret (editors only),
replay of a dead letter, batch progress; role rules and tenancy as everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from runs.models import Run, RunMode
from runs.services import run_create
from tests.web.factories import published_workflow
from workflows.models import Trigger

pytestmark = pytest.mark.django_db


def test_schedule_trigger_shows_next_fire_times(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    url = f"/workflows/{workflow.pk}/triggers/"
    bad = client.post(url, {"kind": "schedule", "cron": "every day", "inputs": "{}"})
    assert bad.status_code == 200 and b"/cron" in bad.content
    client.post(url, {"kind": "schedule", "name": "nightly", "cron": "0 2 * * *", "time_zone": "UTC",
                      "inputs": '{"name": "night"}'})
    trigger = Trigger.objects.get(workflow=workflow)
    assert trigger.cron == "0 2 * * *" and trigger.inputs == {"name": "night"}
    page = client.get(url).content.decode()
    assert page.count(" 02:00 UTC") == 3
    client.post(f"/triggers/{trigger.pk}/", {"action": "disable"})
    trigger.refresh_from_db()
    assert trigger.enabled is False


def test_webhook_trigger_url_and_secret_for_editors_only(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client_for("editor").post(f"/workflows/{workflow.pk}/triggers/", {"kind": "webhook", "signed": "1", "inputs": ""})
    trigger = Trigger.objects.get(workflow=workflow)
    assert trigger.signing_secret
    editor_page = client_for("editor").get(f"/workflows/{workflow.pk}/triggers/").content.decode()
    assert f"/hooks/{trigger.key}" in editor_page and trigger.signing_secret in editor_page
    viewer = client_for("viewer")
    viewer_page = viewer.get(f"/workflows/{workflow.pk}/triggers/").content.decode()
    assert f"/hooks/{trigger.key}" in viewer_page and trigger.signing_secret not in viewer_page
    assert viewer.post(f"/triggers/{trigger.pk}/", {"action": "delete"}).status_code == 403
    assert client_for("owner", team="other").post(f"/triggers/{trigger.pk}/", {"action": "delete"}).status_code == 404
    assert Trigger.objects.filter(pk=trigger.pk).exists()


def test_dead_letter_replay(teams: dict[str, Any], client_for: Any) -> None:
    from runs.deadletters import dead_letter_add

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    run = run_create(team=teams["acme"], workflow=workflow, inputs={"name": "x"}, mode=RunMode.ASYNC)
    Run.objects.filter(pk=run.pk).update(status="failed", error={"code": "boom", "message": "lost"})
    run.refresh_from_db()
    letter = dead_letter_add(run=run, reason="max_claims", attempts=3)
    page = client_for("viewer").get("/dead-letters/").content.decode()
    assert "max_claims" in page and str(run.pk)[:8] in page and "Replay</button>" not in page
    assert client_for("viewer").post("/dead-letters/", {"id": str(letter.pk)}).status_code == 403
    assert client_for("owner", team="other").post("/dead-letters/", {"id": str(letter.pk)}).status_code == 404
    response = client_for("editor").post("/dead-letters/", {"id": str(letter.pk)})
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.replayed_run is not None and letter.replayed_run.replay_of_id == run.pk
    assert response["Location"] == f"/runs/{letter.replayed_run_id}/"


def test_batches_page_shows_progress(teams: dict[str, Any], client_for: Any) -> None:
    from runs.batches import batch_submit

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    batch_submit(team=teams["acme"], job_id="job-1", workflow=workflow, items=[{"name": "a"}, {"name": "b"}])
    page = client_for("viewer").get("/batches/").content.decode()
    assert "job-1" in page and 'class="progress"' in page and "2 total" in page
    assert "job-1" not in client_for("viewer", team="other").get("/batches/").content.decode()
