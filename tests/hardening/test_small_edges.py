"""Small edges: fec0::/10 refused by the address policy; a non-ASCII receipt token on the callback
URL is a 404 (it was a 500), nothing written."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from rest_framework.test import APIClient

from runs.models import NodeCallback
from tests.conftest import published_make
from workflows.engine.outbound import AddressPolicy


def test_site_local_ipv6_is_refused() -> None:
    policy = AddressPolicy([])
    assert not policy.allowed(ipaddress.ip_address("fec0::1"))
    assert not policy.allowed(ipaddress.ip_address("feff:ffff::1"))
    assert policy.allowed(ipaddress.ip_address("2606:4700:4700::1111"))


@pytest.mark.django_db
def test_a_non_ascii_receipt_token_is_a_404(team_a: Any) -> None:
    from runs.services import run_create

    workflow = published_make(team_a)
    run = run_create(team=team_a, workflow=workflow, inputs={"name": "x"}, mode="async", trigger="api")
    response = APIClient().post(f"/api/v1/callbacks/{run.pk}/end/t\u00f6ken\u2603", {"ok": True}, format="json")
    assert response.status_code == 404
    assert not NodeCallback.objects.exists()
