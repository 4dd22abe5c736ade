"""Shared check for the bad-input tests: a 400 problem+json naming the fields, nothing written."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.conftest import db_snapshot


def assert_bad_input(client: APIClient, method: str, url: str, body: Any, paths: set[str], *,
                     raw: str | None = None) -> dict[str, Any]:
    """Send ``body`` as JSON (or ``raw`` text as application/json); expect a 400 whose ``errors``
    name at least ``paths`` and no change to any row."""
    before = db_snapshot()
    if raw is not None:
        response = client.generic(method, url, raw, content_type="application/json")
    else:
        response = getattr(client, method.lower())(url, body, format="json")
    assert response.status_code == 400, (method, url, response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["type"] and problem["title"] and problem["code"]
    named = {error["path"] for error in problem["errors"]}
    assert paths <= named, (paths, problem["errors"])
    assert all(error["message"] for error in problem["errors"])
    assert db_snapshot() == before, "a refused request wrote to the database"
    return problem


def assert_malformed_bodies_refused(client: APIClient, method: str, url: str) -> None:
    """A body that is not JSON, and JSON that is not an object, are 400s at ``/``."""
    assert_bad_input(client, method, url, None, {"/"}, raw="{not json")
    assert_bad_input(client, method, url, [1, 2], {"/"})
    assert_bad_input(client, method, url, "text", {"/"})
