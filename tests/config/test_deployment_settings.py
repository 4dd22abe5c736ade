"""Deployment settings: no start on a missing or public SECRET_KEY or without the encryption key
when DEBUG is off; generated local keys for the embedded default; ``check --deploy`` clean with
production variables; /admin/ off unless enabled; HSTS, secure cookies, the proxy SSL header and
the CSP on a real Daphne."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from tests.support.processes import ROOT, daphne, django_env

pytestmark = pytest.mark.django_db

FERNET = "kKW6nKnmtJ0YDR3pDPTEpBzO6yj0iyXvvjuGMuqhWZs="
STRONG = "s" * 20 + "-production-secret-key-0123456789"


def _django(code: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = django_env(WEFT_DATA_DIR=str(data_dir), DEBUG="0", **env)
    for name in ("SECRET_KEY", "WEFT_ENCRYPTION_KEY", "WEFT_LOCAL_KEYS"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "named"), [
    ({}, "SECRET_KEY"),
    ({"SECRET_KEY": "weft-insecure-development-key-change-me", "WEFT_ENCRYPTION_KEY": FERNET}, "SECRET_KEY"),
    ({"SECRET_KEY": "django-insecure-" + "x" * 40, "WEFT_ENCRYPTION_KEY": FERNET}, "SECRET_KEY"),
    ({"SECRET_KEY": STRONG}, "WEFT_ENCRYPTION_KEY"),
    ({"SECRET_KEY": STRONG, "WEFT_ENCRYPTION_KEY": "not-a-key"}, "WEFT_ENCRYPTION_KEY"),
])
def test_debug_off_without_real_keys_refuses_to_start(tmp_path: Path, env: dict[str, str], named: str) -> None:
    result = _django("print('started')", tmp_path, **env)
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr.splitlines()[-1]


def test_the_embedded_default_generates_and_keeps_its_own_keys(tmp_path: Path) -> None:
    code = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.WEFT_ENCRYPTION_KEY)"
    first = _django(code, tmp_path, WEFT_LOCAL_KEYS="1")
    assert first.returncode == 0, first.stderr
    secret_key, encryption_key = first.stdout.split()
    assert len(secret_key) >= 50 and secret_key != "weft-insecure-development-key-change-me"
    Fernet(encryption_key.encode())
    for name in ("secret_key", "encryption_key"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    again = _django(code, tmp_path, WEFT_LOCAL_KEYS="1")
    assert again.stdout.split() == [secret_key, encryption_key]
    # another data directory, other keys: nothing is derived from public knowledge
    other = _django(code, tmp_path / "other", WEFT_LOCAL_KEYS="1")
    assert set(other.stdout.split()).isdisjoint({secret_key, encryption_key})


def test_check_deploy_with_production_variables_reports_nothing(tmp_path: Path) -> None:
    env = django_env(WEFT_DATA_DIR=str(tmp_path), DEBUG="0", SECRET_KEY=STRONG, WEFT_ENCRYPTION_KEY=FERNET,
                     ALLOWED_HOSTS="weft.example.com", WEFT_SECURE_COOKIES="1", WEFT_SSL_REDIRECT="1",
                     WEFT_HSTS_SECONDS="31536000", WEFT_HSTS_PRELOAD="1",
                     WEFT_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", EMAIL_HOST="smtp.example.com")
    env.pop("WEFT_LOCAL_KEYS", None)
    env.pop("EMAIL_BACKEND", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests set it in their process; no deployment does
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.fixture(scope="module")
def production_like(django_db_setup: Any) -> Any:
    with daphne(WEFT_SECURE_COOKIES="1", WEFT_HSTS_SECONDS="3600", WEFT_HSTS_PRELOAD="1",
                WEFT_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https") as (_, url):
        yield url


def test_admin_is_off_unless_enabled(production_like: str) -> None:
    assert requests.get(f"{production_like}/admin/", allow_redirects=False, timeout=10).status_code == 404
    assert requests.get(f"{production_like}/admin/login/", allow_redirects=False, timeout=10).status_code == 404
    with daphne(WEFT_ADMIN_ENABLED="1") as (_, url):
        response = requests.get(f"{url}/admin/", allow_redirects=False, timeout=10)
        assert response.status_code == 302 and "/admin/login/" in response.headers["Location"]


def test_hsts_secure_cookies_and_csp_behind_a_tls_proxy(production_like: str) -> None:
    over_tls = requests.get(f"{production_like}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert over_tls.status_code == 200
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"
    assert "frame-ancestors 'none'" in over_tls.headers["Content-Security-Policy"]
    cookie = next(c for c in over_tls.cookies if c.name == "csrftoken")
    assert cookie.secure
    # without the proxy's header the request is plain HTTP: no HSTS (browsers ignore it there anyway)
    plain = requests.get(f"{production_like}/login/", timeout=10)
    assert "Strict-Transport-Security" not in plain.headers
    assert "Content-Security-Policy" in requests.get(f"{production_like}/api/schema/", timeout=10).headers
