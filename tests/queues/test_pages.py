"""Queue triggers and connection credentials in the web UI (Django's test client, a signed-in editor)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Credential
from tests.queues.helpers import AMQP_URL, queue_trigger_make
from workflows.models import Trigger
from workflows.queue_triggers import consumer_report, queue_message_receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner_a: Any, team_a: Any) -> Client:
    client = Client()
    client.force_login(owner_a)
    return client


def test_triggers_page_creates_a_queue_trigger_and_shows_its_status(browser: Client, team_a: Any) -> None:
    existing = queue_trigger_make(team_a, url=AMQP_URL, source="orders-in", credential="rabbit")
    response = browser.post(f"/workflows/{existing.workflow_id}/triggers/",
                            {"kind": "queue", "credential": "rabbit", "source": "more-orders", "inputs": "{}"})
    assert response.status_code == 302
    assert Trigger.objects.filter(kind="queue", source="more-orders", credential="rabbit").exists()
    bad = browser.post(f"/workflows/{existing.workflow_id}/triggers/", {"kind": "queue", "credential": "", "inputs": "{}"})
    assert bad.status_code == 200 and "/credential" in bad.content.decode()
    consumer_report(trigger=existing, consumer="box-1", connected=True, lag=3, handled=2,
                    error="connection refused: broker went away")
    queue_message_receive(trigger=existing, message_id="poison-1", body=b"[not an object]")
    page = browser.get(f"/workflows/{existing.workflow_id}/triggers/").content.decode()
    assert "orders-in" in page and "connected" in page and "lag 3" in page
    assert "connection refused: broker went away" in page
    assert "poison-1" in page and "not_json" in page


def test_credentials_page_tests_a_connection(browser: Client, team_a: Any, settings: Any) -> None:
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.0/8"]
    browser.post("/settings/credentials/", {"name": "pg", "kind": "database",
                                            "url": "postgresql://postgres:Hidden-pw-1@127.0.0.1:1/x"})
    credential = Credential.objects.get(name="pg")
    page = browser.get("/settings/credentials/").content.decode()
    assert "Test connection" in page and "Hidden-pw-1" not in page
    shown = browser.post(f"/settings/credentials/{credential.pk}/", {"action": "test"}, follow=True).content.decode()
    assert "connection_refused" in shown and "Hidden-pw-1" not in shown
