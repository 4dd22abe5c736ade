"""A credential that something published names cannot be deleted, renamed or given another kind
(published versions find their credentials by name and kind at run time): 409 naming the uses,
nothing changed. Its secrets can always be replaced; drafts are checked when they are published."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Credential
from accounts.services import credential_create
from tests.conftest import page_client, published_make, workflow_make
from tests.queues.helpers import queue_trigger_make

pytestmark = pytest.mark.django_db


def db_graph(credential: str) -> dict[str, Any]:
    return {"inputs": {}, "outputs": {},
            "nodes": [{"id": "start", "type": "start"},
                      {"id": "save", "type": "db", "config": {"credential": credential, "query": "SELECT 1 AS one"}},
                      {"id": "end", "type": "end", "config": {"outputs": {}}}],
            "edges": [{"from": "start", "to": "save"}, {"from": "save", "to": "end"}]}


def test_a_credential_a_published_workflow_uses_is_not_deleted_renamed_or_rekinded(client_a: Any, team_a: Any) -> None:
    credential = credential_create(team=team_a, name="orders-db", kind="database", secrets={"url": "sqlite:///o.db"})
    workflow = published_make(team_a, db_graph("orders-db"))
    url = f"/api/v1/credentials/{credential.pk}"

    deleted = client_a.delete(url)
    assert deleted.status_code == 409, deleted.content
    problem = deleted.json()
    assert problem["errors"][0]["path"] == "/id"
    assert "save" in problem["errors"][0]["message"] and workflow.name in problem["errors"][0]["message"]
    for body, path in (({"name": "renamed"}, "/name"), ({"kind": "broker", "secrets": {"url": "amqp://h/"}}, "/kind")):
        changed = client_a.patch(url, body, format="json")
        assert changed.status_code == 409, changed.content
        assert changed.json()["errors"][0]["path"] == path
    assert Credential.objects.filter(pk=credential.pk, name="orders-db", kind="database").exists()

    # Its secret can be replaced while in use.
    replaced = client_a.patch(url, {"secrets": {"url": "sqlite:///other.db"}}, format="json")
    assert replaced.status_code == 200, replaced.content


def test_a_draft_or_another_teams_use_does_not_hold_a_credential(client_a: Any, team_a: Any, team_b: Any) -> None:
    credential = credential_create(team=team_a, name="scratch", kind="database", secrets={"url": "sqlite:///s.db"})
    workflow_make(team_a, graph=db_graph("scratch"))  # a draft only
    credential_create(team=team_b, name="scratch", kind="database", secrets={"url": "sqlite:///t.db"})
    published_make(team_b, db_graph("scratch"))
    assert client_a.delete(f"/api/v1/credentials/{credential.pk}").status_code == 204
    assert not Credential.objects.filter(pk=credential.pk).exists()
    assert Credential.objects.filter(team=team_b, name="scratch").exists()


def test_a_queue_triggers_broker_credential_is_held_by_the_trigger(client_a: Any, team_a: Any) -> None:
    trigger = queue_trigger_make(team_a, url="amqp://guest:guest@127.0.0.1:5672/", source="orders", credential="rabbit")
    credential = Credential.objects.get(team=team_a, name="rabbit")
    deleted = client_a.delete(f"/api/v1/credentials/{credential.pk}")
    assert deleted.status_code == 409
    assert "queue trigger" in deleted.json()["errors"][0]["message"]
    trigger.delete()
    assert client_a.delete(f"/api/v1/credentials/{credential.pk}").status_code == 204


def test_the_credentials_page_says_why_it_did_not_delete(owner_a: Any, team_a: Any) -> None:
    credential = credential_create(team=team_a, name="orders-db", kind="database", secrets={"url": "sqlite:///o.db"})
    published_make(team_a, db_graph("orders-db"))
    page = page_client(owner_a, team_a).post(f"/settings/credentials/{credential.pk}/", {"action": "delete"}, follow=True)
    assert page.status_code == 200
    assert "is in use" in page.content.decode() and "save" in page.content.decode()
    assert Credential.objects.filter(pk=credential.pk).exists()
