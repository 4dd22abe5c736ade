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


@pytest.mark.django_db
def test_result_csv_escapes_formula_cells(client_a: APIClient, team_a: Any) -> None:
    import csv
    import io

    workflow = published_make(team_a)
    items = [{"name": "=HYPERLINK(\"http://evil\")", "=cmd": "+1+1", "n": "-5"}, {"name": "@SUM(A1)", "n": "-x"}]
    response = client_a.post("/api/v1/offline/submit", {"jobId": "csv_1", "workflowId": str(workflow.pk),
                                                        "items": items}, format="json")
    assert response.status_code == 202, response.content
    csv_response = client_a.get("/api/v1/offline/jobs/csv_1/result.csv")
    rows = list(csv.reader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    header = rows[0]
    assert header[0] == "index" and {"name", "'=cmd", "n"} <= set(header)  # column order follows the database's JSON
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [records[0]["name"], records[0]["'=cmd"], records[0]["n"]] == ["'=HYPERLINK(\"http://evil\")", "'+1+1", "-5"]
    assert records[1]["name"] == "'@SUM(A1)" and records[1]["n"] == "'-x"
