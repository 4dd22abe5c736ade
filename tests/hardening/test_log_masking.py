"""Capability tokens never reach the logs of a live Daphne: its access log and Django's request
log show receipt tokens, hook keys, mailed-link tokens and websocket tickets as ``***``."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.conf import settings

from accounts.models import Team
from config.logmask import capability_mask
from runs.models import NodeCallback
from runs.services import run_create
from tests.conftest import published_make
from tests.support.processes import daphne
from workflows.engine.scheduler import receipt_token
from workflows.triggers import trigger_create

HOOK_404 = "unknownhookkey0123456789abcdefXYZ"
TICKET = "wsticketsecret987654321"
VERIFY = "verifysignedtoken-abc123:xyz"
INVITE = "invitationtokenQWERTY123456"
RESET = "abcd12-resettoken9876"


def test_capability_mask_keeps_the_rest_of_the_line() -> None:
    assert capability_mask('"POST /api/v1/callbacks/r1/n1/tok?x=1" 200') == '"POST /api/v1/callbacks/r1/n1/***?x=1" 200'
    assert capability_mask("Not Found: /hooks/abc") == "Not Found: /hooks/***"
    assert capability_mask("/ws/runs/?after=3&ticket=t1") == "/ws/runs/?after=3&ticket=***"
    assert capability_mask("/api/v1/invitations/0b3c6f0e-2f1d-4a53-9d7e-6f1d2c3b4a59") == \
        "/api/v1/invitations/0b3c6f0e-2f1d-4a53-9d7e-6f1d2c3b4a59"  # an API id is not a capability
    assert capability_mask("/verify/resend/") == "/verify/resend/"
    assert capability_mask("/api/v1/runs/abc") == "/api/v1/runs/abc"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_access_and_request_logs_of_a_live_daphne_mask_capability_tokens(team_a: Team, team_b: Any) -> None:
    workflow = published_make(team_a)
    hook = trigger_create(team=team_a, workflow=workflow, kind="webhook", name="h", signed=False)
    run = run_create(team=team_a, workflow=workflow, inputs={"name": "x"}, mode="async", trigger="api")
    token = receipt_token(settings.SECRET_KEY.encode(), str(run.pk), "end")
    secrets = [hook.key, token, HOOK_404, TICKET, VERIFY, INVITE, RESET]
    # WARNING: Django's request log ("Not Found: /hooks/...") is on; Daphne's access log is its stdout.
    with daphne(WEFT_LOG_LEVEL="WARNING") as (proc, url):
        assert requests.post(f"{url}/hooks/{hook.key}", json={"name": "a"}, timeout=30).status_code == 202
        assert requests.post(f"{url}/hooks/{HOOK_404}", json={"name": "a"}, timeout=30).status_code == 404
        assert requests.post(f"{url}/api/v1/callbacks/{run.pk}/end/{token}", json={"ok": 1}, timeout=30).status_code == 200
        assert requests.post(f"{url}/api/v1/callbacks/{run.pk}/end/{token}x", json={"ok": 1},
                             timeout=30).status_code == 404
        for path in (f"/ws/runs/?ticket={TICKET}", f"/verify/{VERIFY}/", f"/invitations/{INVITE}/",
                     f"/password/reset/MQ/{RESET}/"):
            assert requests.get(url + path, timeout=30, allow_redirects=False).status_code < 500
    log = proc.log_path.read_text(errors="replace")
    assert NodeCallback.objects.filter(run=run).count() == 1
    assert "POST /hooks/***" in log and "POST /api/v1/callbacks/" in log, log[-3000:]
    assert "Not Found: /hooks/***" in log, log[-3000:]
    leaked = [s for s in secrets if s in log]
    assert not leaked, (leaked, log[-3000:])
