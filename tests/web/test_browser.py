"""Browser tests: Playwright driving Debian's chromium against a live Daphne (HTTP + websockets).

Users made by the test sign in with a session cookie made by Django's test client (sessions are
in the shared test database); sign-up goes through the real form. Screenshots of the editor and
of a run detail are saved to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from accounts.permissions import SESSION_TEAM_KEY
from runs.models import Run
from tests.web.factories import delay_graph, published_workflow

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TIMEOUT = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make browser)")
    # Playwright's sync API runs an event loop on this thread; the ORM calls made by the tests
    # themselves are still plain synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, daphne_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=daphne_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def sign_in_as(page: Any, daphne_server: Any, user: Any, team: Any) -> None:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_TEAM_KEY] = str(team.pk)
    session.save()
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": daphne_server.url}])


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_sign_up_build_publish_and_run_live(page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("/signup/")
    page.fill("#id_email", "maker@example.com")
    page.fill("#id_password", "a-long-password")
    page.fill("#id_team_name", "Makers")
    page.click("#signup-form button")
    expect(page).to_have_url(re.compile(r"/apps/$"))
    expect(page.locator(".topbar")).to_contain_text("Makers")

    page.fill("#app-form #id_name", "Shop")
    page.click("#app-form button")
    page.fill("#workflow-form #id_name", "Greeter")
    page.click("#workflow-form button")
    expect(page.locator("#canvas g.node")).to_have_count(2)

    # Declare an input on the workflow (the inspector shows workflow settings when nothing is selected).
    page.click("#add-input")
    page.fill("#inputs-table tbody tr:last-child .in-name", "name")
    page.check("#inputs-table tbody tr:last-child .in-req")

    # start -> transform -> end: adding with "start" selected inserts the new node after it.
    page.click('#canvas g.node[data-node-id="start"]')
    page.click('#palette [data-type="transform"]')
    expect(page.locator("#canvas g.node")).to_have_count(3)
    expect(page.locator("#node-id")).to_have_value("transform1")
    mapping = page.locator('#inspector [data-path="/config/mapping"]')
    mapping.get_by_role("button", name="+ entry").click()
    mapping.locator(".kv-row .k").last.fill("greeting")
    mapping.locator(".kv-row .v").last.fill("{{ 'hello ' + inputs.name }}")

    page.click('#canvas g.node[data-node-id="end"]')
    outputs = page.locator('#inspector [data-path="/config/outputs"]')
    outputs.get_by_role("button", name="+ entry").click()
    outputs.locator(".kv-row .k").last.fill("greeting")
    outputs.locator(".kv-row .v").last.fill("{{ transform1.greeting }}")

    page.click("#publish-btn")
    expect(page.locator("#editor-status")).to_have_text("Published version 1")
    expect(page.locator("#errors")).to_contain_text("No problems")

    page.fill('#test-inputs [data-path="/inputs/name"]', "world")
    page.click("#run-btn")
    expect(page.locator('#canvas g.node[data-status="succeeded"]')).to_have_count(3)
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator("#run-info")).to_contain_text("hello world")
    page.click('#canvas g.node[data-node-id="transform1"]')
    expect(page.locator("#inspector .run-node")).to_contain_text("hello world")
    shot(page, "editor.png")

    page.click("#run-link")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator('#canvas g.node[data-status="succeeded"]')).to_have_count(3)
    expect(page.locator("#timeline .tl-bar")).to_have_count(3)
    expect(page.locator("#event-log")).to_contain_text("run_finished")
    shot(page, "run_detail.png")

    page.click(".crumbs a >> text=Greeter")
    page.click("text=Versions")
    expect(page.locator("#versions")).to_contain_text("v1")
    expect(page.locator("#diff .d-add").first).to_be_visible()
    shot(page, "versions.png")


def test_stop_a_running_workflow(page: Any, daphne_server: Any, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=delay_graph(60), name="Slow")
    sign_in_as(page, daphne_server, teams["acme_users"]["editor"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    page.click("#run-btn")
    expect(page.locator('#canvas g.node[data-node-id="wait"]')).to_have_attribute("data-status", "running")
    page.click("#stop-btn")
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=5000)
    expect(page.locator('#canvas g.node[data-node-id="wait"]')).to_have_attribute("data-status", "stopped")
    run = Run.objects.get(workflow=workflow)
    assert run.status == "stopped"
    page.goto(f"/runs/{run.pk}/")
    expect(page.locator("#run-status")).to_have_text("stopped")


def test_create_a_token_and_see_it_once(page: Any, daphne_server: Any, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    sign_in_as(page, daphne_server, teams["acme_users"]["admin"], teams["acme"])
    page.goto("/settings/tokens/")
    page.fill("#token-form #id_name", "ci-bot")
    page.check('#token-form input[value="read"]')
    page.click("#token-form button")
    secret = page.locator("#token-secret").inner_text().strip()
    assert teams["acme"].tokens.get(name="ci-bot").prefix in secret and len(secret) > 30
    page.click("#copy-token")
    expect(page.locator("#tokens")).to_contain_text("ci-bot")
    page.goto("/settings/tokens/")
    expect(page.locator("#tokens")).to_contain_text("ci-bot")
    assert secret not in page.content()
    expect(page.locator("#token-secret")).to_have_count(0)


def test_a_viewer_cannot_edit(page: Any, daphne_server: Any, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, daphne_server, teams["acme_users"]["viewer"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    expect(page.locator("#canvas g.node")).to_have_count(3)
    for selector in ("#save-btn", "#publish-btn", "#run-btn", "#palette", "#canvas .handle"):
        expect(page.locator(selector)).to_have_count(0)
    page.click('#canvas g.node[data-node-id="shout"]')
    expect(page.locator("#node-id")).to_be_disabled()
    expect(page.locator("#remove-node")).to_have_count(0)
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json',
           'X-CSRFToken': document.querySelector('[name=csrfmiddlewaretoken]').value}, body: '{"graph": {}}'})).status""",
        f"/workflows/{workflow.pk}/draft",
    )
    assert status == 403
    page.goto("/apps/")
    expect(page.locator("#app-form")).to_have_count(0)


