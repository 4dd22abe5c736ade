"""Edge input: JSON nested ~1,000 deep, lone surrogates and NUL characters, overflowing time macros and a
cron that never fires are each a 400 naming the place, with nothing written (SQLite and PostgreSQL:
run this module with ``DATABASE_URL`` for the second). The Dify streaming request, which used to hang
on a lone surrogate after writing its run, is checked on a live Daphne."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import ALL_SCOPES, Team
from accounts.services import token_create
from runs.models import NodeCallback, Run
from runs.services import run_create
from tests.bad_input import assert_bad_input
from tests.conftest import published_make, unique
from tests.support.processes import daphne
from workflows.engine.scheduler import receipt_token
from workflows.models import Trigger
from workflows.triggers import trigger_create

DEEP = "[" * 1000 + "]" * 1000
SURROGATE = '"a\\ud800b"'
NUL = '"a\\u0000b"'
DEEP_PATH = "/"


def _raw(template: str, value: str, **names: str) -> str:
    return template.replace("@", value).format(**names)


@pytest.fixture
def env(team_a: Team, team_b: Team) -> dict[str, Any]:
    workflow = published_make(team_a)
    _, app_secret = token_create(team=team_a, name=unique("app"), scopes=["run", "read"], app=workflow.app)
    app_client = APIClient()
    app_client.credentials(HTTP_AUTHORIZATION=f"Bearer {app_secret}")
    hook = trigger_create(team=team_a, workflow=workflow, kind="webhook", name="hook", signed=False)
    run = run_create(team=team_a, workflow=workflow, inputs={"name": "x"}, mode="async", trigger="api")
    token = receipt_token(settings.SECRET_KEY.encode(), str(run.pk), "end")
    return {"workflow": str(workflow.pk), "app": str(workflow.app_id), "app_client": app_client,
            "hook": hook.key, "callback": f"/api/v1/callbacks/{run.pk}/end/{token}"}


# (method, url, raw JSON body with @ where the bad value goes, the path it must be named at, client)
BODIES: list[tuple[str, str, str, str, str]] = [
    ("POST", "/api/v1/workflows/run", '{{"workflowId": "{workflow}", "params": {{"name": @}}}}', "/params/name", "team"),
    ("POST", "/v1/workflows/run", '{{"inputs": {{"name": @}}, "response_mode": "blocking", "user": "u"}}',
     "/inputs/name", "app"),
    ("POST", "/v1/workflows/run", '{{"inputs": {{"name": @}}, "response_mode": "streaming", "user": "u"}}',
     "/inputs/name", "app"),
    ("POST", "/run", '{{"name": @}}', "/name", "app"),
    ("POST", "/async_run", '{{"name": @}}', "/name", "app"),
    ("POST", "/api/v1/workflows/{workflow}/trigger", '{{"payload": {{"name": @}}}}', "/payload/name", "team"),
    ("POST", "/api/v1/apps", '{{"name": @}}', "/name", "team"),
    ("PATCH", "/api/v1/workflows/{workflow}", '{{"name": @}}', "/name", "team"),
    ("PATCH", "/api/v1/workflows/{workflow}",
     '{{"graph": {{"nodes": [{{"id": "start", "type": "start", "name": @}}], "edges": []}}}}',
     "/graph/nodes/0/name", "team"),
    ("POST", "/api/v1/credentials", '{{"name": "c", "kind": "bearer", "secrets": {{"token": @}}}}',
     "/secrets/token", "team"),
    ("PUT", "/api/v1/parameters", '{{"region": @}}', "/region", "team"),
    ("POST", "/hooks/{hook}", '{{"name": @}}', "/name", "anon"),
    ("POST", "{callback}", '{{"result": @}}', "/result", "anon"),
]


COZE_PATHS = ("/run", "/stream_run", "/run/stream", "/async_run")


def _coze_errors(client: APIClient, method: str, url: str, body: str) -> list[dict[str, str]]:
    before = Run.objects.count()
    response = client.generic(method, url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert Run.objects.count() == before
    return response.json()["detail"]["errors"]


def _client(env: dict[str, Any], client_a: APIClient, which: str) -> APIClient:
    return {"team": client_a, "app": env["app_client"], "anon": APIClient()}[which]


@pytest.mark.django_db
@pytest.mark.parametrize("value,message", [(SURROGATE, "lone surrogate"), (NUL, "NUL character")],
                         ids=["surrogate", "nul"])
@pytest.mark.parametrize("method,url,template,path,who", BODIES, ids=[f"{b[0]} {b[1]} {b[3]}" for b in BODIES])
def test_unstorable_strings_are_refused_naming_the_field(client_a: APIClient, env: dict[str, Any], method: str,
                                                         url: str, template: str, path: str, who: str, value: str,
                                                         message: str) -> None:
    client = _client(env, client_a, who)
    names = {k: v for k, v in env.items() if isinstance(v, str)}
    body = _raw(template, value, **names)
    url = url.format(**names)
    if url.startswith("/v1/"):  # Dify's error body, not problem+json
        response = client.generic(method, url, body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["params"] == path.strip("/").replace("/", "."), response.json()
        assert message in response.json()["message"]
        assert not Run.objects.exclude(trigger="api").exists() and Run.objects.count() == 1
        return
    if url in COZE_PATHS:  # the Coze runtime's {"detail": {...}} body
        errors = _coze_errors(client, method, url, body)
        assert {e["path"] for e in errors} == {path} and any(message in e["message"] for e in errors), errors
        return
    problem = assert_bad_input(client, method, url, None, {path}, raw=body)
    assert any(message in e["message"] for e in problem["errors"])


@pytest.mark.django_db
@pytest.mark.parametrize("method,url,template,path,who", BODIES, ids=[f"{b[0]} {b[1]}" for b in BODIES])
def test_json_nested_a_thousand_deep_is_a_400(client_a: APIClient, env: dict[str, Any], method: str, url: str,
                                              template: str, path: str, who: str) -> None:
    client = _client(env, client_a, who)
    names = {k: v for k, v in env.items() if isinstance(v, str)}
    url = url.format(**names)
    for value, where in [(DEEP, DEEP_PATH), ("[" * 70 + "]" * 70, path)]:
        body = _raw(template, value, **names)
        if url.startswith("/v1/"):
            response = client.generic(method, url, body, content_type="application/json")
            assert response.status_code == 400, response.content
            assert "WEFT_MAX_JSON_DEPTH" in response.json()["message"]
            assert Run.objects.count() == 1
            continue
        if url in COZE_PATHS:
            errors = _coze_errors(client, method, url, body)
            assert any(e["path"].startswith(where) and "WEFT_MAX_JSON_DEPTH" in e["message"] for e in errors), errors
            continue
        problem = assert_bad_input(client, method, url, None, set(), raw=body)
        assert any(e["path"].startswith(where) and "WEFT_MAX_JSON_DEPTH" in e["message"] for e in problem["errors"]), \
            problem["errors"]


@pytest.mark.django_db
def test_a_key_with_a_lone_surrogate_and_a_nested_value_are_named(client_a: APIClient, env: dict[str, Any]) -> None:
    body = ('{"workflowId": "WF", "params": {"name": "x", "bad\\ud800key": 1, "list": ["ok", "a\\u0000"]}}'
            .replace("WF", env["workflow"]))
    problem = assert_bad_input(client_a, "POST", "/api/v1/workflows/run", None, {"/params/list/1"}, raw=body)
    assert any(e["path"].startswith("/params/bad") and "key" in e["message"] for e in problem["errors"])
    assert not NodeCallback.objects.exists()


@pytest.mark.django_db
def test_legitimate_unicode_and_nesting_within_the_budget_pass(client_a: APIClient, env: dict[str, Any]) -> None:
    deep_ok = "[" * 40 + '"ok"' + "]" * 40
    body = ('{"workflowId": "WF", "params": {"name": "\\ud83d\\ude00 caf\\u00e9", "n": DEEP}}'
            .replace("WF", env["workflow"]).replace("DEEP", deep_ok))
    response = client_a.generic("POST", "/api/v1/workflows/run", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["outputs"] == {"greeting": "\U0001f600 caf\u00e9"}


# Time macros and cron -----------------------------------------------------------------------------

OVERFLOWING_MACROS = ["$[yyyyMMdd+99999999]", "$[add_months(yyyyMMdd,-999999999)]", "{{{today + 99999999 years}}}",
                      "$[yyyyMMdd+99999999999999*9999999999999]"]


@pytest.mark.django_db
@pytest.mark.parametrize("macro", OVERFLOWING_MACROS)
def test_overflowing_time_macros_are_refused_at_save_and_publish(client_a: APIClient, env: dict[str, Any],
                                                                 macro: str) -> None:
    problem = assert_bad_input(client_a, "PUT", "/api/v1/parameters", {"report_day": macro}, {"/report_day"})
    assert "out of range" in problem["errors"][0]["message"]

    graph = {"inputs": {}, "outputs": {"day": {"type": "string"}}, "params": {"day": macro},
             "nodes": [{"id": "start", "type": "start"},
                       {"id": "end", "type": "end", "config": {"outputs": {"day": "${day}"}}}],
             "edges": [{"from": "start", "to": "end"}]}
    assert client_a.patch(f"/api/v1/workflows/{env['workflow']}", {"graph": graph}, format="json").status_code == 200
    problem = assert_bad_input(client_a, "POST", f"/api/v1/workflows/{env['workflow']}/publish", {}, set())
    assert any("out of range" in e["message"] for e in problem["errors"]), problem


@pytest.mark.parametrize("macro", OVERFLOWING_MACROS)
def test_an_overflowing_macro_met_at_run_time_is_a_macro_error(macro: str) -> None:
    """A version published before the check: the engine's MacroError (a node failure), not OverflowError."""
    from datetime import datetime

    from workflows.engine.macros import MacroError, expand_macros, macro_errors

    with pytest.raises(MacroError, match="out of range"):
        expand_macros(f"day {macro}", datetime(2026, 12, 1, 10, 0))
    assert macro_errors(macro) and expand_macros("$[yyyyMMdd+1]", datetime(2026, 12, 31)) == "20270101"


