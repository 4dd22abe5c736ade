"""Bad input to every apps/workflows/versions write endpoint: 400 problem+json naming the fields,
no row written."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Team
from tests.bad_input import assert_bad_input, assert_malformed_bodies_refused
from tests.conftest import published_make, workflow_make

CASES: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/api/v1/apps", {}, {"/name"}),
    ("POST", "/api/v1/apps", {"name": 1, "enabled": "yes", "tags": "a"}, {"/name", "/enabled", "/tags"}),
    ("POST", "/api/v1/apps", {"name": "x", "tags": [1, "ok"]}, {"/tags/0"}),
    ("POST", "/api/v1/apps", {"name": "x", "description": None}, {"/description"}),
    ("POST", "/api/v1/apps", {"name": "   "}, {"/name"}),
    ("PATCH", "/api/v1/apps/{app}", {"enabled": 1}, {"/enabled"}),
    ("PATCH", "/api/v1/apps/{app}", {"entryWorkflowId": "x"}, {"/entryWorkflowId"}),
    ("PATCH", "/api/v1/apps/{app}", {"entryWorkflowId": "{other_workflow}"}, {"/entryWorkflowId"}),
    ("PATCH", "/api/v1/apps/{app}", {"entryWorkflowId": None}, {"/entryWorkflowId"}),
    ("POST", "/api/v1/apps/{app}/workflows", {}, {"/name"}),
    ("POST", "/api/v1/apps/{app}/workflows", {"name": "w", "graph": []}, {"/graph"}),
    ("POST", "/api/v1/apps/{app}/workflows", {"name": "w", "graph": {"nodes": {}}}, {"/graph/nodes", "/graph/edges"}),
    ("PATCH", "/api/v1/workflows/{workflow}", {"graph": "x"}, {"/graph"}),
    ("PATCH", "/api/v1/workflows/{workflow}", {"graph": {"nodes": [1], "edges": []}}, {"/graph/nodes/0"}),
    ("PATCH", "/api/v1/workflows/{workflow}", {"graph": {"nodes": [], "edges": [], "inputs": []}}, {"/graph/inputs"}),
    ("PATCH", "/api/v1/workflows/{workflow}", {"name": ["w"]}, {"/name"}),
    ("POST", "/api/v1/workflows/{workflow}/validate", {"graph": 5}, {"/graph"}),
]

WRITE_URLS = [
    ("POST", "/api/v1/apps"),
    ("PATCH", "/api/v1/apps/{app}"),
    ("POST", "/api/v1/apps/{app}/workflows"),
    ("PATCH", "/api/v1/workflows/{workflow}"),
    ("POST", "/api/v1/workflows/{workflow}/validate"),
    ("POST", "/api/v1/workflows/{workflow}/publish"),
    ("POST", "/api/v1/workflows/{workflow}/versions/1/activate"),
]


@pytest.fixture
def objects(team_a: Team, team_b: Team) -> dict[str, str]:
    workflow = published_make(team_a)
    other = workflow_make(team_a)  # another app's workflow: not a valid entry for this app
    return {"app": str(workflow.app_id), "workflow": str(workflow.id), "other_workflow": str(other.id)}


def _fill(value: Any, objects: dict[str, str]) -> Any:
    if isinstance(value, str) and "{" in value:
        return value.format(**objects)
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


def test_publishing_an_invalid_graph_is_400_with_paths_and_no_version(client_a: APIClient, objects: dict[str, str]) -> None:
    url = f"/api/v1/workflows/{objects['workflow']}"
    graph = {"nodes": [{"id": "start", "type": "start"}, {"id": "call", "type": "http", "config": {"method": "GET"}}],
             "edges": [{"from": "start", "to": "call"}]}
    assert client_a.patch(url, {"graph": graph}, format="json").status_code == 200
    assert_bad_input(client_a, "POST", f"{url}/publish", {}, {"/nodes/1/config/url"})
