"""The OpenAPI schema validates, documents every API route of the URL configuration, and the docs
pages load with local assets only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import api_routes


def test_schema_generation_validates_without_warnings(tmp_path: Path) -> None:
    # --fail-on-warn: an undocumented view, an unresolvable serializer or a component name clash fails.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.fixture
def schema(client_anon: APIClient) -> dict[str, Any]:
    response = client_anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_openapi_3(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    assert {"BearerToken", "ApiKey"} <= set(schema["components"]["securitySchemes"])


# Not an operation: the Dify-style catch-all answering Dify's JSON 404 for every unknown /v1/ path.
NOT_OPERATIONS = {"/v1/{path}"}


def test_schema_lists_every_api_route_and_method(schema: dict[str, Any]) -> None:
    missing = []
    for route in api_routes():
        if route.path in NOT_OPERATIONS:
            continue
        documented = schema["paths"].get(route.path)
        if documented is None:
            missing.append(route.path)
            continue
        missing += [f"{m} {route.path}" for m in route.methods() if m.lower() not in documented]
    assert not missing, f"routes missing from /api/schema/: {missing}"


def test_operations_have_ids_and_tags(schema: dict[str, Any]) -> None:
    ids = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert operation.get("tags"), f"{method} {path} has no tag"
                ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_management_schema_uses_camel_case(schema: dict[str, Any]) -> None:
    app = schema["components"]["schemas"]["App"]["properties"]
    assert {"entryWorkflowId", "createdAt", "updatedAt"} <= set(app)
    version = schema["components"]["schemas"]["Version"]["properties"]
    assert {"id", "number", "workflowId", "publishedAt", "publishedBy", "graph"} <= set(version)
    token_input = schema["components"]["schemas"]["TokenCreateInputRequest"]["properties"]
    assert {"name", "scopes", "appId", "expiresAt"} <= set(token_input)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_local_assets_only(client_anon: APIClient, url: str) -> None:
    response = client_anon.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    external = re.findall(r"""(?:src|href)\s*=\s*["'](https?:)?//""", html) + re.findall(r"https?://[^\s\"'<>]+", html)
    assert not external, f"{url} references remote assets: {external}"
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html):
        assert Path(asset).suffix in {".js", ".css", ".png", ".ico", ".svg"}


def test_each_security_scheme_is_listed_once_per_operation(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            names = [name for requirement in operation.get("security", []) for name in requirement]
            assert len(names) == len(set(names)), f"{method} {path}: {operation.get('security')}"


def test_every_response_has_one_media_type_and_streams_are_only_sse(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                assert len(content) <= 1, f"{method} {path} {status}: {list(content)}"
    for path in ("/api/v1/runs/{run_id}/events", "/stream_run", "/run/stream"):
        operation = next(iter(schema["paths"][path].values()))
        assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"], path


@pytest.mark.parametrize("path,method", [
    ("/api/v1/workflows/run", "post"), ("/api/v1/runs", "get"), ("/api/v1/runs/{run_id}", "get"),
    ("/api/v1/runs/{run_id}/stop", "post"), ("/api/v1/runs/{run_id}/replay", "post"),
    ("/api/v1/runs/{run_id}/events", "get"), ("/api/v1/workflows/{workflow_id}/trigger", "post")])
def test_native_run_endpoints_document_their_errors(schema: dict[str, Any], path: str, method: str) -> None:
    responses = schema["paths"][path][method]["responses"]
    assert {"401", "403", "429"} <= set(responses), responses.keys()
    assert {"400", "404"} & set(responses)
