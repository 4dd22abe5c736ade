"""Browser tests: Playwright driving Debian's chromium against a live Daphne (HTTP + websockets).

The editor is driven as a person would, with the mouse and the keyboard only: nodes dragged from
the palette, connected by dragging from a port to a node, values typed with completion, the draft
test-run, published, watched live; at 1440 px and at 390 px. Users made by the test sign in with a
session cookie made by Django's test client (sessions are in the shared test database); sign-up
goes through the real form. Screenshots go to ``artifacts/screenshots/`` (kept by CI), and a
failing test leaves ``artifacts/screenshots/FAILED-<test>.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from accounts.models import ApiToken
from runs.models import Run
from tests.accounts.live import mail_links
from tests.conftest import page_client
from tests.support.processes import daphne
from tests.web.factories import delay_graph, published_workflow, three_node_graph

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
TIMEOUT = 15_000
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


class Hook(BaseHTTPRequestHandler):
    """The risk team's and ops' endpoints of the seed workflow: records each request, answers JSON."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        Hook.received.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status = 500 if self.path.startswith("/fail") else 200
        data = json.dumps({"ok": status == 200}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


SITE_MAIL = Path(tempfile.mkdtemp(prefix="weft-browser-mail-"))  # the site's mail, one file per message


@pytest.fixture(scope="module")
def site(django_db_setup: Any) -> Iterator[str]:
    """Daphne on the test database, allowed to call the loopback hook server; mail into SITE_MAIL."""
    with daphne(WEFT_HTTP_ALLOW_NETWORKS="127.0.0.0/8", EMAIL_FILE_PATH=str(SITE_MAIL),
                EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend") as (_, url):
        yield url


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


def new_page(browser: Any, site: str, request: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(base_url=site, viewport=viewport)
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    request.addfinalizer(lambda: finish(page, request))
    return page


def finish(page: Any, request: Any) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # the page may be gone with the failure
            page.screenshot(path=str(SHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    errors = page.js_errors
    page.context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(browser: Any, site: str, request: Any) -> Any:
    return new_page(browser, site, request, WIDE)


@pytest.fixture
def phone(browser: Any, site: str, request: Any) -> Any:
    return new_page(browser, site, request, PHONE)


def sign_in_as(page: Any, site: str, user: Any, team: Any) -> None:
    client = page_client(user, team)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site}])


def shot(page: Any, name: str, doc: bool = False, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=full_page)
    if doc and os.environ.get("WEFT_DOC_SCREENSHOTS"):
        # docs/ui.md's pictures: refreshed on request only (WEFT_DOC_SCREENSHOTS=1), never by CI.
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SHOTS / name), full_page=full_page, type="png")


# ---------- driving the editor ----------

def node(page: Any, flow_id: str) -> Any:
    return page.locator(f'[data-testid="node-{flow_id}"]')


def center(box: dict[str, float]) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag_in(page: Any, node_type: str, x: float, y: float) -> None:
    """Drag a node type from the palette onto the canvas at (x, y) of the canvas."""
    page.locator(f'#palette [data-type="{node_type}"]').drag_to(page.locator(".ed-canvas"), target_position={"x": x, "y": y})


def move_to(page: Any, flow_id: str, x: float, y: float) -> None:
    """Drag a node by its title to (x, y) of the canvas."""
    canvas = page.locator(".ed-canvas").bounding_box()
    hx, hy = center(stable_box(page, node(page, flow_id).locator(".wn-head")))
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=8)
    page.mouse.up()


def stable_box(page: Any, locator: Any) -> dict[str, float]:
    """The element's box once it has stopped moving (a re-render or a viewport animation)."""
    box = locator.bounding_box()
    for _ in range(50):
        page.wait_for_timeout(60)
        again = locator.bounding_box()
        if again == box:
            return box
        box = again
    return box


def connect(page: Any, source: str, target: str, port: str = "out") -> None:
    """Drag from a node's outcome port to another node's input."""
    src = node(page, source).locator(f'[data-port="{port}"]')
    dst = node(page, target).locator(".port-in")
    sx, sy = center(stable_box(page, src))
    tx, ty = center(stable_box(page, dst))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()