def test_validation_errors_on_the_node_and_field_and_json_view(page: Any, daphne_server: Any,
                                                                teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, daphne_server, teams["acme_users"]["editor"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    page.click('#canvas g.node[data-node-id="shout"]')
    page.click('#palette [data-type="http"]')
    # Clear the URL: the error comes back as /nodes/3/config/url.
    page.fill('#inspector [data-path="/config/url"]', "")
    page.click("#save-btn")
    expect(page.locator("#errors")).to_contain_text("/nodes/3/config/url")
    expect(page.locator('#canvas g.node[data-node-id="http1"]')).to_have_class(re.compile("has-error"))
    expect(page.locator('#inspector [data-field="/config/url"] .field-error')).to_be_visible()
    shot(page, "editor_errors.png")
    page.click("#publish-btn")
    expect(page.locator("#editor-status")).to_have_text(re.compile("Fix the problems"))
    # The JSON view edits the whole graph; applying it redraws the canvas.
    page.click("#json-btn")
    graph = json.loads(page.locator("#json-view").input_value())
    assert graph["nodes"][3] == {"id": "http1", "type": "http", "config": {"method": "GET"}}
    graph["nodes"][3]["config"]["url"] = "https://example.com/x"
    page.fill("#json-view", json.dumps(graph))
    page.click("#json-apply")
    page.click("#save-btn")
    expect(page.locator("#errors")).to_contain_text("No problems")
    expect(page.locator('#canvas g.node.has-error')).to_have_count(0)
    # Connect with the handles: shout's output handle, then the end node.
    page.click('#canvas g.node[data-node-id="shout"] .handle')
    page.click('#canvas g.node[data-node-id="end"]')
    page.click('#canvas g.node[data-node-id="shout"]')
    expect(page.locator("#inspector .edge-list")).to_contain_text("end")


def test_runs_list_updates_live(page: Any, daphne_server: Any, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, daphne_server, teams["acme_users"]["viewer"], teams["acme"])
    page.goto("/runs/")
    expect(page.locator("#live-dot.on")).to_have_count(1)
    run = Run.objects.create(team=teams["acme"], app=workflow.app, workflow=workflow, version=workflow.active_version,
                             inputs={"name": "x"}, business_time=workflow.created_at, deadline=workflow.created_at)
    row = page.locator(f'#runs-rows tr[data-run-id="{run.pk}"]')
    expect(row).to_have_count(1)
    expect(row.locator(".run-status")).to_have_text("pending")
    Run.objects.filter(pk=run.pk).update(status="failed", started_at=run.created_at, finished_at=run.created_at)
    expect(row.locator(".run-status")).to_have_text("failed")
    shot(page, "runs_list.png")


def test_a_loop_is_drawn_with_its_body_coloured_by_its_iterations(page: Any, daphne_server: Any,
                                                                   teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    from runs.executor import run_execute
    from runs.services import run_create

    graph = {
        "inputs": {"xs": {"type": "array", "default": [1, 2, 3]}}, "outputs": {"squares": {"type": "array"}},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "each", "type": "loop", "name": "For each x", "config": {
                "items": "{{ inputs.xs }}", "parallelism": 2,
                "body": {"nodes": [{"id": "square", "type": "transform", "config": {"mapping": {"v": "{{ item * item }}"}}},
                                   {"id": "label", "type": "transform", "config": {"mapping": {"v": "{{ square.v }}"}}}],
                         "edges": [{"from": "square", "to": "label"}]},
                "output": "{{ label.v }}"}},
            {"id": "end", "type": "end", "config": {"outputs": {"squares": "{{ each }}"}}},
        ],
        "edges": [{"from": "start", "to": "each"}, {"from": "each", "to": "end"}],
    }
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=graph, name="Squares")
    run = run_create(team=teams["acme"], workflow=workflow, inputs={}, claim=True)
    finished = run_execute(run.pk, claimed=run)
    assert finished is not None and finished.status == "succeeded" and finished.outputs == {"squares": [1, 4, 9]}
    sign_in_as(page, daphne_server, teams["acme_users"]["viewer"], teams["acme"])
    page.goto(f"/runs/{run.pk}/")
    loop = page.locator('#canvas g.node[data-node-id="each"]')
    expect(loop).to_have_attribute("data-status", "succeeded")
    for node_id in ("square", "label"):
        body_node = loop.locator(f'.loop-body g.node[data-node-id="{node_id}"]')
        expect(body_node).to_have_attribute("data-status", "succeeded")
        expect(body_node.locator(".node-sub")).to_contain_text("×3")
    # The body sits inside the loop node's box.
    outer, inner = loop.locator(".node-box").first.bounding_box(), loop.locator(".loop-body").bounding_box()
    assert outer and inner and inner["x"] > outer["x"] and inner["y"] > outer["y"]
    assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
    shot(page, "run_detail_loop.png")
