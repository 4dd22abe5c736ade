"""Inline secrets: refused at publish, validate and draft runs (naming the field, nothing written);
``manage.py secrets_to_credentials`` moves existing ones out of drafts and versions into credentials,
after which the version still sends the same secret over real HTTP; the engine redacts encoded
spellings of a secret (URL-encoded, base64) that a server echoes back."""

from __future__ import annotations

import base64
import copy
import io
import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.crypto import secret_decrypt
from accounts.models import Credential, Team
from accounts.services import credential_create
from runs.models import NodeRun, RunEvent
from tests.bad_input import assert_bad_input
from tests.conftest import page_client, published_make, workflow_make
from tests.engine.helpers import chain, compile_test, run
from tests.engine.http_servers import FakeServices, Recorded, Reply, scripted_server
from workflows.models import WorkflowVersion

pytestmark = pytest.mark.django_db

TOKEN = "tok-inline-4242-secret"
KEY = "key/with+odd=chars and space"
PASSWORD = "hunter2-basic-pw"


def inline_graph(url: str) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {"status": {"type": "integer"}}, "params": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "http", "config": {"url": url, "auth": {"type": "bearer", "token": TOKEN}}},
            {"id": "each", "type": "loop", "config": {"items": "{{ [1] }}", "body": {
                "nodes": [{"id": "inner", "type": "http", "config": {
                    "url": url, "auth": {"type": "api_key", "in": "query", "name": "k", "key": KEY}}}],
                "edges": []}}},
            {"id": "basic", "type": "http", "config": {"url": url, "auth": {"username": "ann", "password": PASSWORD}}},
            {"id": "end", "type": "end", "config": {"outputs": {"status": "{{ call.status }}"}}},
        ],
        "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "each"}, {"from": "each", "to": "basic"},
                  {"from": "basic", "to": "end"}],
    }


INLINE_PATHS = {"/nodes/1/config/auth/token", "/nodes/2/config/body/nodes/0/config/auth/key",
                "/nodes/3/config/auth/password"}


def test_publish_validate_and_draft_runs_refuse_inline_secrets(client_a: APIClient, team_a: Team) -> None:
    workflow = workflow_make(team_a, graph=inline_graph("https://api.example.com/x"))
    problem = assert_bad_input(client_a, "POST", f"/api/v1/workflows/{workflow.pk}/publish", {}, INLINE_PATHS)
    assert all("credential" in e["message"] for e in problem["errors"] if e["path"] in INLINE_PATHS)
    assert not WorkflowVersion.objects.exists()
    errors = client_a.post(f"/api/v1/workflows/{workflow.pk}/validate", {}, format="json").json()
    assert {e["path"] for e in errors.get("errors", [])} >= INLINE_PATHS, errors
    assert_bad_input(client_a, "POST", "/api/v1/workflows/run",
                     {"workflowId": str(workflow.pk), "draft": True}, INLINE_PATHS)
    # The same graph naming credentials publishes.
    for name, kind, secrets in [("c1", "bearer", {"token": "t"}), ("c2", "api_key", {"key": "k"}),
                                ("c3", "basic", {"username": "u", "password": "p"})]:
        credential_create(team=team_a, name=name, kind=kind, secrets=secrets)
    graph = inline_graph("https://api.example.com/x")
    graph["nodes"][1]["config"]["auth"] = {"credential": "c1"}
    graph["nodes"][2]["config"]["body"]["nodes"][0]["config"]["auth"] = {"in": "query", "name": "k", "credential": "c2"}
    graph["nodes"][3]["config"]["auth"] = {"credential": "c3"}
    assert client_a.patch(f"/api/v1/workflows/{workflow.pk}", {"graph": graph}, format="json").status_code == 200
    assert client_a.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json").status_code in (200, 201)


def _all_graph_text() -> str:
    from workflows.models import Workflow

    return json.dumps([w.graph for w in Workflow.objects.all()] + [v.graph for v in WorkflowVersion.objects.all()])