def select(page: Any, flow_id: str) -> None:
    """Click a node's head once its box has stopped moving, and wait for its inspector. Under load a
    click can land while the canvas still fits its viewport (the pointer then moves relative to the
    node between press and release: a tiny drag, not a click); the click is then made again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    head = node(page, flow_id).locator(".wn-head")
    for attempt in range(3):
        stable_box(page, head)
        head.click()
        try:
            page.wait_for_selector(f'.node-inspector[data-flow-id="{flow_id}"]', timeout=5000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def rename(page: Any, new_id: str) -> None:
    page.fill("#node-id", new_id)
    page.press("#node-id", "Enter")


def type_value(page: Any, field_selector: str, text: str) -> None:
    """Replace a CodeMirror value field's text (inserted as one input: no auto-closing)."""
    editor = page.locator(f"{field_selector} .cm-content").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def cm_text(page: Any, field_selector: str) -> str:
    return page.locator(f"{field_selector} .cm-content").first.inner_text().replace("\u200b", "").strip()


def add_map_entry(page: Any, map_path: str, key: str, value: str) -> None:
    box = page.locator(f'#inspector .map-field[data-path="{map_path}"]')
    box.locator(".add-row").click()
    box.locator(".map-key").last.fill(key)
    editor = box.locator(".map-row").last.locator(".cm-content")
    editor.click()
    page.keyboard.insert_text(value)


