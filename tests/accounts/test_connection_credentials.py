"""Credential kinds ``database`` and ``broker``: a URL, encrypted like the others, and the "test
connection" action against the real PostgreSQL, MariaDB, RabbitMQ and Redis on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Credential

PASSWORD = "pw-Very-Secret-42"


def _create(client: APIClient, kind: str, url: str, name: str = "conn") -> Any:
    return client.post("/api/v1/credentials", {"name": name, "kind": kind, "secrets": {"url": url}}, format="json")


def _test(client: APIClient, credential_id: str) -> Any:
    return client.post(f"/api/v1/credentials/{credential_id}/test", format="json")


def test_url_kinds_are_encrypted_and_write_only(client_a: APIClient) -> None:
    created = _create(client_a, "database", f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/postgres")
    assert created.status_code == 201, created.json()
    assert created.json()["fields"] == ["url"] and PASSWORD not in created.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM accounts_credential")
        assert all(PASSWORD not in row[0] for row in cursor.fetchall())
    assert _create(client_a, "broker", "amqp://guest:guest@127.0.0.1:5672/", name="mq").status_code == 201


@pytest.mark.parametrize(("kind", "url"), [("database", "ftp://x/y"), ("broker", "postgresql://x/y"),
                                           ("database", "no-scheme")])
def test_wrong_scheme_is_a_400_naming_the_field(client_a: APIClient, kind: str, url: str) -> None:
    response = _create(client_a, kind, url)
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == ["/secrets/url"]
    assert not Credential.objects.exists()


@pytest.mark.parametrize(("kind", "url", "code"), [
    ("database", "postgresql://postgres@127.0.0.1:5432/postgres", None),
    ("database", "mysql://root@127.0.0.1:3306/", None),
    ("database", "sqlite:///check.db", None),
    ("broker", "amqp://guest:guest@127.0.0.1:5672/", None),
    ("broker", "redis://127.0.0.1:6379/6", None),
    ("database", f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/weft_queues_no_such_db", "unknown_database"),
    ("database", f"mysql://nobody:{PASSWORD}@127.0.0.1:3306/x", "auth_failed"),
    ("database", f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x", "connection_refused"),
    ("broker", f"amqp://guest:{PASSWORD}@127.0.0.1:5672/", "auth_failed"),
    ("broker", f"redis://nobody:{PASSWORD}@127.0.0.1:6379/6", "auth_failed"),
])
def test_test_connection_reports_a_clear_error_without_the_secret(client_a: APIClient, kind: str, url: str,
                                                                   code: str | None, tmp_path: Any,
                                                                   settings: Any) -> None:
    # Through the settings fixture only: an @override_settings on the same test would be undone
    # out of order and leak into every later test of this process.
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.0/8"]
    settings.WEFT_DB_SQLITE_DIR = str(tmp_path)
    credential_id = _create(client_a, kind, url).json()["id"]
    response = _test(client_a, credential_id)
    assert response.status_code == 200
    body = response.json()
    if code is None:
        assert body == {"ok": True, "error": None}
    else:
        assert body["ok"] is False and body["error"]["code"] == code, body
        assert PASSWORD not in response.content.decode()


def test_address_policy_applies_to_test_connection(client_a: APIClient, settings: Any) -> None:
    settings.WEFT_HTTP_ALLOW_NETWORKS = []
    credential_id = _create(client_a, "database", "postgresql://postgres@localhost:5432/postgres").json()["id"]
    body = _test(client_a, credential_id).json()
    assert body["ok"] is False and body["error"]["code"] == "address_refused"


def test_other_kinds_cannot_be_tested(client_a: APIClient) -> None:
    created = client_a.post("/api/v1/credentials", {"name": "k", "kind": "bearer", "secrets": {"token": "t"}},
                            format="json").json()
    response = _test(client_a, created["id"])
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "/kind"
