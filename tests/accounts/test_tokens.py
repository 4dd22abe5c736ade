"""API tokens: shown once, stored only as a hash, refused at once when revoked or expired, both
headers accepted, malformed tokens a 401 with WWW-Authenticate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Team
from tests.conftest import app_make


def _create(client: APIClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "ci")
    body.setdefault("scopes", ["read"])
    response = client.post("/api/v1/tokens", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_returns_the_secret_once_and_list_never(client_a: APIClient, team_a: Team) -> None:
    app = app_make(team_a)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    created = _create(client_a, name="deploy", scopes=["run", "read"], appId=str(app.id), expiresAt=expires)
    secret = created["token"]
    assert secret.startswith(f"weft_{created['prefix']}_")
    assert created["scopes"] == ["read", "run"]
    assert created["appId"] == str(app.id)
    assert created["revokedAt"] is None and created["lastUsedAt"] is None and created["expiresAt"]

    listed = client_a.get("/api/v1/tokens").json()["data"]
    mine = next(t for t in listed if t["id"] == created["id"])
    assert "token" not in mine
    assert secret not in str(listed)
    assert set(mine) == {"id", "name", "prefix", "scopes", "appId", "expiresAt", "revokedAt", "lastUsedAt", "createdBy",
                         "createdAt"}


def test_secret_is_not_in_the_database(client_a: APIClient) -> None:
    secret = _create(client_a)["token"]
    secret_part = secret.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert rows
    for row in rows:
        for column in row:
            assert secret_part not in str(column)
            assert secret not in str(column)


def test_new_token_works_with_bearer_and_x_api_key(client_a: APIClient) -> None:
    secret = _create(client_a)["token"]
    assert APIClient().get("/api/v1/apps", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert APIClient().get("/api/v1/apps", HTTP_X_API_KEY=secret).status_code == 200
    # last use is recorded, for the list
    assert ApiToken.objects.get(prefix=secret.split("_")[1]).last_used_at is not None


def test_revoked_token_is_refused_at_once(client_a: APIClient) -> None:
    created = _create(client_a)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=created["token"])
    assert client.get("/api/v1/apps").status_code == 200
    assert client_a.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    response = client.get("/api/v1/apps")
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    listed = {t["id"]: t for t in client_a.get("/api/v1/tokens").json()["data"]}
    assert listed[created["id"]]["revokedAt"] is not None
    # revoking again is harmless
    assert client_a.delete(f"/api/v1/tokens/{created['id']}").status_code == 204


def test_expired_token_is_refused(client_a: APIClient) -> None:
    created = _create(client_a)
    ApiToken.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = APIClient().get("/api/v1/apps", HTTP_AUTHORIZATION=f"Bearer {created['token']}")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_token_of_the_wrong_form_is_401_with_www_authenticate(client_a: APIClient) -> None:
    secret = _create(client_a)["token"]
    for headers in (
        {"HTTP_AUTHORIZATION": "Bearer not-a-weft-token"},
        {"HTTP_AUTHORIZATION": f"Bearer {secret}x"},
        {"HTTP_AUTHORIZATION": f"Basic {secret}"},
        {"HTTP_X_API_KEY": "weft_abc"},
        {"HTTP_X_API_KEY": "weft_000000000000_guess"},
    ):
        response = APIClient().get("/api/v1/apps", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"].startswith("Bearer"), headers
        assert response.json()["status"] == 401


def test_token_scopes_are_enforced(client_a_read: APIClient, client_a_run: APIClient) -> None:
    assert client_a_read.get("/api/v1/apps").status_code == 200
    response = client_a_read.post("/api/v1/apps", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client_a_run.get("/api/v1/apps").status_code == 403


def test_tokens_of_another_team_are_not_listed(client_a: APIClient, client_b: APIClient) -> None:
    created = _create(client_b)
    assert created["id"] not in {t["id"] for t in client_a.get("/api/v1/tokens").json()["data"]}
    assert client_a.delete(f"/api/v1/tokens/{created['id']}").status_code == 404
    assert ApiToken.objects.get(pk=created["id"]).revoked_at is None