@pytest.mark.django_db(transaction=True)  # the run's executor reads the credential on its own connection
def test_the_command_moves_inline_secrets_and_the_version_still_authenticates(client_a: APIClient, team_a: Team,
                                                                             team_b: Team) -> None:
    with scripted_server() as server, override_settings(WEFT_HTTP_ALLOW_NETWORKS=["127.0.0.1/32"]):
        server.route("*", Reply(200, {"ok": True}))
        graph = inline_graph(server.url("/x"))
        workflow = published_make(team_a, graph=graph)  # a version published before inline secrets were refused
        templated = copy.deepcopy(graph)
        templated["nodes"][1]["config"]["auth"]["token"] = "{{ inputs.t }}"
        other = workflow_make(team_a, graph=templated)
        credential_create(team=team_a, name="existing-bearer", kind="bearer", secrets={"token": TOKEN})
        b_workflow = workflow_make(team_b, graph=inline_graph(server.url("/x")))
        assert TOKEN in _all_graph_text()

        dry = io.StringIO()
        with pytest.raises(CommandError):  # the templated one is left: exit status 1
            call_command("secrets_to_credentials", "--team", "team-a", "--dry-run", stdout=dry)
        assert "would move" in dry.getvalue() and Credential.objects.filter(team=team_a).count() == 1
        assert TOKEN in json.dumps(workflow.graph)

        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("secrets_to_credentials", "--team", "team-a", stdout=out)
        report = out.getvalue()
        assert "draft /nodes/1/config/auth: LEFT (the secret is an expression" in report, report

        workflow.refresh_from_db()
        version = WorkflowVersion.objects.get(workflow=workflow)
        for g in (workflow.graph, version.graph):
            assert g["nodes"][1]["config"]["auth"] == {"type": "bearer", "credential": "existing-bearer"}  # reused
            inner = g["nodes"][2]["config"]["body"]["nodes"][0]["config"]["auth"]
            assert inner["in"] == "query" and inner["name"] == "k" and "key" not in inner
            assert "password" not in g["nodes"][3]["config"]["auth"] and "username" not in g["nodes"][3]["config"]["auth"]
        inner_cred = Credential.objects.get(team=team_a, name=inner["credential"])
        assert (inner_cred.kind, secret_decrypt(inner_cred.secret_encrypted)) == ("api_key", {"key": KEY})
        basic = Credential.objects.get(team=team_a, name=workflow.graph["nodes"][3]["config"]["auth"]["credential"])
        assert secret_decrypt(basic.secret_encrypted) == {"username": "ann", "password": PASSWORD}
        assert Credential.objects.filter(team=team_a).count() == 3  # equal secrets share one credential
        other.refresh_from_db()
        assert other.graph["nodes"][1]["config"]["auth"]["token"] == "{{ inputs.t }}"  # left, reported
        b_workflow.refresh_from_db()
        assert TOKEN in json.dumps(b_workflow.graph) and not Credential.objects.filter(team=team_b).exists()
        for text in (TOKEN, KEY, PASSWORD):
            assert text not in json.dumps([workflow.graph, version.graph, other.graph])

        # The moved version runs as before: the same secrets reach the server, none is recorded.
        response = client_a.post("/api/v1/workflows/run", {"workflowId": str(workflow.pk)}, format="json")
        assert response.status_code == 200 and response.json()["status"] == "succeeded", response.json()["error"]
        sent = server.requests
        assert sent[0].header("Authorization") == f"Bearer {TOKEN}"
        assert sent[1].query["k"] == [KEY]
        assert sent[2].header("Authorization") == "Basic " + base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
        recorded = json.dumps([list(NodeRun.objects.values("inputs", "outputs", "error", "process_data")),
                               list(RunEvent.objects.values_list("data", flat=True))], default=str)
        assert TOKEN not in recorded and KEY not in recorded and quote_plus(KEY) not in recorded

        # Run again: nothing more to move for team A's moved workflow; the publish now succeeds.
        assert client_a.post(f"/api/v1/workflows/{workflow.pk}/publish", {}, format="json").status_code in (200, 201)


def test_encoded_spellings_of_a_secret_echoed_back_are_redacted() -> None:
    secret = KEY  # characters that URL-encoding and base64 change

    def echo(request: Recorded) -> Reply:
        raw = secret.encode()
        return Reply(200, {"query": request.query, "raw_query": quote(secret, safe=""), "plus": quote_plus(secret),
                           "lower": quote(secret, safe="").lower(), "b64": base64.b64encode(raw).decode(),
                           "b64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
                           "json_text": json.dumps({"k": secret}), "plain": f"key was {secret}"})

    with scripted_server() as server:
        server.route("/echo", echo)
        graph = chain({"id": "call", "type": "http", "config": {
            "url": server.url("/echo"), "auth": {"credential": "api"}}},
            end_config={"outputs": {"body": "{{ call.body }}"}})
        services = FakeServices(credentials={"api": {"kind": "api_key", "key": secret}})
        outcome, host = run(compile_test(graph, credential_names={"api"}), services=services)
    assert outcome.status == "succeeded", host.records["call"].error
    assert server.requests[0].header("X-API-Key") == secret
    recorded = json.dumps([outcome.outputs] + [[r.output, r.process_data] for r in host.records.values()]
                          + [e.data for e in host.events], default=str)
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret, safe="").lower(),
             base64.b64encode(secret.encode()).decode(), base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")}
    assert not [f for f in forms if f in recorded], recorded
    assert outcome.outputs["body"]["plain"] == "key was ***"


def test_readers_never_see_an_inline_secret_a_draft_or_old_version_still_holds(team_a: Team, team_b: Team,
                                                                               viewer_a: Any) -> None:

    from tests.conftest import client_with_token

    workflow = published_make(team_a, graph=inline_graph("https://api.example.com/x"))  # legacy version
    reader, editor = client_with_token(team_a, ["read"]), client_with_token(team_a, ["read", "manage"])
    for url in (f"/api/v1/workflows/{workflow.pk}", f"/api/v1/workflows/{workflow.pk}/versions/1"):
        shown = reader.get(url)
        assert shown.status_code == 200
        text = json.dumps(shown.json())
        assert TOKEN not in text and KEY not in text and PASSWORD not in text
        assert shown.json()["graph"]["nodes"][1]["config"]["auth"] == {"type": "bearer", "token": "***"}
        assert TOKEN in json.dumps(editor.get(url).json())  # who can edit it sees what they must move
    page = page_client(viewer_a, team_a)
    for url in (f"/workflows/{workflow.pk}/", f"/workflows/{workflow.pk}/versions/?a=&b=1"):
        body = page.get(url).content.decode()
        assert TOKEN not in body and PASSWORD not in body and "***" in body, url
