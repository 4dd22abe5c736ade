"""The editor's server side: the node-type catalog embedded in the page, draft test runs (validated
as at publish, marked draft, kept out of versions and Dify logs), "run this node", the runs list's
pages and total, credentials per kind, styled error pages, a second team's URLs."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from accounts.models import CREDENTIAL_FIELDS, Credential
from accounts.services import credential_create
from runs.models import NodeRun, Run
from tests.web.factories import published_workflow, three_node_graph
from workflows.engine.node_test import literal, single_node_graph
from workflows.engine.nodes.registry import NODE_TYPES
from workflows.models import WorkflowVersion

pytestmark = pytest.mark.django_db


def post_json(client: Any, url: str, body: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def wait_final(run_id: str, seconds: float = 10) -> Run:
    run = Run.objects.get(pk=run_id)
    deadline = time.monotonic() + seconds
    while not run.is_final and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    return run


def test_the_page_embeds_every_registered_node_type_with_its_schema(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    credential_create(team=teams["acme"], name="risk-api", kind="bearer", secrets={"token": "t"})
    credential_create(team=teams["other"], name="not-ours", kind="bearer", secrets={"token": "t"})
    data = client_for("editor").get(f"/workflows/{workflow.pk}/").context["editor_data"]
    # Whatever the registry holds reaches the palette (db and queue included once they exist).
    assert set(data["nodeTypes"]) == set(NODE_TYPES)
    for name, nt in NODE_TYPES.items():
        assert data["nodeTypes"][name]["schema"] == nt.config_schema
    assert data["credentials"] == [{"name": "risk-api", "kind": "bearer"}]
    assert [w["id"] for w in data["workflows"]] == [str(workflow.pk)]
    assert data["canEdit"] is True and data["lastRun"] is None


def test_a_draft_test_run_runs_the_saved_draft_not_the_active_version(teams: dict[str, Any], client_for: Any,
                                                                       transactional_db: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    graph = three_node_graph()
    graph["nodes"][1]["config"]["mapping"]["greeting"] = "{{ 'hi ' + inputs.name }}"
    assert post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": graph}).json()["ok"] is True
    response = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "ada"}, "draft": True})
    assert response.status_code == 201 and response.json()["draft"] is True
    run = wait_final(response.json()["runId"])
    assert run.status == "succeeded" and run.outputs == {"greeting": "hi ada"} and run.draft is True
    assert run.version.draft is True and run.version.number == 0
    # The snapshot is no version: not listed, not active, the next publish is still v2.
    assert [v.number for v in WorkflowVersion.objects.filter(workflow=workflow, draft=False)] == [1]
    assert [v.number for v in client.get(f"/workflows/{workflow.pk}/versions/").context["versions"]] == [1]
    # An unchanged draft reuses its snapshot.
    again = wait_final(post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "bo"}, "draft": True}).json()["runId"])
    assert again.version_id == run.version_id
    # The published version still answers as before; the editor now knows the last test run.
    published = wait_final(post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "cy"}}).json()["runId"])
    assert published.outputs == {"greeting": "hello cy"} and published.draft is False
    last = client.get(f"/workflows/{workflow.pk}/").context["editor_data"]["lastRun"]
    assert last["id"] == str(again.pk) and last["outputs"]["shout"] == {"greeting": "hi bo"}
    listing = client.get("/runs/").content.decode()
    assert listing.count("draft-badge") == 2


def test_an_invalid_draft_is_not_test_run(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    graph = three_node_graph()
    graph["nodes"][1]["config"]["mapping"]["greeting"] = "{{ nobody.here }}"
    post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": graph})
    response = post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "ada"}, "draft": True})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "/nodes/1/config/mapping/greeting", "message": "unknown name 'nobody'"}]
    assert not Run.objects.filter(workflow=workflow).exists()
    assert not WorkflowVersion.objects.filter(workflow=workflow, draft=True).exists()


def test_run_this_node_uses_the_last_runs_inputs_and_upstream_outputs(teams: dict[str, Any], client_for: Any,
                                                                     transactional_db: Any) -> None:
    graph = three_node_graph()
    graph["nodes"].insert(2, {"id": "loud", "type": "transform",
                              "config": {"mapping": {"text": "{{ upper(shout.greeting) }}", "who": "{{ inputs.name }}"}}})
    graph["edges"] = [{"from": "start", "to": "shout"}, {"from": "shout", "to": "loud"}, {"from": "loud", "to": "end"}]
    graph["nodes"][3]["config"]["outputs"] = {"greeting": "{{ loud.text }}"}
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=graph)
    client = client_for("editor")
    # A value that looks like a template, a JSONPath and a parameter must come back as it was.
    name = "ada {{ x }} $.y ${p} }}"
    first = wait_final(post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": name}, "draft": True}).json()["runId"])
    assert first.status == "succeeded"
    # Change the upstream node: "run this node" must not run it again, only reuse its last output.
    changed = json.loads(json.dumps(graph))
    changed["nodes"][1]["config"]["mapping"]["greeting"] = "{{ 'bye ' + inputs.name }}"
    post_json(client, f"/workflows/{workflow.pk}/draft", {"graph": changed})
    response = post_json(client, f"/workflows/{workflow.pk}/run-node", {"node": "loud", "runId": str(first.pk)})
    assert response.status_code == 201, response.content
    single = wait_final(response.json()["runId"])
    assert single.status == "succeeded", single.error
    assert single.draft is True and single.inputs == {"name": name}
    assert single.outputs == {"output": {"text": "HELLO ADA {{ X }} $.Y ${P} }}", "who": name}}
    ran = {r.node_id: r.node_type for r in NodeRun.objects.filter(run=single)}
    assert ran["shout"] == "transform" and ran["loud"] == "transform"
    # Refused: another workflow's run, a node that does not exist; nothing started.
    other = published_workflow(teams["acme"], teams["acme_users"]["owner"], name="Other")
    before = Run.objects.count()
    assert post_json(client, f"/workflows/{other.pk}/run-node", {"node": "loud", "runId": str(first.pk)}).status_code == 400
    bad = post_json(client, f"/workflows/{workflow.pk}/run-node", {"node": "ghost", "runId": str(first.pk)})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "/node"
    assert Run.objects.count() == before


def test_the_single_node_graph_keeps_joins_and_ports() -> None:
    graph = {"nodes": [{"id": "start", "type": "start"}, {"id": "a", "type": "transform", "config": {"mapping": {}}},
                       {"id": "b", "type": "transform", "config": {"mapping": {}}},
                       {"id": "pick", "type": "condition", "config": {"cases": [{"id": "big", "when": "true"}]}},
                       {"id": "end", "type": "end"}],
             "edges": [{"from": "start", "to": "a"}, {"from": "start", "to": "b"}, {"from": "a", "to": "pick"},
                       {"from": "b", "to": "pick"}, {"from": "pick", "to": "end", "port": "big"}]}
    single = single_node_graph(graph, "pick", {"a": {"x": "$.y"}, "b": {"n": 1}})
    assert [n["id"] for n in single["nodes"]] == ["start", "a", "b", "pick", "end"]
    assert single["nodes"][1]["config"] == {"mapping": {"x": '{{ "$.y" }}'}}
    assert {(e["from"], e["to"], e.get("port")) for e in single["edges"]} == {
        ("start", "a", None), ("a", "b", None), ("a", "pick", None), ("b", "pick", None),
        ("pick", "end", "big"), ("pick", "end", "else")}
    assert literal("}} {{") == '{{ "\\u007d\\u007d \\u007b\\u007b" }}'


def test_dify_logs_leave_out_draft_runs(teams: dict[str, Any], client_for: Any, transactional_db: Any) -> None:
    from accounts.services import token_create

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    draft = wait_final(post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "a"}, "draft": True}).json()["runId"])
    real = wait_final(post_json(client, f"/workflows/{workflow.pk}/run", {"inputs": {"name": "b"}}).json()["runId"])
    _, secret = token_create(team=teams["acme"], name="dify", scopes=["read", "run"], app=workflow.app)
    logs = client.get("/v1/workflows/logs", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    ids = [entry["workflow_run"]["id"] for entry in logs["data"]]
    assert str(real.pk) in ids and str(draft.pk) not in ids and logs["total"] == 1


def test_runs_list_has_a_total_and_a_way_back(teams: dict[str, Any], client_for: Any) -> None:
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    client = client_for("editor")
    from runs.services import run_create

    for i in range(120):
        run_create(team=teams["acme"], workflow=workflow, inputs={"name": str(i)}, mode="async")
    first = client.get("/runs/")
    body = first.content.decode()
    assert "120 runs · page 1 of 3" in body and 'id="runs-newer"' not in body
    older = first.context["older_url"]
    second = client.get("/runs/" + older)
    assert "page 2 of 3" in second.content.decode()
    third = client.get("/runs/" + second.context["older_url"])
    assert "page 3 of 3" in third.content.decode() and third.context["older_url"] is None
    back = client.get("/runs/" + third.context["newer_url"])
    assert "page 2 of 3" in back.content.decode()
    assert [r.pk for r in back.context["runs"]] == [r.pk for r in second.context["runs"]]
    top = client.get("/runs/" + back.context["newer_url"])
    assert [r.pk for r in top.context["runs"]] == [r.pk for r in first.context["runs"]]


def test_credentials_form_fields_follow_the_kinds_and_keep_typed_values(teams: dict[str, Any], client_for: Any) -> None:
    client = client_for("editor")
    page = client.get("/settings/credentials/").content.decode()
    new_form = page.split('id="credential-new"', 1)[1]
    for kind, fields in CREDENTIAL_FIELDS.items():
        for field in fields:
            tag = re.search(rf'<input[^>]*name="{field}"[^>]*>', new_form).group(0)
            assert kind in re.search(r'data-kinds="([^"]*)"', tag).group(1).split(), (kind, field)
    credential_create(team=teams["acme"], name="taken", kind="bearer", secrets={"token": "old"})
    response = client.post("/settings/credentials/", {"name": "taken", "kind": "bearer", "token": "typed-token"})
    assert response.status_code == 400
    assert 'value="typed-token"' in response.content.decode()
    # Only the selected kind's fields are stored.
    client.post("/settings/credentials/", {"name": "fresh", "kind": "bearer", "token": "t", "key": "stray"})
    from accounts.selectors import credential_fields

    assert credential_fields(Credential.objects.get(team=teams["acme"], name="fresh")) == ["token"]


def test_error_pages_are_styled_and_another_teams_url_is_a_404(teams: dict[str, Any], client_for: Any) -> None:
    theirs = published_workflow(teams["other"], teams["other_users"]["owner"])
    client = client_for("editor")
    for url in (f"/workflows/{theirs.pk}/", f"/apps/{theirs.app_id}/", "/workflows/not-an-id/", "/nowhere/"):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 404 and "weft.css" in body and "Not found" in body, url
    forbidden = client_for("viewer").post("/settings/parameters/", {"name": ["x"], "value": ["1"]})
    assert forbidden.status_code == 403 and "weft.css" in forbidden.content.decode()
