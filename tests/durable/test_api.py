"""Triggers, /hooks, offline submit and dead letters through the API, in process (the real-process
behaviour is in test_processes.py). Mirrors workflows/triggers.py, runs/batches.py, runs/deadletters.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from runs.models import BatchItem, BatchJob, DeadLetter, Run, RunEvent
from runs.reaper import runs_reap
from runs.tasks import run_task
from tests.conftest import published_make
from tests.durable.helpers import echo_graph
from workflows.models import Trigger, TriggerDelivery
from workflows.triggers import cron_latest, trigger_fire, triggers_fire_due

# Triggers --------------------------------------------------------------------------------------

def test_schedule_trigger_is_validated_created_listed_updated_and_deleted(client_a, team_a):
    workflow = published_make(team_a)
    url = f"/api/v1/workflows/{workflow.pk}/triggers"
    bad = client_a.post(url, {"kind": "schedule", "cron": "every day", "inputs": {"name": "x"}}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"] == [
        {"path": "/cron", "message": "a 5-field cron expression, e.g. '0 2 * * *'"}]
    bad_tz = client_a.post(url, {"kind": "schedule", "cron": "0 2 * * *", "timeZone": "Mars/Olympus"}, format="json")
    assert bad_tz.status_code == 400 and bad_tz.json()["errors"][0]["path"] == "/timeZone"
    assert Trigger.objects.count() == 0

    created = client_a.post(url, {"kind": "schedule", "cron": "30 2 * * *", "timeZone": "Asia/Shanghai",
                                  "inputs": {"name": "nightly"}}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    next_fire = datetime.fromisoformat(body["nextFireAt"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert (next_fire.hour, next_fire.minute) == (2, 30) and next_fire > timezone.now()
    assert body["url"] is None and body["signed"] is False

    listed = client_a.get(url).json()["data"]
    assert [t["id"] for t in listed] == [body["id"]]
    off = client_a.patch(f"/api/v1/triggers/{body['id']}", {"enabled": False}, format="json")
    assert off.status_code == 200 and off.json()["nextFireAt"] is None
    assert client_a.delete(f"/api/v1/triggers/{body['id']}").status_code == 204
    assert Trigger.objects.count() == 0


def test_webhook_trigger_shows_its_secret_once(client_a, team_a):
    workflow = published_make(team_a)
    created = client_a.post(f"/api/v1/workflows/{workflow.pk}/triggers", {"kind": "webhook"}, format="json").json()
    assert created["signingSecret"].startswith("whsec_") and created["signed"] is True
    assert created["url"].endswith(f"/hooks/{Trigger.objects.get().key}")
    fetched = client_a.get(f"/api/v1/triggers/{created['id']}").json()
    assert "signingSecret" not in fetched
    rotated = client_a.patch(f"/api/v1/triggers/{created['id']}", {"rotateSecret": True}, format="json").json()
    assert rotated["signingSecret"] not in (None, created["signingSecret"])


def _make_schedule(team, workflow, cron: str, next_fire_at: datetime, tz: str = "UTC") -> Trigger:
    return Trigger.objects.create(team=team, workflow=workflow, kind="schedule", cron=cron, time_zone=tz,
                                  inputs={}, key=uuid.uuid4().hex, next_fire_at=next_fire_at)


@pytest.mark.django_db(transaction=True)
def test_missed_slots_fire_once_with_the_latest_slot_as_business_time(team_a):
    graph = {"inputs": {}, "outputs": {}, "nodes": [
        {"id": "start", "type": "start"},
        {"id": "end", "type": "end", "config": {"outputs": {"day": "$[yyyyMMdd-1]", "today": "$[yyyyMMdd]"}}}],
        "edges": [{"from": "start", "to": "end"}]}
    workflow = published_make(team_a, graph)
    now = timezone.now()
    # Down for five days: five 02:30 slots were missed.
    trigger = _make_schedule(team_a, workflow, "30 2 * * *", now - timedelta(days=5))
    assert triggers_fire_due(now=now) == 1
    assert triggers_fire_due(now=now) == 0  # nothing due any more
    run = Run.objects.get(trigger="schedule")
    slot = cron_latest("30 2 * * *", "UTC", now)
    assert run.business_time == slot and (slot.hour, slot.minute) == (2, 30) and slot <= now
    trigger.refresh_from_db()
    assert trigger.next_fire_at == slot + timedelta(days=1) and trigger.last_fired_at == slot
    finished = run_task(run.pk)
    assert finished == "succeeded"
    run.refresh_from_db()
    assert run.outputs == {"day": (slot - timedelta(days=1)).strftime("%Y%m%d"), "today": slot.strftime("%Y%m%d")}


def test_a_slot_is_claimed_once_by_racing_dispatchers(team_a):
    workflow = published_make(team_a)
    now = timezone.now()
    trigger = _make_schedule(team_a, workflow, "* * * * *", now - timedelta(minutes=3))
    trigger.inputs = {"name": "x"}
    trigger.save()
    seen_by_a = Trigger.objects.select_related("team", "workflow").get(pk=trigger.pk)
    seen_by_b = Trigger.objects.select_related("team", "workflow").get(pk=trigger.pk)
    assert trigger_fire(trigger=seen_by_a, now=now) is not None
    assert trigger_fire(trigger=seen_by_b, now=now) is None  # the other cluster saw the same next_fire_at
    assert Run.objects.filter(trigger="schedule").count() == 1


# /hooks ----------------------------------------------------------------------------------------

def _signed(secret: str, body: dict, *, msg_id: str | None = None, at: datetime | None = None) -> tuple[bytes, dict]:
    data = json.dumps(body)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(tz=UTC)
    sig = Webhook(secret).sign(msg_id, at, data)
    headers = {"HTTP_WEBHOOK_ID": msg_id, "HTTP_WEBHOOK_TIMESTAMP": str(int(at.timestamp())),
               "HTTP_WEBHOOK_SIGNATURE": sig}
    return data.encode(), headers


@pytest.fixture
def signed_hook(client_a, team_a):
    workflow = published_make(team_a)
    body = client_a.post(f"/api/v1/workflows/{workflow.pk}/triggers", {"kind": "webhook"}, format="json").json()
    return Trigger.objects.get(pk=body["id"]), body["signingSecret"]


def test_hook_with_a_valid_signature_starts_an_async_run(client_anon, signed_hook):
    trigger, secret = signed_hook
    data, headers = _signed(secret, {"name": "Ada"})
    response = client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers)
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["runId"])
    assert (run.trigger, run.mode, run.status, run.inputs) == ("webhook", "async", "pending", {"name": "Ada"})


def test_hook_bad_signature_stale_timestamp_and_missing_headers_are_401(client_anon, signed_hook):
    trigger, secret = signed_hook
    data, headers = _signed(secret, {"name": "Ada"})
    tampered = client_anon.post(f"/hooks/{trigger.key}", data.replace(b"Ada", b"Eve"),
                                content_type="application/json", **headers)
    assert tampered.status_code == 401 and tampered.json()["code"] == "invalid_signature"
    other_secret = "whsec_" + "A" * 32
    data, headers = _signed(other_secret, {"name": "Ada"})
    assert client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers).status_code == 401
    data, headers = _signed(secret, {"name": "Ada"}, at=datetime.now(tz=UTC) - timedelta(minutes=10))
    stale = client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers)
    assert stale.status_code == 401 and "too old" in stale.json()["detail"]
    unsigned = client_anon.post(f"/hooks/{trigger.key}", {"name": "Ada"}, format="json")
    assert unsigned.status_code == 401
    assert Run.objects.count() == 0


def test_a_replayed_webhook_id_starts_no_second_run(client_anon, signed_hook):
    trigger, secret = signed_hook
    data, headers = _signed(secret, {"name": "Ada"}, msg_id="msg_once")
    first = client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers)
    again = client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == {"runId": first.json()["runId"], "duplicate": True}
    assert Run.objects.count() == 1 and TriggerDelivery.objects.count() == 1


def test_hook_body_over_the_limit_is_413_and_unknown_key_404(client_anon, signed_hook, settings):
    trigger, secret = signed_hook
    settings.WEFT_MAX_BODY_BYTES = 64
    data, headers = _signed(secret, {"name": "x" * 100})
    response = client_anon.post(f"/hooks/{trigger.key}", data, content_type="application/json", **headers)
    assert response.status_code == 413 and response["Content-Type"].startswith("application/problem+json")
    assert client_anon.post("/hooks/nope", b"{}", content_type="application/json").status_code == 404
    assert Run.objects.count() == 0


def test_unsigned_hook_takes_plain_json_and_rejects_non_objects(client_a, client_anon, team_a):
    workflow = published_make(team_a)
    body = client_a.post(f"/api/v1/workflows/{workflow.pk}/triggers", {"kind": "webhook", "signed": False},
                         format="json").json()
    key = Trigger.objects.get(pk=body["id"]).key
    assert client_anon.post(f"/hooks/{key}", [1], format="json").status_code == 400
    missing = client_anon.post(f"/hooks/{key}", {}, format="json")
    assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == "/inputs/name"
    assert client_anon.post(f"/hooks/{key}", {"name": "B"}, format="json").status_code == 202


# Offline batches -------------------------------------------------------------------------------

def test_one_bad_item_rejects_the_whole_job_naming_it(client_a, team_a):
    workflow = published_make(team_a, echo_graph())
    items = [{"n": 1}, {"n": 2}, {"n": 3}, {"n": "three"}, {"n": 5}]
    response = client_a.post("/api/v1/offline/submit", {"jobId": "job_001", "workflowId": str(workflow.pk),
                                                         "items": items}, format="json")
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["/items/3/n"]
    assert BatchJob.objects.count() == 0 and Run.objects.count() == 0


def test_submit_answers_202_and_a_repeated_job_id_is_409(client_a, client_b, team_a, team_b):
    workflow = published_make(team_a, echo_graph())
    payload = {"jobId": "job_001", "workflowId": str(workflow.pk), "items": [{"n": i} for i in range(20)],
               "callbackUrl": "https://example.com/hook", "concurrency": 4}
    response = client_a.post("/api/v1/offline/submit", payload, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["jobId"], body["status"], body["total"]) == ("job_001", "pending", 20)
    assert BatchItem.objects.count() == 20
    assert Run.objects.filter(trigger="batch").count() == 4  # bounded: the rest wait for a slot
    assert client_a.post("/api/v1/offline/submit", payload, format="json").status_code == 409
    job = client_a.get("/api/v1/offline/jobs/job_001").json()
    assert job["counts"] == {"total": 20, "pending": 16, "running": 4, "succeeded": 0, "failed": 0}
    # Another team may use the same jobId, and cannot see team A's job.
    assert client_b.get("/api/v1/offline/jobs/job_001").status_code == 404


# Workflow-level retry and dead letters -----------------------------------------------------------

def failing_graph(retry: dict | None) -> dict:
    graph = {"inputs": {}, "outputs": {}, "nodes": [
        {"id": "start", "type": "start"},
        # Loopback is refused by the outbound policy: a permanent node failure.
        {"id": "call", "type": "http", "config": {"method": "GET", "url": "http://127.0.0.1:9/"}},
        {"id": "end", "type": "end", "config": {"outputs": {}}}],
        "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}]}
    if retry is not None:
        graph["retry"] = retry
    return graph


@pytest.mark.django_db(transaction=True)
def test_workflow_retry_with_backoff_then_dead_letter_and_replay(client_a, team_a, settings):
    settings.WEFT_HTTP_ALLOW_NETWORKS = []
    workflow = published_make(team_a, failing_graph({"count": 2, "interval": 30, "backoff": "exponential"}))
    from runs.services import run_create

    run = run_create(team=team_a, workflow=workflow, inputs={}, mode="async")
    assert run_task(run.pk) == "failed"
    retries = []
    current = run
    for expected_delay in (30, 60):  # interval * 2^(attempt-1)
        retry = Run.objects.get(replay_of=current, trigger="retry")
        assert retry.status == "waiting"
        delay = (retry.wake_at - timezone.now()).total_seconds()
        assert expected_delay - 5 < delay <= expected_delay
        assert run_task(retry.pk) is None  # not due yet: nothing claims it
        Run.objects.filter(pk=retry.pk).update(wake_at=timezone.now())
        assert run_task(retry.pk) == "failed"
        retries.append(retry)
        current = retry
    assert not Run.objects.filter(replay_of=current, trigger="retry").exists()
    letter = DeadLetter.objects.get()
    assert (letter.run_id, letter.reason, letter.attempts) == (current.pk, "retries_exhausted", 3)
    assert letter.detail["code"]
    # The reaper's repair pass finds nothing more to do for these runs.
    runs_reap(now=timezone.now() + timedelta(minutes=1))
    assert DeadLetter.objects.count() == 1 and Run.objects.count() == 3

    listed = client_a.get("/api/v1/dead-letters").json()
    assert [d["id"] for d in listed["data"]] == [str(letter.pk)]
    assert listed["data"][0]["reason"] == "retries_exhausted" and listed["nextCursor"] is None
    replay = client_a.post(f"/api/v1/dead-letters/{letter.pk}/replay")
    assert replay.status_code == 202
    replayed = Run.objects.get(pk=replay.json()["runId"])
    assert replayed.replay_of_id == current.pk and replayed.trigger == "replay"
    assert client_a.post(f"/api/v1/dead-letters/{letter.pk}/replay").status_code == 409
    assert client_a.get("/api/v1/dead-letters?replayed=false").json()["data"] == []


@pytest.mark.django_db(transaction=True)
def test_reaper_times_out_unattended_runs_past_their_deadline(team_a):
    from runs.services import run_create

    workflow = published_make(team_a)
    run = run_create(team=team_a, workflow=workflow, inputs={"name": "a"}, mode="async", deadline_seconds=1)
    Run.objects.filter(pk=run.pk).update(status="waiting", wake_at=timezone.now() + timedelta(hours=1))
    result = runs_reap(now=timezone.now() + timedelta(seconds=5))
    assert result["timedOut"] == 1
    run.refresh_from_db()
    assert run.status == "timeout" and run.error["code"] == "timeout"
    last = RunEvent.objects.filter(run=run).order_by("-seq").first()
    assert last.type == "run_finished" and last.data["status"] == "timeout"
    assert DeadLetter.objects.get(run=run).reason == "timeout"


def test_outgoing_signatures_verify_with_the_standardwebhooks_package(team_a):
    from runs.signing import signed_request, team_webhook_secret, webhook_secret_usable

    team_a.webhook_secret = "whsec_-_-_" + "a" * 30  # URL-safe: a receiver's library would decode another key
    team_a.save()
    secret = team_webhook_secret(team_a)
    assert secret != "whsec_-_-_" + "a" * 30 and webhook_secret_usable(secret)
    body, headers = signed_request(secret=secret, payload={"jobId": "j", "status": "succeeded"})
    assert Webhook(secret).verify(body, headers) == {"jobId": "j", "status": "succeeded"}
    assert team_webhook_secret(team_a) == secret  # stable once usable


def test_a_new_team_gets_a_secret_standard_webhooks_libraries_decode(db):
    from accounts.services import team_create, user_get_or_create
    from runs.signing import signed_request, team_webhook_secret, webhook_secret_usable

    owner, _ = user_get_or_create(email="fresh@example.com")
    team = team_create(name="Fresh", slug="fresh", owner=owner)
    assert webhook_secret_usable(team.webhook_secret)
    assert team_webhook_secret(team) == team.webhook_secret  # used as created, never replaced
    body, headers = signed_request(secret=team.webhook_secret, payload={"ok": True})
    assert Webhook(team.webhook_secret).verify(body, headers) == {"ok": True}