def wait_saved(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#save-state")).to_have_text("All changes saved")


def assert_fits(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll} px wide at {width} px"


# ---------- the tests ----------

def test_a_new_user_builds_tests_and_publishes_the_order_workflow(page: Any, site: str, hook_server: str) -> None:
    """WORKFLOW_FORMAT.md's example (seed 001's order workflow), from an empty app, mouse and keyboard only."""
    from playwright.sync_api import expect

    Hook.received.clear()
    page.goto("/signup/")
    page.fill("#id_email", "maker@example.com")
    page.fill("#id_password", "a-long-password")
    page.fill("#id_team_name", "Makers")
    page.click("#signup-form button")
    expect(page.locator("#signup-sent")).to_contain_text("maker@example.com")
    page.goto(mail_links(SITE_MAIL, "maker@example.com")[-1])  # the confirmation link, mailed
    page.click("#verify-form button")
    expect(page).to_have_url(re.compile(r"/apps/$"))

    # The risk team's credential, through its form (only the bearer kind's field is shown).
    page.goto("/settings/credentials/")
    page.fill("#credential-new #id_name", "risk-api")
    page.select_option("#credential-new #id_kind", "bearer")
    expect(page.locator("#credential-new #id_key")).to_be_hidden()
    page.fill("#credential-new #id_token", "risk-secret")
    page.click("#credential-new button.primary")
    expect(page.locator("#credentials")).to_contain_text("risk-api")

    page.goto("/apps/")
    page.fill("#app-form #id_name", "Orders")
    page.click("#app-form button")
    page.fill("#workflow-form #id_name", "Order notification")
    page.click("#workflow-form button")
    expect(page.locator(".react-flow__node")).to_have_count(2)
    # One Start only: the palette refuses a second; End has no outcome port.
    expect(page.locator('#palette [data-type="start"]')).to_be_disabled()
    expect(node(page, "end").locator(".react-flow__handle-right")).to_have_count(0)

    # Inputs (the inspector shows the workflow's settings while nothing is selected).
    for name, kind, required, default in (("order_id", "string", True, ""), ("amount", "number", False, "0"),
                                          ("user", "object", False, "")):
        page.click("#add-input")
        row = page.locator("#inputs-table .decl").last
        row.locator(".in-name").fill(name)
        row.locator(".in-type").select_option(kind)
        if required:
            row.locator(".in-req").check()
        if default:
            row.locator(".in-default").fill(default)

    # The start → end edge of a new workflow goes: select it by clicking, Delete.
    page.locator(".react-flow__edge").first.click(force=True)
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__edge")).to_have_count(0)

    # Zoom out a little (the controls), move Start and End apart by dragging, drop the other nodes.
    page.click(".react-flow__controls-zoomout")
    page.click(".react-flow__controls-zoomout")
    canvas = page.locator(".ed-canvas").bounding_box()
    assert canvas["width"] > 700
    move_to(page, "end", canvas["width"] - 100, 90)
    move_to(page, "start", 80, 260)
    drag_in(page, "condition", 300, 260)
    drag_in(page, "transform", 480, 110)
    drag_in(page, "http", 480, 420)
    drag_in(page, "http", 650, 280)
    expect(page.locator(".react-flow__node")).to_have_count(6)

    select(page, "condition")
    rename(page, "check")
    type_value(page, "#f_config_cases_0_id", "high_risk")
    # Completion: typing "inputs.am" offers amount; Enter takes it.
    editor = page.locator("#f_config_cases_0_when .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("inputs.am")
    expect(page.locator(".cm-tooltip-autocomplete")).to_contain_text("amount")
    page.wait_for_timeout(150)  # CodeMirror ignores an Enter within 75 ms of the list opening
    page.keyboard.press("Enter")
    page.keyboard.type(" > 1000")
    expect(page.locator("#f_config_cases_0_when .cm-content")).to_have_text("inputs.amount > 1000")

    select(page, "transform")
    rename(page, "mask")
    add_map_entry(page, "/config/mapping", "userId", "$.user.id")
    # `{{` closes itself and opens completion of what is in scope here.
    box = page.locator('#inspector .map-field[data-path="/config/mapping"]')
    box.locator(".add-row").click()
    box.locator(".map-key").last.fill("email")
    box.locator(".map-row").last.locator(".cm-content").click()
    page.keyboard.type("{{")
    expect(page.locator(".cm-tooltip-autocomplete")).to_contain_text("inputs.order_id")
    page.keyboard.type("mask(inputs.user.email)")
    page.keyboard.press("Escape")
    expect(box.locator(".map-row").last.locator(".cm-content")).to_have_text("{{ mask(inputs.user.email) }}")

    select(page, "http")
    rename(page, "notify")
    page.fill("#node-name", "Notify risk team")
    page.select_option("#f_config_method", "POST")
    type_value(page, "#f_config_url", f"{hook_server}/notify")
    page.locator('details[data-path="/config/auth"] > summary').click()
    page.select_option("#f_config_auth_type", "bearer")
    page.select_option("#f_config_auth_credential", "risk-api")
    body = page.locator('[data-path="/config/body"]')
    body.locator(".json-toggle input").check()
    type_value(page, '[data-path="/config/body"]', '{"order": "{{ inputs.order_id }}"}')
    page.locator("details.options > summary").click()
    page.fill("#f_timeout", "10")
    page.select_option("#f_on_error", "branch")
    page.locator('details[data-path="/retry"] > summary').click()
    page.fill("#f_retry_count", "3")
    page.fill("#f_retry_interval", "2")
    page.select_option("#f_retry_backoff", "exponential")

    select(page, "http1")
    rename(page, "alert")
    page.select_option("#f_config_method", "POST")
    type_value(page, "#f_config_url", f"{hook_server}/alert")

    select(page, "end")
    add_map_entry(page, "/config/outputs", "status", "{{ notify.status }}")

    page.click("#fit-btn")
    page.wait_for_timeout(400)
    connect(page, "start", "check")
    connect(page, "check", "mask", "high_risk")
    connect(page, "check", "end", "else")
    connect(page, "mask", "notify")
    connect(page, "notify", "end")
    connect(page, "notify", "alert", "error")
    expect(page.locator(".react-flow__edge")).to_have_count(6)
    page.click("#tidy-btn")
    wait_saved(page)
    expect(page.locator("#errors")).to_contain_text("No problems")
    shot(page, "editor-1440.png", doc=True)

    # Test-run the draft: the high-risk path runs, the else path is drawn skipped.
    page.fill("#test-input-order_id", "A1")
    page.fill("#test-input-amount", "5000")
    page.fill("#test-input-user", '{"id": 7, "email": "jane.doe@example.com"}')
    page.click("#run-btn")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator("#run-btn")).to_be_enabled()
    expect(node(page, "notify")).to_have_attribute("data-status", "succeeded")
    expect(node(page, "alert")).to_have_attribute("data-status", "skipped")
    expect(page.locator("#run-outputs")).to_contain_text('"status": 200')
    notify = [r for r in Hook.received if r["path"] == "/notify"]
    assert notify and notify[-1]["auth"] == "Bearer risk-secret" and json.loads(notify[-1]["body"]) == {"order": "A1"}
    run = Run.objects.get(pk=page.locator("#run-link").get_attribute("href").strip("/").split("/")[-1])
    assert run.draft is True and run.workflow.active_version_id is None
    select(page, "mask")
    expect(page.locator("#node-run-details")).to_contain_text("j***e@example.com")
    shot(page, "editor-test-run-1440.png", doc=True)

    # Run this node: only notify runs again, on the last run's inputs and mask's output.
    select(page, "notify")
    before = len(Hook.received)
    page.click("#run-node-btn")
    expect(page.locator("#run-info")).to_contain_text("node notify only")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    assert [r["path"] for r in Hook.received[before:]] == ["/notify"]
    single = Run.objects.get(pk=page.locator("#run-link").get_attribute("href").strip("/").split("/")[-1])
    assert single.draft is True and single.inputs["order_id"] == "A1"

    page.click("#publish-btn")
    expect(page.locator("#editor-notice")).to_contain_text("Published version 1")
    expect(page.locator("#active-version")).to_have_text("v1")

    # Watch it live: the run page of the test run, and the runs list.
    page.click("#run-link")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator("#run-draft")).to_be_visible()
    page.locator('#canvas g.node[data-node-id="notify"]').click()
    expect(page.locator('#node-runs tr.highlight[data-node-id="notify"] details')).to_have_attribute("open", "")
    assert_fits(page, WIDE["width"])