@pytest.mark.django_db
@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_refused_naming_the_field(client_a: APIClient, env: dict[str, Any],
                                                             cron: str) -> None:
    url = f"/api/v1/workflows/{env['workflow']}/triggers"
    problem = assert_bad_input(client_a, "POST", url, {"kind": "schedule", "cron": cron}, {"/cron"})
    assert "never fires" in problem["detail"]
    assert client_a.post(url, {"kind": "schedule", "cron": "0 0 29 2 *"}, format="json").status_code == 201
    assert Trigger.objects.filter(kind="schedule").count() == 1


# On a live Daphne -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_url(django_db_setup: Any) -> Iterator[str]:
    with daphne(WEFT_LOG_LEVEL="ERROR") as (_, url):
        yield url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_live_dify_streaming_with_a_lone_surrogate_answers_400_and_writes_no_run(live_url: str, team_a: Team,
                                                                                team_b: Team) -> None:
    workflow = published_make(team_a)
    _, app_secret = token_create(team=team_a, name=unique("app"), scopes=["run"], app=workflow.app)
    _, team_secret = token_create(team=team_a, name=unique("team"), scopes=list(ALL_SCOPES))
    headers = {"Authorization": f"Bearer {app_secret}", "Content-Type": "application/json"}
    body = '{"inputs": {"name": "a\\ud800"}, "response_mode": "streaming", "user": "u"}'
    response = requests.post(f"{live_url}/v1/workflows/run", data=body, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["params"] == "inputs.name"
    deep = json.dumps({"workflowId": str(workflow.pk), "params": {"name": "x"}})[:-2] + ', "n": ' + DEEP + "}}"
    response = requests.post(f"{live_url}/api/v1/workflows/run", data=deep, timeout=30,
                             headers={"Authorization": f"Bearer {team_secret}", "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["path"] == "/"
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method,url,where", [
    ("POST", "/hooks/abc%00def", "/path"), ("GET", "/api/v1/offline/jobs/a%00b", "/path"),
    ("GET", "/api/v1/runs?trigger=a%00b", "/query"), ("POST", "/api/v1/callbacks/x/y/z%00", "/path"),
    ("GET", "/settings/tokens/?q=%00", "/query"),
])
def test_a_nul_in_the_url_is_a_400_on_every_database(client_a: APIClient, env: dict[str, Any], method: str,
                                                     url: str, where: str) -> None:
    problem = assert_bad_input(client_a, method, url, None, {where}, raw="{}")
    assert "NUL" in problem["detail"]


@pytest.mark.django_db
def test_a_nul_in_a_header_is_a_400(client_a: APIClient, env: dict[str, Any]) -> None:
    before = Run.objects.count()
    response = client_a.post("/api/v1/workflows/run", {"workflowId": env["workflow"], "params": {"name": "x"}},
                             format="json", HTTP_IDEMPOTENCY_KEY="k\x00y")
    assert response.status_code == 400 and response.json()["errors"] == [
        {"path": "/Idempotency-Key", "message": "contains a NUL character"}]
    assert Run.objects.count() == before


# What a node brings in: a service's response is input too ------------------------------------------

@pytest.mark.django_db(transaction=True)  # the run's executor writes on its own connection
@pytest.mark.parametrize("body", ['{"v": "x\\u0000y"}', '{"v": "ok", "w": ["\\ud800"]}', '{"bad\\u0000key": 1}'])
def test_a_response_holding_a_nul_or_a_lone_surrogate_fails_the_node_clearly(client_a: APIClient, team_a: Team,
                                                                            team_b: Team, body: str) -> None:
    from django.test import override_settings

    from runs.models import NodeRun
    from tests.engine.http_servers import Reply, scripted_server

    with scripted_server() as server, override_settings(WEFT_HTTP_ALLOW_NETWORKS=["127.0.0.1/32"]):
        server.route("/a", Reply(200, body, {"Content-Type": "application/json"}))
        graph = {"inputs": {}, "outputs": {}, "params": {},
                 "nodes": [{"id": "start", "type": "start"},
                           {"id": "call", "type": "http", "config": {"url": server.url("/a")}, "retry": {"count": 0}},
                           {"id": "end", "type": "end", "config": {"outputs": {}}}],
                 "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}]}
        workflow = published_make(team_a, graph=graph)
        response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk)}, format="json")
    assert response.status_code == 200, response.content  # not a 500 (SQLite) nor internal_error (PostgreSQL)
    run = response.json()
    assert run["status"] == "failed" and run["error"]["code"] == "invalid_output", run["error"]
    assert "/output/body/" in run["error"]["message"]
    call = NodeRun.objects.get(run_id=run["id"], node_id="call")
    assert call.status == "failed" and call.outputs is None


