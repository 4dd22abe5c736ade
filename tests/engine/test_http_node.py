"""The http node driven directly against real servers on 127.0.0.1: requests, auth, failures,
callback polling (with the seed's task service), webhook waits, compensation and secrets."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
import requests

from tests.engine.http_servers import (
    FakeServices,
    Recorded,
    Reply,
    callback_receiver,
    make_context,
    scripted_server,
    seed_task_service,
)
from workflows.engine.nodes.base import NodeError, Park, RunStopped
from workflows.engine.nodes.http import HttpNode

NODE = HttpNode()
SECRET = "s3cr3t-key-9f8e7d"


@pytest.fixture
def server():
    with scripted_server() as srv:
        yield srv


@pytest.fixture
def services() -> FakeServices:
    return FakeServices(
        credentials={
            "api": {"kind": "api_key", "key": SECRET},
            "tok": {"kind": "bearer", "token": SECRET},
            "basic": {"kind": "basic", "username": "alice", "password": SECRET},
        }
    )


def run(config: dict[str, Any], services: FakeServices, **kwargs: Any):
    ctx = make_context(config, services, **kwargs)
    return ctx, NODE.run(ctx)


def fail(config: dict[str, Any], services: FakeServices, **kwargs: Any):
    ctx = make_context(config, services, **kwargs)
    with pytest.raises(NodeError) as info:
        NODE.run(ctx)
    return ctx, info.value


# -- requests -------------------------------------------------------------------------------------


def test_get_fills_placeholders_encoded_and_puts_other_args_in_query(server, services):
    server.route("*", Reply(200, {"ok": True}))
    config = {
        "method": "GET",
        "url": server.url("/users/{user_id}/profile"),
        "args": {"user_id": "a b/c?d", "lang": "fr"},
        "query": {"day": "20240101"},
        "headers": {"X-Trace": "t1"},
    }
    ctx, result = run(config, services)
    request = server.requests[0]
    assert request.method == "GET"
    assert request.path == "/users/a%20b%2Fc%3Fd/profile"
    assert request.query == {"day": ["20240101"], "lang": ["fr"]}
    assert request.header("X-Trace") == "t1"
    assert result.output == {"status": 200, "headers": result.output["headers"], "body": {"ok": True}}
    assert result.output["headers"]["Content-Type"] == "application/json"


def test_post_args_become_json_body_and_context_headers_are_sent(server, services):
    server.route("/orders", Reply(201, "created", {"Content-Type": "text/plain"}))
    config = {"method": "POST", "url": server.url("/orders"), "args": {"customer_id": 7, "items": [1, 2]}}
    ctx, result = run(config, services, run_id="run-42", node_id="order")
    request = server.requests[0]
    assert request.json() == {"customer_id": 7, "items": [1, 2]}
    assert request.header("Weft-Run-ID") == "run-42"
    assert request.header("Weft-Node-ID") == "order"
    assert request.header("Weft-Receipt-Token") == ctx.receipt_token
    assert request.header("Idempotency-Key") == ctx.receipt_token
    assert request.header("Weft-Webhook-URL") is None
    assert result.output["status"] == 201
    assert result.output["body"] == "created"  # text kept as text


def test_explicit_body_wins_over_args_for_put_and_patch(server, services):
    server.route("*", Reply(200, {}))
    for method in ("PUT", "PATCH"):
        run({"method": method, "url": server.url("/x/{id}"), "args": {"id": 5}, "body": {"b": 1}}, services)
    assert [(r.method, r.path, r.json()) for r in server.requests] == [("PUT", "/x/5", {"b": 1}), ("PATCH", "/x/5", {"b": 1})]


def test_delete_args_go_to_query(server, services):
    server.route("*", Reply(204, b""))
    _, result = run({"method": "DELETE", "url": server.url("/items"), "args": {"id": "7"}}, services)
    assert server.requests[0].method == "DELETE"
    assert server.requests[0].query == {"id": ["7"]}
    assert result.output["status"] == 204


# -- auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "check"),
    [
        ({"credential": "api"}, lambda r: r.header("X-API-Key") == SECRET),
        ({"type": "api_key", "name": "X-Custom", "credential": "api"}, lambda r: r.header("X-Custom") == SECRET),
        ({"type": "api_key", "in": "query", "name": "token", "credential": "api"}, lambda r: r.query["token"] == [SECRET]),
        ({"type": "api_key", "in": "query", "name": "k", "key": SECRET}, lambda r: r.query["k"] == [SECRET]),
        ({"credential": "tok"}, lambda r: r.header("Authorization") == f"Bearer {SECRET}"),
        ({"type": "bearer", "token": SECRET}, lambda r: r.header("Authorization") == f"Bearer {SECRET}"),
        (
            {"credential": "basic"},
            lambda r: r.header("Authorization") == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode(),
        ),
        (
            {"type": "basic", "username": "alice", "password": SECRET},
            lambda r: r.header("Authorization") == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode(),
        ),
    ],
)
def test_auth_kinds(server, services, auth, check):
    server.route("*", Reply(200, {"echo": "fine"}))
    ctx, result = run({"url": server.url("/a"), "auth": auth}, services)
    assert check(server.requests[0])
    assert SECRET in ctx.secrets
    recorded = json.dumps([result.output, result.process_data])
    assert SECRET not in recorded
    assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in recorded


def test_unknown_credential_is_permanent(server, services):
    _, error = fail({"url": server.url("/a"), "auth": {"credential": "nope"}}, services)
    assert error.code == "credential_not_found" and not error.retryable
    assert server.requests == []


def test_secret_never_in_output_error_or_records_even_when_echoed(server, services):
    def echo(request: Recorded) -> Reply:
        return Reply(400, {"title": "Bad", "detail": f"key {request.header('X-API-Key')} refused"},
                     {"Content-Type": "application/problem+json", "X-Echo": request.header("X-API-Key") or ""})

    server.route("/bad", echo)
    server.route("/ok", lambda r: Reply(200, {"you_sent": r.header("X-API-Key")}, {"X-Echo": r.header("X-API-Key") or ""}))
    config = {"url": server.url("/bad"), "auth": {"credential": "api"}}
    ctx, error = fail(config, services)
    assert SECRET in ctx.secrets
    assert SECRET not in json.dumps(error.as_dict()) and SECRET not in str(error)
    ctx, result = run({"url": server.url("/ok"), "auth": {"credential": "api"}}, services)
    assert result.output["body"] == {"you_sent": "***"}
    assert SECRET not in json.dumps([result.output, result.process_data, dict(ctx.config)])
    assert result.process_data["request"]["headers"]["X-API-Key"] == "***"


# -- success rules and failures -------------------------------------------------------------------


def test_404_problem_json_is_permanent_with_detail(server, services):
    server.route("*", Reply(404, {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Customer not found"},
                            {"Content-Type": "application/problem+json"}))
    _, error = fail({"url": server.url("/c")}, services)
    assert not error.retryable
    assert error.message == "Not Found: Customer not found"
    assert error.detail["detail"] == "Customer not found" and error.detail["status"] == 404
    assert len(server.requests) == 1


def test_5xx_retryable_and_429_with_retry_after(server, services):
    server.route("/down", Reply(503, "busy"))
    server.route("/slow-down", Reply(429, "", {"Retry-After": "7"}))
    server.route("/date", Reply(429, "", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    _, error = fail({"url": server.url("/down")}, services)
    assert error.retryable and error.code == "http_status" and error.detail["status"] == 503
    _, error = fail({"url": server.url("/slow-down")}, services)
    assert error.retryable and error.retry_after == 7
    _, error = fail({"url": server.url("/date")}, services)
    assert error.retryable and error.retry_after == 0  # a date in the past: retry at once


def test_status_rules(server, services):
    server.route("*", Reply(302, "moved but no location"))
    _, result = run({"url": server.url("/r"), "success": {"status": [200, "3xx"]}}, services)
    assert result.output["status"] == 302
    _, result = run({"url": server.url("/r"), "success": {"status": "300-302"}}, services)
    assert result.output["status"] == 302
    _, error = fail({"url": server.url("/r")}, services)
    assert not error.retryable


def test_when_rule_failing_on_2xx_is_permanent(server, services):
    server.route("*", Reply(200, {"state": "rejected"}))
    _, error = fail({"url": server.url("/w"), "success": {"when": "response.body.state == 'accepted'"}}, services)
    assert error.code == "validation_failed" and not error.retryable
    _, result = run({"url": server.url("/w"), "success": {"when": "response.status == 200 && response.body.state == 'rejected'"}}, services)
    assert result.output["body"] == {"state": "rejected"}


def test_slow_server_times_out_retryably(server, services):
    server.route("*", Reply(200, "late", delay=1.5))
    started = time.monotonic()
    _, error = fail({"url": server.url("/slow")}, services, timeout=0.3)
    assert error.code == "timeout" and error.retryable
    assert time.monotonic() - started < 1.2


def test_slow_body_times_out(server, services):
    server.route("*", Reply(200, "late", body_delay=1.5))
    _, error = fail({"url": server.url("/slow")}, services, timeout=0.3)
    assert error.code == "timeout" and error.retryable


# -- callback polling with the seed's task service -------------------------------------------------


def poll_config(base: str, code: str, **poll: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{base}/run_code",
        "body": {"code": code},
        "mode": "poll",
        "poll": {"interval": 0.05, "url": f"{base}/status", "max_wait": 10, **poll},
    }


def test_seed_service_finished_is_not_success_by_default():
    services = FakeServices()
    with seed_task_service() as base:
        _, error = fail(poll_config(base, "print('hello')"), services)
    assert error.code == "task_failed" and not error.retryable
    assert error.detail["status"] == "FINISHED"
    assert error.detail["body"]["log"] == "hello"


def test_seed_service_with_finished_as_success_polls_until_done():
    services = FakeServices()
    with seed_task_service() as base:
        ctx, result = run(poll_config(base, "import time\ntime.sleep(0.3)\nprint('done')", success=["FINISHED"]), services)
    output = result.output
    assert output["status"] == 200
    assert output["body"]["status"] == "PROCESSING"
    assert output["task_id"] == output["body"]["taskId"]
    assert output["poll"]["status"] == "FINISHED"
    assert output["poll"]["body"]["log"] == "done"
    assert output["poll"]["polls"] >= 2  # PROCESSING at least once, then FINISHED
    assert all(seconds <= 0.05 for seconds, _ in ctx.waits)
    assert ctx.waits[-1][1]["task_id"] == output["task_id"]


def test_seed_service_failed_task_answers_500_and_fails_the_node():
    # execute_code catches the task's exception and then formats it: an exception whose str()
    # raises escapes, so the service records FAILED and its status endpoint answers HTTP 500.
    code = "class Boom(Exception):\n    def __str__(self):\n        raise RuntimeError('kaboom')\nraise Boom()"
    with seed_task_service() as base:
        _, error = fail(poll_config(base, code, success=["FINISHED"]), FakeServices())
    assert error.code == "poll_failed" and not error.retryable
    assert error.detail["status"] == 500
    assert error.detail["body"] == {"taskId": error.detail["body"]["taskId"], "status": "FAILED", "error": "kaboom"}


def test_custom_processing_and_success_values_and_paths(server, services):
    server.route("/submit", Reply(200, {"job": {"id": "j/1"}}))
    server.route("/jobs/j%2F1", [Reply(200, {"state": "queued"}), Reply(200, {"state": "running"}), Reply(200, {"state": "ok"})])
    config = {
        "method": "POST",
        "url": server.url("/submit"),
        "mode": "poll",
        "poll": {"interval": 0.02, "url": server.url("/jobs"), "task_id": "$.job.id", "status": "$.state",
                 "processing": ["queued", "running"], "success": ["ok"], "auth": {"credential": "tok"}},
    }
    _, result = run(config, services)
    assert result.output["task_id"] == "j/1"
    assert result.output["poll"] == {"status": "ok", "body": {"state": "ok"}, "polls": 3}
    polls = [r for r in server.requests if r.path.startswith("/jobs")]
    assert all(r.header("Authorization") == f"Bearer {SECRET}" for r in polls)
    assert all(r.header("Weft-Receipt-Token") == server.requests[0].header("Weft-Receipt-Token") for r in polls)


def test_missing_task_id_fails(server, services):
    server.route("*", Reply(200, {"no": "id"}))
    _, error = fail(poll_config(server.base, "x"), services)
    assert error.code == "task_id_missing"


def test_max_wait_bounds_polling(server, services):
    server.route("/run_code", Reply(200, {"taskId": "t1"}))
    server.route("/status/t1", Reply(200, {"status": "PROCESSING"}))
    started = time.monotonic()
    _, error = fail(poll_config(server.base, "x", max_wait=0.3), services)
    assert error.code == "timeout" and not error.retryable
    assert time.monotonic() - started < 1


def test_stop_during_polling_ends_within_a_second():
    stop = threading.Event()
    with seed_task_service() as base:
        ctx = make_context(poll_config(base, "import time\ntime.sleep(5)", interval=0.2), FakeServices(), stop=stop)
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(RunStopped):
            NODE.run(ctx)
        assert time.monotonic() - started < 1.3


def test_resumed_poll_does_not_resend_the_main_request(server, services):
    server.route("/run_code", Reply(200, {"taskId": "t9"}))
    server.route("/status/t9", Reply(200, {"status": "SUCCESS"}))
    state = {"mode": "poll", "task_id": "t9", "polls": 4, "started": time.time(),
             "response": {"status": 200, "headers": {}, "body": {"taskId": "t9"}}}
    _, result = run(poll_config(server.base, "x"), services, state=state)
    assert [r.path for r in server.requests] == ["/status/t9"]
    assert result.output["poll"]["polls"] == 5


# -- webhook mode ---------------------------------------------------------------------------------


def calling_back(payloads: list[tuple[str, Any]], delay: float):
    """A service handler: answers 202 at once, then POSTs each payload to the webhook URL."""

    def handler(request: Recorded) -> Reply:
        url = request.header("Weft-Webhook-URL")

        def later() -> None:
            time.sleep(delay)
            for content_type, payload in payloads:
                requests.post(url, data=json.dumps(payload), headers={"Content-Type": content_type}, timeout=5)

        threading.Thread(target=later, daemon=True).start()
        return Reply(202, {"accepted": True})

    return handler


def test_webhook_first_callback_wins(server):
    services = FakeServices()
    with callback_receiver(services) as receiver:
        server.route("/capture", calling_back([("application/json", {"paid": 1}), ("application/json", {"paid": 2})], 0.2))
        ctx, result = run({"method": "POST", "url": server.url("/capture"), "body": {"amount": 5},
                           "mode": "webhook", "webhook": {"max_wait": 5}}, services)
        time.sleep(0.1)  # let the second callback land
    assert result.output == {"status": 202, "headers": result.output["headers"], "body": {"paid": 1}}
    hook = server.requests[0].header("Weft-Webhook-URL")
    assert hook == f"{receiver.base}/api/v1/callbacks/run-1/call/{ctx.receipt_token}"
    assert len([r for r in receiver.requests if r.method == "POST"]) == 2
    assert services.callback_result(run_id="run-1", node_id="call", receipt_token=ctx.receipt_token)["body"] == {"paid": 1}


def test_webhook_problem_json_callback_fails_permanently(server):
    services = FakeServices()
    problem = {"type": "about:blank", "title": "Unprocessable Entity", "status": 422, "detail": "Customer not found"}
    with callback_receiver(services):
        server.route("/capture", calling_back([("application/problem+json", problem)], 0.1))
        _, error = fail({"method": "POST", "url": server.url("/capture"), "mode": "webhook"}, services)
    assert error.code == "callback_failed" and not error.retryable
    assert error.message == "Unprocessable Entity: Customer not found"
    assert error.detail["detail"] == "Customer not found"


def test_webhook_initial_failure_uses_the_usual_rules(server):
    services = FakeServices()
    with callback_receiver(services):
        server.route("*", Reply(500, "no"))
        _, error = fail({"method": "POST", "url": server.url("/capture"), "mode": "webhook"}, services)
    assert error.retryable and error.detail["status"] == 500


def test_webhook_max_wait(server):
    services = FakeServices()
    with callback_receiver(services):
        server.route("*", Reply(202, {}))
        _, error = fail({"method": "POST", "url": server.url("/c"), "mode": "webhook", "webhook": {"max_wait": 0.3}}, services)
    assert error.code == "timeout"


def test_webhook_parks_in_parkable_runs_and_resumes_without_resending(server, monkeypatch):
    monkeypatch.setattr("workflows.engine.nodes.http.WEBHOOK_PARK_GRACE", 0.1)
    services = FakeServices(can_park=True)
    with callback_receiver(services):
        server.route("*", Reply(202, {"accepted": True}))
        config = {"method": "POST", "url": server.url("/c"), "mode": "webhook", "webhook": {"max_wait": 60}}
        ctx = make_context(config, services)
        with pytest.raises(Park) as parked:
            NODE.run(ctx)
        assert parked.value.state["mode"] == "webhook" and parked.value.state["sent"] is True
        assert 50 < parked.value.wake_at - time.time() <= 60
        services.store_callback("run-1", "call", ctx.receipt_token, "application/json", {"done": True})
        resumed = make_context(config, services, state=parked.value.state, receipt_token=ctx.receipt_token)
        result = NODE.run(resumed)
    assert result.output["body"] == {"done": True} and result.output["status"] == 202
    assert len(server.requests) == 1


def test_stop_during_webhook_wait(server):
    services = FakeServices()
    stop = threading.Event()
    with callback_receiver(services):
        server.route("*", Reply(202, {}))
        ctx = make_context({"method": "POST", "url": server.url("/c"), "mode": "webhook"}, services, stop=stop)
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        with pytest.raises(RunStopped):
            NODE.run(ctx)
        assert time.monotonic() - started < 1.3


# -- compensation ---------------------------------------------------------------------------------


def test_compensate_sends_the_compensate_request_with_context_headers(server, services):
    server.route("*", Reply(200, {}))
    config = {"method": "POST", "url": server.url("/pay"),
              "compensate": {"method": "DELETE", "url": server.url("/pay/{id}"), "args": {"id": "p1"},
                             "auth": {"credential": "tok"}}}
    ctx = make_context(config, services)
    NODE.compensate(ctx, {"status": 200})
    request = server.requests[0]
    assert (request.method, request.path) == ("DELETE", "/pay/p1")
    assert request.header("Authorization") == f"Bearer {SECRET}"
    assert request.header("Idempotency-Key") == ctx.receipt_token


def test_compensate_failure_raises(server, services):
    server.route("*", Reply(409, "conflict"))
    ctx = make_context({"url": server.url("/x"), "compensate": {"method": "POST", "url": server.url("/undo")}}, services)
    with pytest.raises(NodeError) as info:
        NODE.compensate(ctx, None)
    assert info.value.detail["status"] == 409


# -- schema and validation ------------------------------------------------------------------------


def test_config_schema_and_validate():
    import jsonschema

    good = {"method": "POST", "url": "https://api.example/x", "mode": "poll",
            "poll": {"url": "https://api.example/s", "interval": 10}, "success": {"status": "2xx"}}
    jsonschema.validate(good, HttpNode.config_schema)
    assert NODE.validate(good, "/nodes/1/config") == []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"method": "TRACE", "url": "https://x"}, HttpNode.config_schema)
    problems = NODE.validate({"url": "ftp://x", "success": {"status": "2zz"}}, "/n")
    assert {p["path"] for p in problems} == {"/n/url", "/n/success/status"}
    assert NODE.expressions({"url": "https://x", "success": {"when": "response.status == 200"}}) == [
        (["success", "when"], "response.status == 200")
    ]


# -- files: multipart/form-data ---------------------------------------------------------------------

class FileServices(FakeServices):
    """The host's ``file_content``: the bytes of a file object, kept in memory."""

    def __init__(self, files: dict[str, bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files = files

    def file_content(self, file: Any) -> tuple[str, bytes, str]:
        if file.get("id") not in self.files:
            raise NodeError("the uploaded file no longer exists", code="file_missing")
        return file["name"], self.files[file["id"]], file["mime_type"]


def test_files_are_sent_as_multipart_with_the_body_as_form_fields(server) -> None:
    server.route("/form", Reply(body={"ok": True}))
    services = FileServices({"f1": b"a,b\n1,2\n", "f2": b"\x89PNG"})
    doc = {"id": "f1", "name": "r.csv", "mime_type": "text/csv"}
    pic = {"id": "f2", "name": "p.png", "mime_type": "image/png"}
    ctx, result = run({"method": "POST", "url": server.url("/form"), "files": {"doc": doc, "pics": [pic, None]},
                       "body": {"note": "q3", "n": 2}}, services)
    sent = server.requests[-1]
    assert sent.header("Content-Type").startswith("multipart/form-data; boundary=")
    body = sent.body
    assert b'name="doc"; filename="r.csv"' in body and b"a,b\n1,2\n" in body and b"Content-Type: text/csv" in body
    assert b'name="pics"; filename="p.png"' in body and b"\x89PNG" in body
    assert b'name="note"\r\n\r\nq3' in body and b'name="n"\r\n\r\n2' in body
    # What the run records: the parts' names, never the bytes.
    assert result.process_data["request"]["files"] == [{"field": "doc", "name": "r.csv"},
                                                       {"field": "pics", "name": "p.png"}]


def test_files_need_a_body_method_an_object_body_and_a_readable_file(server) -> None:
    services = FileServices({})
    doc = {"id": "gone", "name": "r.csv", "mime_type": "text/csv"}
    _, error = fail({"method": "GET", "url": server.url("/form"), "files": {"doc": doc}}, services)
    assert error.code == "invalid_config" and "POST" in str(error)
    _, error = fail({"method": "POST", "url": server.url("/form"), "files": {"doc": doc}, "body": [1]}, services)
    assert error.code == "invalid_config"
    _, error = fail({"method": "POST", "url": server.url("/form"), "files": {"doc": "https://x.example/a"}}, services)
    assert error.code == "invalid_config" and "type file" in str(error)
    _, error = fail({"method": "POST", "url": server.url("/form"), "files": {"doc": doc}}, services)
    assert error.code == "file_missing" and not server.requests
