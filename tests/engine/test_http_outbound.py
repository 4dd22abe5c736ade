"""Outbound safety of the http node against real servers: address policy on every redirect hop,
numeric loopback forms, credential stripping across origins, size cap, header injection."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.engine.http_servers import FakeServices, Reply, make_context, scripted_server
from workflows.engine.nodes.base import NodeError, Park
from workflows.engine.nodes.http import HttpNode
from workflows.engine.outbound import AddressPolicy, OutboundPolicy, outbound_request, outbound_session

NODE = HttpNode()


def fail(config: dict[str, Any], services: FakeServices) -> NodeError:
    with pytest.raises(NodeError) as info:
        NODE.run(make_context(config, services))
    return info.value


@pytest.fixture
def server_127_0_0_2():
    # 127.0.0.2 is loopback too; the tests allow exactly it, so a hop to 127.0.0.1 is refused.
    with scripted_server("127.0.0.2") as srv:
        yield srv


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://2130706433:9/",  # decimal
        "http://0x7f000001:9/",  # hex
        "http://0177.0.0.1:9/",  # octal
        "http://[::ffff:127.0.0.1]:9/",  # IPv4-mapped IPv6
        "http://[::1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0:9/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_non_public_addresses_refused_by_default(url):
    error = fail({"url": url}, FakeServices(allow_networks=[]))
    assert error.code == "address_refused" and not error.retryable


def test_only_http_and_https():
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/"):
        error = fail({"url": url}, FakeServices(allow_networks=[]))
        assert error.code == "invalid_url" and not error.retryable


def test_allow_list_admits_exactly_its_networks(server_127_0_0_2):
    server_127_0_0_2.route("*", Reply(200, {"ok": 1}))
    services = FakeServices(allow_networks=["127.0.0.2/32"])
    result = NODE.run(make_context({"url": server_127_0_0_2.url("/x")}, services))
    assert result.output["body"] == {"ok": 1}
    assert fail({"url": "http://127.0.0.1:9/"}, services).code == "address_refused"
    assert AddressPolicy(["127.0.0.2/32"]).allowed(__import__("ipaddress").ip_address("::ffff:127.0.0.2"))


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest/meta-data/"])
def test_redirect_to_a_refused_address_is_refused(server_127_0_0_2, target):
    with scripted_server("127.0.0.1") as inner:
        inner.route("*", Reply(200, "internal"))
        location = target.format(port=inner.port)
        server_127_0_0_2.route("/go", Reply(302, "", {"Location": location}))
        error = fail({"url": server_127_0_0_2.url("/go")}, FakeServices(allow_networks=["127.0.0.2/32"]))
        assert error.code == "address_refused"
        assert inner.requests == []


def test_redirects_followed_within_limit_303_becomes_get(server_127_0_0_2):
    srv = server_127_0_0_2
    srv.route("/a", Reply(303, "", {"Location": "/b"}))
    srv.route("/b", Reply(307, "", {"Location": srv.url("/c")}))
    srv.route("/c", Reply(200, {"done": True}))
    services = FakeServices(allow_networks=["127.0.0.2/32"])
    result = NODE.run(make_context({"method": "POST", "url": srv.url("/a"), "body": {"x": 1},
                                    "auth": {"type": "bearer", "token": "tkn"}}, services))
    assert result.output["body"] == {"done": True}
    assert [(r.method, r.path) for r in srv.requests] == [("POST", "/a"), ("GET", "/b"), ("GET", "/c")]
    assert all(r.header("Authorization") == "Bearer tkn" for r in srv.requests)  # same origin: kept


def test_too_many_redirects(server_127_0_0_2):
    server_127_0_0_2.route("*", Reply(302, "", {"Location": "/again"}))
    error = fail({"url": server_127_0_0_2.url("/loop")}, FakeServices(allow_networks=["127.0.0.2/32"]))
    assert error.code == "too_many_redirects"
    assert len(server_127_0_0_2.requests) == 6  # the request and 5 hops


def test_cross_origin_hop_drops_credentials(server_127_0_0_2):
    with scripted_server("127.0.0.1") as other:
        other.route("*", Reply(200, {"ok": True}))
        # the redirect carries the request's own query string along (as many services do)
        server_127_0_0_2.route("*", lambda r: Reply(302, "", {"Location": other.url("/land?" + urlencode(
            [(k, v) for k, vs in r.query.items() for v in vs] + [("keep", "1")]))}))
        services = FakeServices(allow_networks=["127.0.0.0/8"],
                                credentials={"c": {"kind": "api_key", "key": "SECRETKEY"}})
        for auth in ({"credential": "c", "name": "X-Key"}, {"credential": "c", "in": "query", "name": "k"},
                     {"type": "bearer", "token": "SECRETKEY"}):
            NODE.run(make_context({"url": server_127_0_0_2.url("/start"), "auth": auth,
                                   "headers": {"X-Plain": "v"}}, services))
        assert len(other.requests) == 3
        for landed in other.requests:
            assert "SECRETKEY" not in json.dumps([landed.headers, landed.query])
            assert landed.header("X-Plain") == "v"
            assert landed.query.get("keep") == ["1"]


CAPABILITY_HEADERS = ("Weft-Receipt-Token", "Idempotency-Key", "Weft-Webhook-URL")


def test_cross_origin_hop_drops_the_receipt_token_and_idempotency_key(server_127_0_0_2, monkeypatch):
    """requests' rebuild_auth drops Authorization only; Weft's capability headers go the same way."""
    monkeypatch.setattr("workflows.engine.nodes.http.WEBHOOK_PARK_GRACE", 0.05)
    with scripted_server("127.0.0.1") as other:
        other.route("*", Reply(202, {"accepted": True}))
        server_127_0_0_2.route("/start", Reply(307, "", {"Location": other.url("/land")}))
        server_127_0_0_2.route("/same", Reply(302, "", {"Location": "/landed"}))
        server_127_0_0_2.route("/landed", Reply(202, {"accepted": True}))
        services = FakeServices(allow_networks=["127.0.0.0/8"], can_park=True)
        services.callback_base = "http://127.0.0.9:8000"
        for url in (server_127_0_0_2.url("/start"), server_127_0_0_2.url("/same")):
            with pytest.raises(Park):  # webhook mode: the request carries Weft-Webhook-URL, then parks
                NODE.run(make_context({"method": "POST", "url": url, "mode": "webhook", "body": {"x": 1},
                                       "headers": {"X-Plain": "v"}}, services))
    first, landed = server_127_0_0_2.requests[0], other.requests[0]
    assert all(first.header(h) for h in CAPABILITY_HEADERS)  # the service called gets them
    assert [landed.header(h) for h in CAPABILITY_HEADERS] == [None, None, None]
    assert landed.header("X-Plain") == "v" and landed.header("Weft-Run-ID") == first.header("Weft-Run-ID")
    asked, same = ([r for r in server_127_0_0_2.requests if r.path == p][0] for p in ("/same", "/landed"))
    assert [same.header(h) for h in CAPABILITY_HEADERS] == [asked.header(h) for h in CAPABILITY_HEADERS]  # kept


def test_response_size_cap(server_127_0_0_2):
    srv = server_127_0_0_2
    srv.route("/stream", Reply(200, stream_bytes=5 * 1024 * 1024))
    srv.route("/declared", Reply(200, b"y" * 300_000))
    srv.route("/small", Reply(200, b"y" * 1000))
    services = FakeServices(allow_networks=["127.0.0.2/32"], max_response_bytes=200_000)
    for path in ("/stream", "/declared"):
        error = fail({"url": srv.url(path)}, services)
        assert error.code == "response_too_large" and not error.retryable
    assert len(NODE.run(make_context({"url": srv.url("/small")}, services)).output["body"]) == 1000


@pytest.mark.parametrize(
    "headers", [{"X-Bad": "a\r\nInjected: 1"}, {"X-Bad": "a\nb"}, {"X-Bad\r\nX": "v"}]
)
def test_crlf_in_headers_refused(server_127_0_0_2, headers):
    error = fail({"url": server_127_0_0_2.url("/"), "headers": headers}, FakeServices(allow_networks=["127.0.0.2/32"]))
    assert error.code == "invalid_header" and not error.retryable
    assert "X-Bad" in error.message
    assert server_127_0_0_2.requests == []


def test_sessions_are_pooled_per_policy(server_127_0_0_2):
    policy = OutboundPolicy(allow_networks=["127.0.0.2/32"])
    assert outbound_session(policy) is outbound_session(OutboundPolicy(allow_networks=["127.0.0.2/32"]))
    assert outbound_session(policy) is not outbound_session(OutboundPolicy())
    server_127_0_0_2.route("*", Reply(200, "ok", {"Set-Cookie": "sid=abc; Path=/"}))
    outbound_request("GET", server_127_0_0_2.url("/one"), policy=policy)
    outbound_request("GET", server_127_0_0_2.url("/two"), policy=policy)
    # one pooled session serves every run and team: cookies are never kept
    assert server_127_0_0_2.requests[1].header("Cookie") is None
