"""Sign-in throttling on a real Daphne: past the failures allowed per account, or per address, the
right password no longer signs in (the web login answers 429 with Retry-After; the admin's login
refuses it too); another account from another address is unaffected by an account's lockout."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.services import user_get_or_create
from tests.accounts.live import Browser
from tests.support.processes import daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[str]:
    # Its own counters (prefix), so the lockouts made here reach no other test's server.
    with daphne(WEFT_THROTTLE_PREFIX=f"throttle-{secrets.token_hex(4)}", WEFT_ADMIN_ENABLED="1",
                WEFT_LOGIN_FAILURES_PER_ACCOUNT="5", WEFT_LOGIN_FAILURES_PER_ADDRESS="12") as (_, url):
        yield url


def _login(browser: Browser, path: str, username: str, password: str) -> Any:
    return browser.form(path, {"username": username, "password": password, "next": "/"})


def test_wrong_passwords_lock_the_account_then_the_address(server: str) -> None:
    user, _ = user_get_or_create(email="target@throttle.example", password="the-right-password")
    user_get_or_create(email="bystander@throttle.example", password="bystander-password")
    browser = Browser(server)
    for _ in range(5):
        assert _login(browser, "/login/", "target@throttle.example", "wrong").status_code == 200
    locked = _login(browser, "/login/", "target@throttle.example", "the-right-password")
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.text and "sessionid" not in browser.cookies
    # the admin's login is behind the same throttle
    user.is_staff = user.is_superuser = True
    user.save()
    admin = _login(Browser(server), "/admin/login/", "target@throttle.example", "the-right-password")
    assert admin.status_code == 200 and "sessionid" not in admin.cookies
    # another account still signs in, until the address has failed too often
    assert _login(Browser(server), "/login/", "bystander@throttle.example", "bystander-password").status_code == 302
    for n in range(7):
        _login(browser, "/login/", f"guess{n}@throttle.example", "wrong")
    refused = _login(Browser(server), "/login/", "bystander@throttle.example", "bystander-password")
    assert refused.status_code == 429
