"""Credentials: secrets are write-only (never in a response) and encrypted at rest."""

from __future__ import annotations

from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Credential, Team
from accounts.selectors import credential_secret

PLAIN = "sk-live-very-secret-value"


def _create(client: APIClient, **body: Any) -> Any:
    body = {"name": "stripe", "kind": "api_key", "secrets": {"key": PLAIN}, **body}
    return client.post("/api/v1/credentials", body, format="json")


def test_secrets_never_appear_in_responses(client_a: APIClient) -> None:
    created = _create(client_a)
    assert created.status_code == 201
    assert PLAIN not in created.content.decode()
    body = created.json()
    assert set(body) == {"id", "name", "kind", "fields", "createdAt", "updatedAt"}
    assert body["fields"] == ["key"] and body["kind"] == "api_key"
    listed = client_a.get("/api/v1/credentials")
    assert listed.status_code == 200 and PLAIN not in listed.content.decode()
    assert [c["name"] for c in listed.json()["data"]] == ["stripe"]
    patched = client_a.patch(f"/api/v1/credentials/{body['id']}", {"name": "stripe-live"}, format="json")
    assert patched.status_code == 200 and PLAIN not in patched.content.decode()


def test_column_is_encrypted(client_a: APIClient) -> None:
    assert _create(client_a).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_credential")
        rows = cursor.fetchall()
    assert rows
    for row in rows:
        for column in row:
            assert PLAIN not in str(column)


def test_patch_with_new_secrets_replaces_them(client_a: APIClient, team_a: Team) -> None:
    credential_id = _create(client_a).json()["id"]
    response = client_a.patch(f"/api/v1/credentials/{credential_id}",
                              {"kind": "basic", "secrets": {"username": "svc", "password": "n3w-pass"}}, format="json")
    assert response.status_code == 200
    assert response.json()["fields"] == ["password", "username"] and response.json()["kind"] == "basic"
    assert "n3w-pass" not in response.content.decode()
    assert credential_secret(team=team_a, name="stripe") == {"kind": "basic", "username": "svc", "password": "n3w-pass"}
    # same kind, new secret
    response = client_a.patch(f"/api/v1/credentials/{credential_id}",
                              {"secrets": {"username": "svc", "password": "rotated"}}, format="json")
    assert response.status_code == 200
    assert credential_secret(team=team_a, name="stripe")["password"] == "rotated"


def test_duplicate_name_is_409_and_delete_removes(client_a: APIClient) -> None:
    credential_id = _create(client_a).json()["id"]
    duplicate = _create(client_a)
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["path"] == "/name"
    assert Credential.objects.count() == 1
    assert client_a.delete(f"/api/v1/credentials/{credential_id}").status_code == 204
    assert Credential.objects.count() == 0
    assert client_a.delete(f"/api/v1/credentials/{credential_id}").status_code == 404


def test_parameters_put_replaces_all(client_a: APIClient, client_b: APIClient) -> None:
    assert client_a.get("/api/v1/parameters").json() == {}
    response = client_a.put("/api/v1/parameters", {"region": "eu", "limit": 5, "debug": True}, format="json")
    assert response.status_code == 200
    assert response.json() == {"debug": "true", "limit": "5", "region": "eu"}
    assert client_a.put("/api/v1/parameters", {"region": "us"}, format="json").json() == {"region": "us"}
    assert client_a.get("/api/v1/parameters").json() == {"region": "us"}
    assert client_b.get("/api/v1/parameters").json() == {}
