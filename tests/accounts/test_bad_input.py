"""Bad input to every accounts write endpoint: 400 problem+json naming the fields, no row written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, Team
from accounts.services import credential_create
from tests.bad_input import assert_bad_input, assert_malformed_bodies_refused
from tests.conftest import app_make, member_make, workflow_make

CASES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/api/v1/tokens", {}, {"/name", "/scopes"}),
    ("POST", "/api/v1/tokens", {"name": 5, "scopes": ["root"]}, {"/name", "/scopes/0"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": []}, {"/scopes"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": "read"}, {"/scopes"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read"], "expiresAt": "tomorrow"}, {"/expiresAt"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read"], "expiresAt": "2001-01-01T00:00:00Z"}, {"/expiresAt"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read"], "appId": "nope"}, {"/appId"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read"], "appId": str(uuid.uuid4())}, {"/appId"}),
    ("POST", "/api/v1/tokens", {"name": "t", "scopes": ["read"], "appId": "{other_app}"}, {"/appId"}),
    ("POST", "/api/v1/credentials", {}, {"/name", "/kind", "/secrets"}),
    ("POST", "/api/v1/credentials", {"name": "c", "kind": "oauth", "secrets": {}}, {"/kind"}),
    ("POST", "/api/v1/credentials", {"name": "c", "kind": "bearer", "secrets": "x"}, {"/secrets"}),
    ("POST", "/api/v1/credentials", {"name": "c", "kind": "bearer", "secrets": {"token": 5}}, {"/secrets/token"}),
    ("POST", "/api/v1/credentials", {"name": "c", "kind": "basic", "secrets": {"username": "u"}}, {"/secrets/password"}),
    ("POST", "/api/v1/credentials", {"name": "c", "kind": "bearer", "secrets": {"token": "t", "x": "y"}}, {"/secrets/x"}),
    ("PATCH", "/api/v1/credentials/{credential}", {"name": 7}, {"/name"}),
    ("PATCH", "/api/v1/credentials/{credential}", {"kind": "basic", "secrets": {"username": "u"}}, {"/secrets/password"}),
    ("PATCH", "/api/v1/credentials/{credential}", {"kind": "bearer"}, {"/secrets"}),
    ("PATCH", "/api/v1/credentials/{credential}", {"kind": "nope"}, {"/kind"}),
    ("PUT", "/api/v1/parameters", {"region": {"nested": 1}}, {"/region"}),
    ("PUT", "/api/v1/parameters", {"system.biz.date": "x"}, {"/system.biz.date"}),
    ("POST", "/api/v1/members", {}, {"/email", "/role"}),
    ("POST", "/api/v1/members", {"email": "not-an-email", "role": "god"}, {"/email", "/role"}),
    ("PATCH", "/api/v1/members/{member}", {}, {"/role"}),
    ("PATCH", "/api/v1/members/{member}", {"role": "god"}, {"/role"}),
]

WRITE_URLS = [
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/credentials"),
    ("PATCH", "/api/v1/credentials/{credential}"),
    ("PUT", "/api/v1/parameters"),
    ("POST", "/api/v1/members"),
    ("PATCH", "/api/v1/members/{member}"),
]


@pytest.fixture
def objects(team_a: Team, team_b: Team) -> dict[str, str]:
    credential = credential_create(team=team_a, name="existing", kind="bearer", secrets={"token": "t0"})
    member = member_make(team_a, Role.EDITOR).memberships.get(team=team_a)
    other_app = app_make(team_b)
    workflow_make(team_a)
    return {"credential": str(credential.id), "member": str(member.id), "other_app": str(other_app.id)}


def _fill(value: Any, objects: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**objects) if "{" in value and not value.startswith("{not") else value
    if isinstance(value, dict):
        return {k: _fill(v, objects) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "url", "body", "paths"), CASES, ids=[f"{c[0]} {c[1]} {i}" for i, c in enumerate(CASES)])
def test_bad_input_names_fields_and_writes_nothing(client_a: APIClient, objects: dict[str, str], method: str, url: str,
                                                   body: Any, paths: set[str]) -> None:
    assert_bad_input(client_a, method, _fill(url, objects), _fill(body, objects), paths)


@pytest.mark.parametrize(("method", "url"), WRITE_URLS)
def test_malformed_body_is_400(client_a: APIClient, objects: dict[str, str], method: str, url: str) -> None:
    assert_malformed_bodies_refused(client_a, method, _fill(url, objects))