def test_a_response_nested_beyond_the_parser_fails_the_node_clearly() -> None:
    from tests.engine.helpers import chain, run
    from tests.engine.http_servers import FakeServices, Reply, scripted_server

    with scripted_server() as server:
        server.route("/a", Reply(200, "[" * 5000 + "]" * 5000, {"Content-Type": "application/json"}))
        graph = chain({"id": "call", "type": "http", "config": {"url": server.url("/a")}, "retry": {"count": 0}})
        outcome, host = run(graph, services=FakeServices())
    assert outcome.status == "failed"
    assert host.records["call"].error["code"] == "invalid_response", host.records["call"].error


@pytest.mark.django_db
@pytest.mark.parametrize("value,message", [(SURROGATE, "lone surrogate"), (NUL, "NUL character"),
                                           (DEEP, "WEFT_MAX_JSON_DEPTH")], ids=["surrogate", "nul", "deep"])
def test_the_editor_save_refuses_unstorable_drafts(env: dict[str, Any], owner_a: Any, value: str,
                                                   message: str) -> None:
    from tests.conftest import db_snapshot, page_client
    from workflows.models import Workflow

    client = page_client(owner_a, Workflow.objects.get(pk=env["workflow"]).team)
    body = '{"graph": {"nodes": [{"id": "start", "type": "start", "name": @}], "edges": []}}'.replace("@", value)
    before = db_snapshot()
    response = client.post(f"/workflows/{env['workflow']}/draft", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert any(message in e["message"] for e in response.json()["errors"]), response.json()
    assert db_snapshot() == before
