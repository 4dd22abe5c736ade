"""Websockets against a live Daphne with a real client (the ``websockets`` package).

Events are appended to the log from the test process (another process than the server, as a
worker would): the consumer must replay from ``after``, then deliver the rest exactly once, in
order, and close after ``run_finished``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from django.db import transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from accounts.services import token_create
from runs.models import Run, RunMode
from runs.services import run_create, run_events_append
from tests.web.factories import published_workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def make_run(team: Any, owner: Any) -> Run:
    workflow = published_workflow(team, owner)
    return run_create(team=team, workflow=workflow, inputs={"name": "x"}, mode=RunMode.ASYNC)


def append(run: Run, *types: str) -> None:
    with transaction.atomic():
        run_events_append(run=run, events=[(t, {"n": t}) for t in types])


def ticket_for(server: Any, team: Any, scopes: list[str] | None = None, app: Any = None) -> str:
    _, secret = token_create(team=team, name="ws", scopes=scopes or ["read"], app=app)
    # From the live server: tickets live in its cache (local memory unless Redis is configured).
    response = requests.post(f"{server.url}/api/v1/ws-tickets", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


def receive(ws: Any, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=timeout)) for _ in range(count)]


def test_replay_after_seq_then_live_then_close(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started", "node_started", "node_finished")
    ticket = ticket_for(daphne_server, teams["acme"])
    with connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?after=1&ticket={ticket}") as ws:
        replayed = receive(ws, 2)
        assert [e["seq"] for e in replayed] == [2, 3]
        assert [e["type"] for e in replayed] == ["node_started", "node_finished"]
        append(run, "node_started", "node_finished")
        Run.objects.filter(pk=run.pk).update(status="succeeded")
        append(run, "run_finished")
        live = receive(ws, 3)
        assert [e["seq"] for e in live] == [4, 5, 6]
        assert live[-1]["type"] == "run_finished"
        assert set(live[0]) == {"seq", "type", "data", "createdAt"}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_no_gap_and_no_duplicate_across_a_reconnect(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started", "node_started")
    with connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?after=0&ticket={ticket_for(daphne_server, teams['acme'])}") as ws:
        first = receive(ws, 2)
    last = first[-1]["seq"]
    # Written while nobody listens.
    append(run, "node_finished", "node_started")
    with connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?after={last}&ticket={ticket_for(daphne_server, teams['acme'])}") as ws:
        second = receive(ws, 2)
        append(run, "node_finished")
        Run.objects.filter(pk=run.pk).update(status="succeeded")
        append(run, "run_finished")
        second += receive(ws, 2)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    seqs = [e["seq"] for e in first + second]
    assert seqs == [1, 2, 3, 4, 5, 6]


def test_finished_run_replays_and_closes(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started")
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    append(run, "run_finished")
    with connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?ticket={ticket_for(daphne_server, teams['acme'])}") as ws:
        assert [e["type"] for e in receive(ws, 2)] == ["run_started", "run_finished"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_another_teams_run_is_refused(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started")
    ticket = ticket_for(daphne_server, teams["other"])
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?ticket={ticket}")
    assert refused.value.response.status_code == 403
    # A malformed id is refused the same way.
    with pytest.raises(InvalidStatus):
        connect(f"{daphne_server.ws_url}/ws/runs/not-a-uuid/?ticket={ticket_for(daphne_server, teams['other'])}")


def test_an_app_bound_ticket_opens_only_its_apps_runs(daphne_server: Any, teams: dict[str, Any]) -> None:
    owner = teams["acme_users"]["owner"]
    mine = make_run(teams["acme"], owner)
    other = run_create(team=teams["acme"], workflow=published_workflow(teams["acme"], owner, name="Other"),
                       inputs={"name": "x"}, mode=RunMode.ASYNC)
    append(mine, "run_started")
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{daphne_server.ws_url}/ws/runs/{other.pk}/?ticket={ticket_for(daphne_server, teams['acme'], app=mine.app)}")
    assert refused.value.response.status_code == 403
    with connect(f"{daphne_server.ws_url}/ws/runs/{mine.pk}/?ticket={ticket_for(daphne_server, teams['acme'], app=mine.app)}") as ws:
        assert [e["seq"] for e in receive(ws, 1)] == [1]


def test_foreign_origin_is_refused_even_with_a_session(daphne_server: Any, teams: dict[str, Any],
                                                       client_for: Any) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started")
    cookie = f"sessionid={client_for('viewer').cookies['sessionid'].value}"
    url = f"{daphne_server.ws_url}/ws/runs/{run.pk}/?after=0"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example", additional_headers={"Cookie": cookie})
    assert refused.value.response.status_code == 403
    # The same session from the site's own origin is let in (a viewer may watch).
    with connect(url, origin=daphne_server.url, additional_headers={"Cookie": cookie}) as ws:
        assert receive(ws, 1)[0]["type"] == "run_started"
    # Without an Origin (not a browser) the session is not enough: a ticket is needed.
    with pytest.raises(InvalidStatus):
        connect(url, additional_headers={"Cookie": cookie})


def test_origin_is_compared_with_scheme_host_and_port(daphne_server: Any, teams: dict[str, Any],
                                                    client_for: Any) -> None:
    """Another port of the same host is another site (a local app on :8001 must not ride the session)."""
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started")
    cookie = f"sessionid={client_for('viewer').cookies['sessionid'].value}"
    url = f"{daphne_server.ws_url}/ws/runs/{run.pk}/?after=0"
    port = daphne_server.port
    for origin in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", f"https://127.0.0.1:{port}",
                   f"http://localhost:{port}", f"http://127.0.0.1:{port}.evil.example", "null"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=origin, additional_headers={"Cookie": cookie})
        assert refused.value.response.status_code in (400, 403), origin  # 400: autobahn refuses a malformed one
    with connect(url, origin=f"http://127.0.0.1:{port}", additional_headers={"Cookie": cookie}) as ws:
        assert receive(ws, 1)[0]["type"] == "run_started"


def test_session_of_another_team_is_refused(daphne_server: Any, teams: dict[str, Any], client_for: Any) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    cookie = f"sessionid={client_for('owner', team='other').cookies['sessionid'].value}"
    with pytest.raises(InvalidStatus):
        connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/", origin=daphne_server.url,
                additional_headers={"Cookie": cookie})


def test_ticket_is_single_use_and_needs_a_credential(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    append(run, "run_started")
    ticket = ticket_for(daphne_server, teams["acme"])
    with connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?ticket={ticket}") as ws:
        receive(ws, 1)
    with pytest.raises(InvalidStatus):
        connect(f"{daphne_server.ws_url}/ws/runs/{run.pk}/?ticket={ticket}")
    assert requests.post(f"{daphne_server.url}/api/v1/ws-tickets", timeout=10).status_code == 401
    assert Client().post("/api/v1/ws-tickets").status_code == 401


def test_team_socket_pushes_status_changes(daphne_server: Any, teams: dict[str, Any]) -> None:
    run = make_run(teams["acme"], teams["acme_users"]["owner"])
    other_run = make_run(teams["other"], teams["other_users"]["owner"])
    with connect(f"{daphne_server.ws_url}/ws/runs/?ticket={ticket_for(daphne_server, teams['acme'])}") as ws:
        Run.objects.filter(pk__in=[run.pk, other_run.pk]).update(status="running")
        Run.objects.filter(pk=run.pk).update(status="running", started_at=run.created_at)
        seen = set()
        while ("running" not in {s for r, s in seen if r == str(run.pk)}):
            message = json.loads(ws.recv(timeout=10))
            assert message["type"] == "run.status"
            assert message["runId"] != str(other_run.pk)
            seen.add((message["runId"], message["status"]))


def test_origin_rules_behind_a_proxy_and_for_trusted_origins(settings: Any) -> None:
    from runs.routing import origin_allowed

    settings.ALLOWED_HOSTS = ["weft.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example:8443"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = {"scheme": "ws", "headers": [(b"host", b"weft.example")]}
    proxied = {"scheme": "ws", "headers": [(b"host", b"weft.example"), (b"x-forwarded-proto", b"https")]}
    assert origin_allowed(plain, "http://weft.example") and origin_allowed(plain, "http://weft.example:80")
    assert not origin_allowed(plain, "https://weft.example")
    assert origin_allowed(proxied, "https://weft.example") and not origin_allowed(proxied, "http://weft.example")
    assert origin_allowed(plain, "https://app.example:8443") and not origin_allowed(plain, "https://app.example")
    assert not origin_allowed({"scheme": "ws", "headers": [(b"host", b"other.example")]}, "http://other.example")