def test_editing_on_the_canvas_undo_copy_paste_rename_loop(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    graph = three_node_graph()
    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=graph)
    other = published_workflow(teams["acme"], teams["acme_users"]["owner"], name="Helper")
    sign_in_as(page, site, teams["acme_users"]["editor"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    expect(page.locator(".react-flow__node")).to_have_count(3)
    expect(page.locator(".react-flow__minimap")).to_be_visible()

    # Drag a node: its position is saved in the graph.
    box = stable_box(page, node(page, "shout"))
    page.mouse.move(box["x"] + 30, box["y"] + 12)
    page.mouse.down()
    page.mouse.move(box["x"] + 30, box["y"] + 150, steps=6)
    page.mouse.up()
    # The autosave follows the drag after its debounce: wait for the saved graph, not only the label.
    moved: dict[str, Any] = {}
    for _ in range(100):
        wait_saved(page)
        workflow.refresh_from_db()
        moved = next(n for n in workflow.graph["nodes"] if n["id"] == "shout").get("position") or {}
        if moved.get("y", 0) > 60:
            break
        page.wait_for_timeout(100)
    assert moved.get("y", 0) > 60, moved

    # Rename rewrites the expressions that name the node.
    select(page, "shout")
    rename(page, "greet")
    wait_saved(page)
    workflow.refresh_from_db()
    end = next(n for n in workflow.graph["nodes"] if n["id"] == "end")
    assert end["config"]["outputs"] == {"greeting": "{{ greet.greeting }}"}
    assert {"from": "start", "to": "greet"} in workflow.graph["edges"]

    # Undo and redo (Ctrl+Z / Ctrl+Shift+Z on the canvas).
    page.locator(".react-flow__pane").click(position={"x": 10, "y": 10})
    page.keyboard.press("Control+z")
    expect(node(page, "shout")).to_have_count(1)
    page.keyboard.press("Control+Shift+z")
    expect(node(page, "greet")).to_have_count(1)

    # Copy and paste: a new id, references among the copies follow.
    select(page, "greet")
    page.locator(".react-flow__pane").focus()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(node(page, "greet1")).to_have_count(1)

    # Multi-select with Shift+click, delete both.
    node(page, "greet1").locator(".wn-head").click()
    node(page, "greet").locator(".wn-head").click(modifiers=["Shift"])
    expect(page.locator(".react-flow__node.selected")).to_have_count(2)
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__node")).to_have_count(2)
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__node")).to_have_count(4)

    # A loop's body is edited on the canvas: drop a node into its frame.
    drag_in(page, "loop", 200, 420)
    expect(node(page, "loop")).to_have_count(1)
    frame = node(page, "loop").bounding_box()
    canvas = page.locator(".ed-canvas").bounding_box()
    drag_in(page, "transform", frame["x"] - canvas["x"] + 120, frame["y"] - canvas["y"] + 120)
    expect(node(page, "loop/transform")).to_have_count(1)
    wait_saved(page)
    workflow.refresh_from_db()
    loop = next(n for n in workflow.graph["nodes"] if n["id"] == "loop")
    assert [n["id"] for n in loop["config"]["body"]["nodes"]] == ["transform"]
    select(page, "loop/transform")
    editor = page.locator('#inspector .map-field[data-path="/config/mapping"]')
    editor.locator(".add-row").click()
    editor.locator(".map-row").last.locator(".cm-content").click()
    page.keyboard.type("{{")
    expect(page.locator(".cm-tooltip-autocomplete")).to_contain_text("item")

    # A sub-workflow is picked from the team's workflows.
    page.locator(".react-flow__pane").click(position={"x": 10, "y": 10})
    page.click('#palette [data-type="workflow"]')
    expect(page.locator("#f_config_workflow option", has_text="Helper")).to_have_count(1)
    page.select_option("#f_config_workflow", str(other.pk))
    wait_saved(page)
    workflow.refresh_from_db()
    sub = next(n for n in workflow.graph["nodes"] if n["type"] == "workflow")
    assert sub["config"]["workflow"] == str(other.pk)


def test_errors_in_words_on_the_node_and_the_field(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, site, teams["acme_users"]["editor"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    select(page, "shout")
    editor = page.locator('#inspector .map-row[data-path="/config/mapping/greeting"] .cm-content')
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("{{ nobody.here }}")
    wait_saved(page)
    expect(page.locator("#errors")).to_contain_text("“nobody” is not an input, an upstream node or a known name here")
    expect(page.locator("#errors")).not_to_contain_text("/nodes/")
    expect(node(page, "shout")).to_have_class(re.compile("has-errors"))
    expect(node(page, "shout").locator(".wn-errors")).to_contain_text("nobody")
    expect(page.locator('#inspector .map-row[data-path="/config/mapping/greeting"] .field-errors')).to_contain_text("nobody")
    page.click("#run-btn")
    expect(page.locator("#run-problems")).to_contain_text("nobody")
    page.click("#publish-btn")
    expect(page.locator("#editor-notice")).to_contain_text("Not published")
    shot(page, "editor-errors-1440.png")
    # The JSON view shows the graph; Apply replaces it (undo brings it back).
    page.click("#json-btn")
    expect(page.locator("#json-panel")).to_contain_text('"nobody.here"'.strip('"'))


def test_stop_and_the_run_page_grows_live(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"], graph=delay_graph(60), name="Slow")
    sign_in_as(page, site, teams["acme_users"]["editor"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    page.click("#run-btn")
    expect(node(page, "wait")).to_have_attribute("data-status", "running")
    # One run at a time: Run is disabled while this one runs, with a link to it.
    expect(page.locator("#run-btn")).to_be_disabled()
    href = page.locator("#run-link").get_attribute("href")
    live = page.context.new_page()
    live.goto(href)
    expect(live.locator("#timeline .tl-bar.st-running")).to_have_count(1)
    page.click("#stop-btn")
    expect(page.locator("#run-status")).to_have_text("stopped", timeout=8000)
    expect(node(page, "wait")).to_have_attribute("data-status", "stopped")
    expect(page.locator("#run-btn")).to_be_enabled()
    expect(live.locator("#run-status")).to_have_text("stopped", timeout=8000)
    run = Run.objects.get(workflow=workflow)
    assert run.status == "stopped" and run.draft is True
    live.close()


def test_a_viewer_reads_and_cannot_edit(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, site, teams["acme_users"]["viewer"], teams["acme"])
    page.goto(f"/workflows/{workflow.pk}/")
    expect(page.locator(".react-flow__node")).to_have_count(3)
    for selector in ("#publish-btn", "#run-btn", "#palette", "#undo-btn"):
        expect(page.locator(selector)).to_have_count(0)
    # The canvas takes the palette's column: it is the widest part of the page.
    canvas = page.locator(".ed-canvas").bounding_box()
    assert canvas["x"] < 40 and canvas["width"] > 800
    select(page, "shout")
    expect(page.locator("#node-id")).to_be_disabled()
    expect(page.locator("#remove-node")).to_have_count(0)
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json',
           'X-CSRFToken': document.querySelector('[name=csrfmiddlewaretoken]').value}, body: '{"graph": {}}'})).status""",
        f"/workflows/{workflow.pk}/draft",
    )
    assert status == 403


def test_every_page_holds_at_390_px_and_the_editor_is_read_and_run(phone: Any, site: str,
                                                                   teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(phone, site, teams["acme_users"]["owner"], teams["acme"])
    phone.goto(f"/workflows/{workflow.pk}/")
    expect(phone.locator("#narrow-note")).to_contain_text("larger screen")
    expect(phone.locator("#palette")).to_have_count(0)
    expect(phone.locator(".react-flow__node")).to_have_count(3)
    phone.fill("#test-input-name", "ada")
    phone.click("#run-btn")
    expect(phone.locator("#run-status")).to_have_text("succeeded")
    assert_fits(phone, PHONE["width"])
    phone.evaluate("window.scrollTo(0, 0)")
    shot(phone, "editor-390.png", doc=True)
    # The nav is behind a Menu button; the team switcher and sign-out are reachable.
    expect(phone.locator("#mainnav")).to_be_hidden()
    phone.click("#nav-toggle")
    expect(phone.locator("#mainnav")).to_be_visible()
    expect(phone.locator("#sign-out")).to_be_visible()
    run = Run.objects.filter(workflow=workflow).first()
    for url in ("/apps/", f"/apps/{workflow.app_id}/", "/runs/", f"/runs/{run.pk}/", "/settings/tokens/",
                "/settings/credentials/", "/settings/parameters/", "/settings/members/", "/dead-letters/",
                "/batches/", f"/workflows/{workflow.pk}/versions/", f"/workflows/{workflow.pk}/triggers/", "/nowhere/"):
        phone.goto(url)
        assert_fits(phone, PHONE["width"])


def test_create_a_token_and_see_it_once(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    sign_in_as(page, site, teams["acme_users"]["admin"], teams["acme"])
    page.goto("/settings/tokens/")
    page.fill("#token-form #id_name", "ci-bot")
    page.check('#token-form input[value="read"]')
    page.click("#token-form button")
    secret = page.locator("#token-secret").inner_text().strip()
    assert teams["acme"].tokens.get(name="ci-bot").prefix in secret and len(secret) > 30
    page.click("#copy-token")
    # Reloading the page neither shows the secret again nor creates another token.
    page.reload()
    expect(page.locator("#tokens")).to_contain_text("ci-bot")
    expect(page.locator("#token-secret")).to_have_count(0)
    assert secret not in page.content()
    assert ApiToken.objects.filter(team=teams["acme"], name="ci-bot").count() == 1


def test_another_teams_page_is_a_styled_404(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    theirs = published_workflow(teams["other"], teams["other_users"]["owner"])
    sign_in_as(page, site, teams["acme_users"]["owner"], teams["acme"])
    response = page.goto(f"/workflows/{theirs.pk}/")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.locator(".topbar .brand")).to_be_visible()


def test_runs_list_updates_live(page: Any, site: str, teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    workflow = published_workflow(teams["acme"], teams["acme_users"]["owner"])
    sign_in_as(page, site, teams["acme_users"]["viewer"], teams["acme"])
    page.goto("/runs/")
    expect(page.locator("#live-dot.on")).to_have_count(1)
    run = Run.objects.create(team=teams["acme"], app=workflow.app, workflow=workflow, version=workflow.active_version,
                             inputs={"name": "x"}, business_time=workflow.created_at, deadline=workflow.created_at)
    row = page.locator(f'#runs-rows tr[data-run-id="{run.pk}"]')
    expect(row).to_have_count(1)
    expect(row.locator(".run-status")).to_have_text("pending")
    Run.objects.filter(pk=run.pk).update(status="failed", started_at=run.created_at, finished_at=run.created_at)
    expect(row.locator(".run-status")).to_have_text("failed")


def test_a_loop_is_drawn_with_its_body_coloured_by_its_iterations(page: Any, site: str,
                                                                   teams: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    from runs.lifecycle import NATIVE, run_start

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
    run = finished = run_start(team=teams["acme"], workflow=workflow, inputs={}, mode="blocking", origin=NATIVE)
    assert finished is not None and finished.status == "succeeded" and finished.outputs == {"squares": [1, 4, 9]}
    sign_in_as(page, site, teams["acme_users"]["viewer"], teams["acme"])
    page.goto(f"/runs/{run.pk}/")
    loop = page.locator('#canvas g.node[data-node-id="each"]')
    expect(loop).to_have_attribute("data-status", "succeeded")
    for node_id in ("square", "label"):
        body_node = loop.locator(f'.loop-body g.node[data-node-id="{node_id}"]')
        expect(body_node).to_have_attribute("data-status", "succeeded")
        expect(body_node.locator(".node-sub")).to_contain_text("×3")
    # In the editor the body nodes sit inside the loop's frame on the canvas.
    page.goto(f"/workflows/{workflow.pk}/")
    expect(node(page, "each/square")).to_be_visible()
    page.wait_for_timeout(400)  # the first fit
    frame = node(page, "each").bounding_box()
    inner = node(page, "each/square").bounding_box()
    assert frame["x"] < inner["x"] and inner["x"] + inner["width"] <= frame["x"] + frame["width"] + 1
    assert frame["y"] < inner["y"] and inner["y"] + inner["height"] <= frame["y"] + frame["height"] + 1


def test_the_db_and_queue_nodes_are_configured_from_the_palette(page: Any, site: str, teams: dict[str, Any]) -> None:
    """The seed's data actions in the editor: each node's credential field lists only the team's
    credentials of the kind it can use, and what is chosen and typed is saved in the draft."""
    from playwright.sync_api import expect

    from accounts.services import credential_create

    team = teams["acme"]
    credential_create(team=team, name="orders-db", kind="database", secrets={"url": "sqlite:///orders.db"})
    credential_create(team=team, name="rabbit", kind="broker", secrets={"url": "amqp://guest:guest@127.0.0.1:5672/"})
    credential_create(team=team, name="crm-key", kind="bearer", secrets={"token": "not-shown"})
    credential_create(team=teams["other"], name="their-db", kind="database", secrets={"url": "sqlite:///x.db"})
    workflow = published_workflow(team, teams["acme_users"]["owner"], graph=three_node_graph())
    sign_in_as(page, site, teams["acme_users"]["editor"], team)
    page.goto(f"/workflows/{workflow.pk}/")
    expect(page.locator(".react-flow__node")).to_have_count(3)

    page.click('#palette [data-type="db"]')
    credential = page.locator("#f_config_credential")
    expect(credential.locator("option")).to_have_text(["(none)", "orders-db (database)"])
    credential.select_option("orders-db")
    type_value(page, "#f_config_query", "SELECT :id AS id")
    page.select_option("#f_config_mode", "one")
    wait_saved(page)

    page.locator(".react-flow__pane").click(position={"x": 10, "y": 10})
    page.click('#palette [data-type="queue"]')
    credential = page.locator("#f_config_credential")
    expect(credential.locator("option")).to_have_text(["(none)", "rabbit (broker)"])
    credential.select_option("rabbit")
    wait_saved(page)
    expect(page.locator("body")).not_to_contain_text("not-shown")
    shot(page, "editor-db-queue-1440.png")

    workflow.refresh_from_db()
    by_type = {n["type"]: n for n in workflow.graph["nodes"]}
    assert by_type["db"]["config"]["credential"] == "orders-db"
    assert by_type["db"]["config"]["query"] == "SELECT :id AS id"
    assert by_type["db"]["config"]["mode"] == "one"
    assert by_type["queue"]["config"]["credential"] == "rabbit"
