"""Fixtures for page tests: two teams (every fixture set has a second team), signed-in clients."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import page_client
from tests.web.factories import team_with_members


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # Users made here sign in through force_login (or session cookies), never with the password
    # against another process, so a cheap hasher is safe and saves seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def teams(db: Any) -> dict[str, Any]:
    acme, acme_users = team_with_members("acme")
    other, other_users = team_with_members("other")
    return {"acme": acme, "acme_users": acme_users, "other": other, "other_users": other_users}


@pytest.fixture
def client_for(teams: dict[str, Any]) -> Any:
    def make(role: str, team: str = "acme") -> Client:
        return page_client(teams[f"{team}_users"][role], teams[team])

    return make


from tests.websockets.live_server import daphne_server  # noqa: E402,F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    # Browser tests screenshot a failing page (tests/web/test_browser.py reads ``rep_call``).
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
